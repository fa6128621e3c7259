using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Assistant.Ui.Tests;

/// <summary>`live --hud` on a real terminal (a pseudo-terminal made by util-linux's `script`), typed at as a user types.</summary>
public sealed partial class HudInputTests
{
    [GeneratedRegex(@"\x1b\[[0-9;?]*[a-zA-Z]")]
    private static partial Regex Escape();

    [Fact]
    public async Task TypedQuestions_AreEditedInTheHudsOwnInputLine_AndWhatBecomesOfThemShowsInsideTheBox()
    {
        // Before: the typed text echoed over the box and corrupted it, and "ignored question: ..." went to stderr, drawn over at once.
        // The keys wait for the box: typed before the HUD owns the terminal, the terminal itself echoes them (a slow start
        // on a loaded machine once made a fixed four-second wait too short).
        var psi = new ProcessStartInfo("script") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "-qfec", $"{AssistantProcess.Executable} live --hud --frames 240 --target-fps 20", "/dev/null" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var seen = new StringBuilder();
        var reader = Task.Run(async () =>
        {
            var buffer = new char[4096];
            int n;
            while ((n = await p.StandardOutput.ReadAsync(buffer)) > 0) lock (seen) seen.Append(buffer, 0, n);
        });
        var errors = p.StandardError.ReadToEndAsync();
        string Screen() { lock (seen) return Escape().Replace(seen.ToString(), "").Replace("\r", "\n"); }

        var deadline = Stopwatch.StartNew();
        while (!Screen().Split('\n').Any(r => r.StartsWith("│ ask", StringComparison.Ordinal)))
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(45) && !p.HasExited, "the HUD never drew its box");
            await Task.Delay(100);
        }
        foreach (string keys in new[] { "what is a flurb?\r", "how many circles are there?\r", "abc\u007f\u007f" })
        {
            await p.StandardInput.WriteAsync(keys);
            await p.StandardInput.FlushAsync();
            await Task.Delay(1500);
        }
        Assert.True(p.WaitForExit(60_000), "the HUD run did not end");
        await reader;
        p.StandardInput.Close();

        var rows = Screen().Split('\n');
        Assert.Contains(rows, r => r.StartsWith("│ ask", StringComparison.Ordinal) && r.Contains("> what is a flurb_", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.StartsWith("│ note", StringComparison.Ordinal) && r.Contains("warning: ignored question: this model set does not know", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.StartsWith("│ note", StringComparison.Ordinal) && r.Contains("new question: how many circles are there?", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.StartsWith("│ ask", StringComparison.Ordinal) && r.Contains("> a_", StringComparison.Ordinal));  // two Backspaces
        // Nothing typed appears outside the box.
        Assert.DoesNotContain(rows, r => !r.StartsWith('│') && (r.Contains("flurb", StringComparison.Ordinal) || r.Contains("circles are there", StringComparison.Ordinal)));
        Assert.Equal("", (await errors).Trim());
    }
}
