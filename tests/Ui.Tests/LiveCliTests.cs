using System.Text.Json.Nodes;

namespace Assistant.Ui.Tests;

public sealed class LiveCliTests
{
    [Fact]
    public async Task Live_OnTheWorld_RecordsEveryFrame_AndReportsLiveAccuracy()
    {
        var record = Path.Combine(Path.GetTempPath(), $"assistant-live-{Guid.NewGuid():N}.jsonl");
        var (code, stdout, _) = await CliRun.Run("live", "--source", "world:2000400", "--frames", "120", "--question-every", "40", "--record", record);
        Assert.Equal(0, code);
        Assert.Contains("120 frames", stdout);
        Assert.Contains("live accuracy", stdout);
        Assert.Contains("query prefills 3", stdout);
        var lines = Record.FrameLines(record).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(120, lines.Count);
        Assert.Equal(Enumerable.Range(0, 120), lines.Select(l => (int)l["frame"]!));
        Assert.All(lines, l => Assert.NotNull(l["truth"]));
        Assert.Equal(3, lines.Count(l => (bool)l["query_prefilled"]!));
        Assert.True(lines.Count(l => (bool)l["vision_ran"]!) < 120);  // the scene-change gate skipped some frames
        var session = JsonNode.Parse(File.ReadLines(record).First())!["session"]!;  // the effective options, flags applied
        Assert.Equal((40, 120, "world:2000400", "live"), ((int)session["question_every"]!, (int)session["frames"]!, (string)session["source"]!, (string)session["mode"]!));
    }

    [Fact]
    public async Task Live_RealtimeCapture_DropsFramesItHasNoTimeFor_InsteadOfQueueing()
    {
        var record = Path.Combine(Path.GetTempPath(), $"assistant-live-{Guid.NewGuid():N}.jsonl");
        var (code, stdout, _) = await CliRun.Run("live", "--frames", "150", "--realtime-fps", "1000", "--record", record);
        Assert.Equal(0, code);
        var line = stdout.Split('\n').First(l => l.Contains("captured"));
        long Number(string after) => long.Parse(line.Split(after)[1].Trim().Split(' ', ',')[0]);
        long captured = Number("captured"), answered = Number("answered"), dropped = Number("dropped");
        Assert.Equal(150, answered);
        Assert.True(dropped > 0, line);
        Assert.InRange(captured - answered - dropped, 0, 1);
        // Answered frames are scored against the world step they were captured at, which skips ahead.
        var captured_s = Record.FrameLines(record).Select(l => (double)JsonNode.Parse(l)!["captured_s"]!).ToList();
        Assert.Equal(150, captured_s.Count);
        Assert.Equal(captured_s.Order(), captured_s);  // always newer
        Assert.True(captured_s[^1] * 30 > 150, "capture ran ahead of the loop, so world steps were skipped");
        Assert.Contains("live accuracy", stdout);
    }

    [Fact]
    public async Task Live_OverAFolder_PrintsEveryPicturesAnswer_WithItsFile_AndTheRecordNamesIt()
    {
        // Before, the console printed a line only every --question-every frames: one answer for five pictures.
        var dir = Directory.CreateTempSubdirectory("assistant-five-").FullName;
        for (int i = 1; i <= 5; i++)
        {
            var (c, _, e) = await CliRun.Run("world", "render", "--seed", $"200000{i}", "--out", Path.Combine(dir, $"scene{i}.png"));
            Assert.True(c == 0, e);
        }
        var record = Path.Combine(dir, "run.jsonl");
        var (code, stdout, stderr) = await CliRun.Run("live", "--source", $"folder:{dir}", "--query", "how many circles are there?", "--record", record);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n').Where(l => l.StartsWith("frame ", StringComparison.Ordinal)).ToList();
        Assert.Equal(5, lines.Count);
        for (int i = 1; i <= 5; i++)
        {
            Assert.StartsWith($"frame {i - 1} ({Path.Combine(dir, $"scene{i}.png")}): how many circles are there? -> ", lines[i - 1]);
        }
        var origins = File.ReadAllLines(record).Skip(1).Select(l => (string?)JsonNode.Parse(l)!["origin"]).ToList();
        Assert.Equal(Enumerable.Range(1, 5).Select(i => Path.Combine(dir, $"scene{i}.png")), origins);
    }

    [Fact]
    public async Task Live_Hud_WithoutATerminal_SaysSo_AndPrintsLines()
    {
        var (code, stdout, stderr) = await CliRun.Run("live", "--hud", "--frames", "5");
        Assert.Equal(0, code);
        Assert.Contains("--hud needs a terminal", stderr);
        Assert.Contains("frame 0 (t=0.00 s):", stdout);
    }

