using System.Diagnostics;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

/// <summary>The global hotkey for real: Xvfb, the assistant as a process, key presses sent with xdotool.</summary>
public sealed class HotkeyCliTests : IDisposable
{
    private readonly XvfbServer _xvfb = new(150);
    private string DisplayName => _xvfb.Display;

    private void Key(string key)
    {
        var psi = new ProcessStartInfo("xdotool", ["key", key]) { RedirectStandardError = true };
        psi.Environment["DISPLAY"] = DisplayName;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("xdotool did not start (apt-get install xdotool)");
        Assert.True(p.WaitForExit(10_000));
    }

    private static async Task WaitFor(Func<bool> condition, int seconds)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition() && DateTime.UtcNow < deadline) await Task.Delay(50);
    }

    /// <summary>The assistant as a process, its stdout collected as it comes.</summary>
    private static (Process Process, Func<string> Out) Start(params string[] args)
    {
        var psi = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "assistant"), args)
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        var p = Process.Start(psi)!;
        var output = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        return (p, () => { lock (output) return output.ToString(); });
    }

    [Fact]
    public async Task EachPress_CapturesAndAnswersExactlyOnce()
    {
        var (process, Out) = Start("hotkey", "--display", DisplayName, "--query", "how many circles are there?", "--presses", "2");
        using var p = process;
        int Presses() => Out().Split('\n').Count(l => l.StartsWith("press "));

        await WaitFor(() => Out().Contains("waiting for F9"), 60);
        Assert.Contains("waiting for F9", Out());
        Key("F9");
        await WaitFor(() => Presses() == 1, 30);
        await Task.Delay(1000);  // nothing else may follow a single press
        Assert.Equal(1, Presses());
        Key("a");  // another key is not the hotkey
        await Task.Delay(500);
        Assert.Equal(1, Presses());
        Key("F9");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await p.WaitForExitAsync(timeout.Token);
        Assert.Equal(0, p.ExitCode);
        Assert.Equal(2, Presses());
        Assert.Contains("query_prefill", Out());
        Assert.Contains("route visual (no text cue)", Out());
    }

    [Fact]
    public async Task ReadMode_PrintsTheScreensTextOnEachPress()
    {
        // The screen shows a rendered line as the root window's background.
        var png = Path.Combine(Path.GetTempPath(), $"assistant-hotkey-{Guid.NewGuid():N}.png");
        TextLines.RenderText("Backup failed: disk full", png, "DejaVu Sans", 22, "black", "white");
        var show = new ProcessStartInfo("display", ["-window", "root", png]) { RedirectStandardError = true };
        show.Environment["DISPLAY"] = DisplayName;
        using (var d = Process.Start(show)!) Assert.True(d.WaitForExit(20_000));

        var (process, Out) = Start("hotkey", "--display", DisplayName, "--mode", "read", "--presses", "1");
        using var p = process;
        await WaitFor(() => Out().Contains("waiting for F9"), 60);
        Assert.Contains("reading its text", Out());
        Key("F9");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(timeout.Token);
        Assert.Equal(0, p.ExitCode);
        // display tiles the picture over the root window, so the line shows several times.
        Assert.True(Out().Contains("press 1: ") && Out().Contains("  Backup failed: disk full"), Out());
    }

    [Fact]
    public async Task ReadMode_TakesNoQuery_AndAskModeNeedsOne()
    {
        var (code, _, stderr) = await CliRun.Run("hotkey", "--display", DisplayName, "--mode", "read", "--query", "what is this?");
        Assert.Equal(2, code);
        Assert.Contains("--query is for --mode ask", stderr);
        (code, _, stderr) = await CliRun.Run("hotkey", "--display", DisplayName, "--mode", "shout");
        Assert.Equal(2, code);
        Assert.Contains("--mode must be ask or read", stderr);
    }

    [Fact]
    public async Task AnUnknownKey_IsAClearError()
    {
        var (code, _, stderr) = await CliRun.Run("hotkey", "--display", DisplayName, "--key", "NoSuchKey", "--query", "how many circles are there?");
        Assert.Equal(2, code);
        Assert.Contains("unknown key 'NoSuchKey'", stderr);
    }

    public void Dispose() => _xvfb.Dispose();
}
