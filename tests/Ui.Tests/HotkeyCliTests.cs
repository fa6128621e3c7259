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

    private AssistantProcess Start(params string[] args) => AssistantProcess.Start(["hotkey", "--display", DisplayName, .. args]);

    [Fact]
    public async Task EachPress_CapturesAndAnswersExactlyOnce()
    {
        await using var p = Start("--query", "how many circles are there?", "--presses", "2");
        int Presses() => p.Out.Split('\n').Count(l => l.StartsWith("press "));

        Assert.True(await p.WaitForOutputAsync(o => o.Contains("waiting for F9")), p.Err);
        Key("F9");
        await p.WaitForOutputAsync(_ => Presses() == 1, 30);
        await Task.Delay(1000);  // nothing else may follow a single press
        Assert.Equal(1, Presses());
        Key("a");  // another key is not the hotkey
        await Task.Delay(500);
        Assert.Equal(1, Presses());
        Key("F9");
        Assert.Equal(0, await p.WaitForExitAsync(30));
        Assert.Equal(2, Presses());
        Assert.Contains("query_prefill", p.Out);
        Assert.Contains("route visual (no text cue)", p.Out);
    }

    [Fact]
    public async Task ReadMode_PrintsTheScreensTextOnEachPress()
    {
        // The screen shows a rendered line as the root window's background.
        var png = Path.Combine(Path.GetTempPath(), $"assistant-hotkey-{Guid.NewGuid():N}.png");
        TextLines.RenderText("Backup failed: disk full", png, "DejaVu Sans", 22, "black", "white");
        _xvfb.ShowOnRoot(png);

        await using var p = Start("--mode", "read", "--presses", "1");
        Assert.True(await p.WaitForOutputAsync(o => o.Contains("waiting for F9")), p.Err);
        Assert.Contains("reading its text", p.Out);
        Key("F9");
        Assert.Equal(0, await p.WaitForExitAsync(60));
        // display tiles the picture over the root window, so the line shows several times.
        Assert.True(p.Out.Contains("press 1: ") && p.Out.Contains("  Backup failed: disk full"), p.Out);
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