    [Fact]
    public async Task Live_AnOnnxRuntimeFailureOnOneFrame_IsLoggedAndSkipped_AndTheLoopGoesOn()
    {
        // A tiny set whose vision graph fails inside ONNX Runtime on bright frames (tools/make_faulty_vision.py).
        var models = Assistant.Tests.Repo.CopyTinyModels();
        File.Copy(Path.Combine(Assistant.Tests.Repo.Root, "tests", "data", "faulty_vision.onnx"), Path.Combine(models, "vision.onnx"), overwrite: true);
        var shots = Path.Combine(Path.GetTempPath(), $"assistant-faulty-{Guid.NewGuid():N}");
        Directory.CreateDirectory(shots);
        for (int i = 0; i < 4; i++)
        {
            byte value = i % 2 == 0 ? (byte)0 : (byte)255;  // dark, bright, dark, bright
            Capture.World.PngFile.Write(new Capture.Frame(Enumerable.Repeat(value, 32 * 32 * 3).ToArray(), 32, 32, TimeSpan.Zero), Path.Combine(shots, $"{i}.png"));
        }
        var record = Path.Combine(Path.GetTempPath(), $"assistant-live-{Guid.NewGuid():N}.jsonl");
        var (code, stdout, stderr) = await CliRun.Run("live", "--models", models, "--source", $"folder:{shots}", "--query", "what color?",
            "--frames", "4", "--record", record);
        Assert.Equal(0, code);
        Assert.Contains("frame 1 skipped", stderr);
        Assert.Contains("frame 3 skipped", stderr);
        Assert.Contains("2 frames from folder:", stdout);
        var lines = Record.FrameLines(record).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal([0, 1, 2, 3], lines.Select(l => (int)l["frame"]!));
        Assert.Equal([false, true, false, true], lines.Select(l => l["error"] is not null));
    }

    [Theory]
    [InlineData("snapshot", 3)]
    [InlineData("live", 0)]
    public async Task Live_LongAnswers_SpreadOverFrames_PerTheMode(string mode, int completedAnswers)
    {
        // The random-weight set answers to the length limit (8 tokens): 3 tokens a frame finish one every 3 frames
        // on a still picture; on the moving world, live mode restarts every changed frame and never finishes.
        var record = Path.Combine(Path.GetTempPath(), $"assistant-live-{Guid.NewGuid():N}.jsonl");
        var source = mode == "snapshot" ? $"file:{Assistant.Tests.Golden.Tiny.ImagePath}" : "world:5";
        var (code, _, _) = await CliRun.Run("live", "--models", Assistant.Tests.Repo.TinyModels, "--source", source, "--query", "what color is the circle?",
            "--frames", "9", "--tokens-per-frame", "3", "--mode", mode, "--speed", "0.02", "--record", record);
        Assert.Equal(0, code);
        var lines = Record.FrameLines(record).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(completedAnswers, lines.Count(l => (bool)l["answer_done"]!));
        Assert.All(lines, l => Assert.InRange((int)l["new_tokens"]!, 1, 3));
    }

    [Fact]
    public async Task Live_WithAFixedQuery_HasNoTruthToScore()
    {
        var (code, stdout, _) = await CliRun.Run("live", "--frames", "20", "--query", "how many circles are there?");
        Assert.Equal(0, code);
        Assert.DoesNotContain("live accuracy", stdout);
        Assert.Contains("query prefills 1", stdout);
    }

    [Fact]
    public async Task Live_WithALatencyBudget_RunsWhatThePlannerChose()
    {
        var (code, stdout, _) = await CliRun.Run("live", "--frames", "10", "--latency-ms", "1000");
        Assert.Equal(0, code);
        var planned = stdout.Split('\n').First(l => l.StartsWith("planned for"));
        var chosen = planned.Split(": ")[1].Split(" (")[0];  // "DECODER + quecc V=N"
        Assert.Contains($"with {chosen} on", stdout);
        int perFrame = int.Parse(planned.Split("up to ")[1].Split(' ')[0]);
        Assert.True(perFrame >= 1);
        var (_, tight, _) = await CliRun.Run("live", "--frames", "3", "--latency-ms", "0.001");
        Assert.Contains("up to 1 answer tokens a frame", tight);  // nothing fits: still one token a frame
        var (bad, _, stderr) = await CliRun.Run("live", "--frames", "5", "--latency-ms", "10", "--tokens", "4");
        Assert.Equal(2, bad);
        Assert.Contains("--latency-ms chooses", stderr);
    }

    [Fact]
    public async Task Live_TypedLines_BecomeNewQuestions_AndBadOnesAreIgnoredWithAMessage()
    {
        var (code, stdout, stderr) = await CliRun.RunWithInput("what is a banana?\nHow many circles are there\n", "live", "--frames", "200");
        Assert.Equal(0, code);
        Assert.Contains("new question: how many circles are there?", stdout);
        Assert.Contains("ignored question", stderr);
        Assert.Contains("'banana'", stderr);
    }

