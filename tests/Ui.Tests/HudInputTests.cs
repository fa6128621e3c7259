using System.Diagnostics;
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
        string keys = "sleep 4; printf 'what is a flurb?\\r'; sleep 1.5; printf 'how many circles are there?\\r'; sleep 1.5; printf 'abc\\177\\177'; sleep 4";
        string run = $"script -qfec '{AssistantProcess.Executable} live --hud --frames 180 --target-fps 20' /dev/null";
        var psi = new ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"({keys}) | {run}");
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var errors = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(60_000), "the HUD run did not end");
        string screen = Escape().Replace(await output, "").Replace("\r", "\n");
        var rows = screen.Split('\n');
        Assert.Contains(rows, r => r.StartsWith("│ ask", StringComparison.Ordinal) && r.Contains("> what is a flurb_", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.StartsWith("│ note", StringComparison.Ordinal) && r.Contains("warning: ignored question: this model set does not know", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.StartsWith("│ note", StringComparison.Ordinal) && r.Contains("new question: how many circles are there?", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.StartsWith("│ ask", StringComparison.Ordinal) && r.Contains("> a_", StringComparison.Ordinal));  // two Backspaces
        // Nothing typed appears outside the box.
        Assert.DoesNotContain(rows, r => !r.StartsWith('│') && (r.Contains("flurb", StringComparison.Ordinal) || r.Contains("circles are there", StringComparison.Ordinal)));
        Assert.Equal("", (await errors).Trim());
    }
}
