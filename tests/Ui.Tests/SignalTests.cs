using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Assistant.Ui.Tests;

/// <summary>
/// Signals always end the process (issue 20): SIGTERM and Ctrl+C end a command within the grace time even when
/// its work ignores cancellation, with exit 143 / 130, one line on stderr, the record file whole, and no crash in
/// the termination handler on a second signal (System.CommandLine's own handler threw there).
/// </summary>
public sealed class SignalTests
{
    private static async Task WaitForRecordAsync(string record)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((!File.Exists(record) || File.ReadAllLines(record).Length < 3) && DateTime.UtcNow < deadline) await Task.Delay(100);
    }

    /// <summary>`law fit` of 2,000 points with 10,000 bootstrap refits: about two minutes that never look at the token.</summary>
    private static string[] LongFit()
    {
        var points = Path.Combine(Path.GetTempPath(), $"assistant-signal-{Guid.NewGuid():N}.csv");
        var rng = new Random(1);
        File.WriteAllLines(points, ["llm_params_b,visual_tokens,accuracy",
            .. Enumerable.Range(0, 2000).Select(_ => $"{new[] { 0.5, 1.8, 4, 7 }[rng.Next(4)]},{new[] { 1, 4, 16, 64, 576 }[rng.Next(5)]},{0.2 + rng.NextDouble() * 0.6:F4}")]);
        return ["law", "fit", "--points", points, "--bootstrap", "10000"];
    }

    private static void OneLine(string stderr, string expected)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains(expected, lines[0]);
    }

    [Theory]
    [InlineData("TERM", 143, "stopped by SIGTERM")]
    [InlineData("INT", 130, "stopped by SIGINT")]
    public async Task ASignal_EndsALiveRun_WithItsCode_AndTheRecordWhole(string signal, int exitCode, string line)
    {
        var record = Path.Combine(Path.GetTempPath(), $"assistant-signal-{Guid.NewGuid():N}.jsonl");
        await using var p = AssistantProcess.Start(["live", "--frames", "1000000", "--record", record]);
        await WaitForRecordAsync(record);
        var clock = Stopwatch.StartNew();
        await p.SignalAsync(signal);
        Assert.Equal(exitCode, await p.WaitForExitAsync(30));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed.TotalSeconds:F1} s to stop");
        OneLine(p.Err, line);
        Assert.Contains("frames from world:", p.Out);  // the summary is printed: it unwound, not cut off
        Assert.All(Record.FrameLines(record), l => Assert.NotNull(JsonNode.Parse(l)));
    }

    [Fact]
    public async Task WorkThatIgnoresCancellation_IsEndedAfterTheGraceTime()
    {
        await using var p = AssistantProcess.Start(LongFit());
        await Task.Delay(1500);
        Assert.False(p.HasExited, $"the fit ended early: {p.Err}");
        var clock = Stopwatch.StartNew();
        await p.SignalAsync("TERM");
        Assert.Equal(143, await p.WaitForExitAsync(30));
        Assert.InRange(clock.Elapsed.TotalSeconds, 1.5, 5);  // the grace time (2 s), then the exit
        OneLine(p.Err, "did not finish within 2 s");
    }

    [Fact]
    public async Task ASecondSignal_EndsAtOnce_WithoutACrashInTheHandler()
    {
        await using var p = AssistantProcess.Start(LongFit());
        await Task.Delay(1500);
        var clock = Stopwatch.StartNew();
        await p.SignalAsync("TERM");
        await Task.Delay(200);
        await p.SignalAsync("TERM");
        Assert.Equal(143, await p.WaitForExitAsync(30));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1.8), $"took {clock.Elapsed.TotalSeconds:F1} s: the second signal waited for the grace time");
        Assert.DoesNotContain("Unhandled", p.Err);
        Assert.DoesNotContain("Exception", p.Err);
    }
}