    private static string ShotsFolder(bool breakTheSecond)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"assistant-shots-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        for (int i = 0; i < 3; i++)
            Capture.World.PngFile.Write(Capture.World.WorldScene.RenderFrame(Capture.World.WorldScene.Generate(2_000_000 + i), 64), Path.Combine(dir, $"{i}.png"));
        if (breakTheSecond) File.WriteAllBytes(Path.Combine(dir, "1.png"), [0, 1, 2]);
        return dir;
    }

    [Fact]
    public async Task Live_FolderThatEnds_EndsCleanly_WithTheRecordComplete()
    {
        var record = Path.Combine(Path.GetTempPath(), $"assistant-live-{Guid.NewGuid():N}.jsonl");
        var (code, stdout, stderr) = await CliRun.Run("live", "--source", $"folder:{ShotsFolder(false)}", "--query", "how many circles are there?", "--frames", "10", "--record", record);
        Assert.Equal(0, code);
        Assert.Contains("ended after 3 frames", stderr);
        Assert.Contains("3 frames from folder:", stdout);
        Assert.Equal(3, Record.FrameLines(record).Length);
    }

    [Theory]
    [InlineData("stop", 1, 1)]
    [InlineData("skip", 0, 2)]
    public async Task Live_SourceFailingMidRun_StopsOrSkipsPerTheFlag(string policy, int exitCode, int answered)
    {
        var record = Path.Combine(Path.GetTempPath(), $"assistant-live-{Guid.NewGuid():N}.jsonl");
        var (code, stdout, stderr) = await CliRun.Run("live", "--source", $"folder:{ShotsFolder(true)}", "--query", "is there a red circle?",
            "--frames", "10", "--on-source-error", policy, "--record", record);
        Assert.Equal(exitCode, code);
        Assert.Contains("failed at frame 1", stderr);
        Assert.Contains($"{answered} frames from folder:", stdout);  // the summary is printed either way
        var lines = Record.FrameLines(record);
        Assert.Equal(answered + 1, lines.Length);  // answered frames plus the logged failure
        Assert.Contains(lines, l => l.Contains("\"error\""));
    }

    [Theory]
    [InlineData("webcam")]
    [InlineData("world:abc")]
    [InlineData("camera:x")]
    public async Task Live_UnknownSource_IsAClearError(string source)
    {
        var (code, _, stderr) = await CliRun.Run("live", "--source", source, "--frames", "5");
        Assert.Equal(2, code);
        Assert.Contains("unknown source", stderr);
    }

    [Fact]
    public async Task Live_MissingCamera_InARealProcess_IsOneLineOnStderr_NoOpenCvLog()
    {
        // OpenCV's own warnings go straight to the process's stderr; only a real process shows whether they leak.
        var (code, _, err) = await AssistantProcess.RunAsync(["live", "--source", "camera:0", "--query", "what color?", "--frames", "3"]);
        Assert.Equal(2, code);
        Assert.Equal("error: camera 0 is not available (no device, or it is in use)", err.Trim());
    }

    [Fact]
    public async Task Live_MissingCamera_IsOneLine()
    {
        var (code, _, stderr) = await CliRun.Run("live", "--source", "camera:0", "--query", "what color?", "--frames", "5");
        Assert.Equal(2, code);
        Assert.Equal("error: camera 0 is not available (no device, or it is in use)", stderr.Trim());
    }
}

public sealed class LiveDurationTests
{
    [Fact]
    public async Task Duration_EndsTheRunByTime_AndTheRecordCarriesFlopsPerFrame()
    {
        var record = Path.Combine(Path.GetTempPath(), $"assistant-duration-{Guid.NewGuid():N}.jsonl");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (code, stdout, stderr) = await CliRun.Run("live", "--duration", "1.5", "--record", record);
        Assert.True(code == 0, stderr);
        Assert.InRange(clock.Elapsed.TotalSeconds, 1.4, 30);
        Assert.Matches(@"\d+ frames from world:2000000 in 1\.\d s", stdout);
        var lines = Record.FrameLines(record);
        Assert.True(lines.Length > 10);
        foreach (var line in lines)
        {
            var json = System.Text.Json.Nodes.JsonNode.Parse(line)!;
            Assert.True(json["flops"]!.GetValue<double>() > 1e6);
            Assert.Null(json["budget_flops"]);  // no --latency-ms: no budget
        }
    }

    [Theory]
    [InlineData(new[] { "live", "--duration", "0" }, "--duration must be in")]
    [InlineData(new[] { "live", "--duration", "2", "--frames", "10" }, "give --frames or --duration, not both")]
    public async Task Duration_BadValues_AreOneLine(string[] args, string message)
    {
        var (code, _, stderr) = await CliRun.Run(args);
        Assert.Equal(2, code);
        Assert.Contains(message, stderr);
    }
}

/// <summary>A live record file: its first line is the session's effective options (STYLE.md habit 7), then one line per frame.</summary>
internal static class Record
{
    public static string[] FrameLines(string path)
    {
        var lines = File.ReadAllLines(path);
        Assert.NotEmpty(lines);
        var header = JsonNode.Parse(lines[0])!;
        Assert.NotNull(header["session"]?["source"]);
        Assert.NotNull(header["configuration"]);
        return lines[1..];
    }
}
