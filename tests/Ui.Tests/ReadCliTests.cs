using System.Text.Json;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

public sealed class ReadCliTests
{
    private static string Rendered(string text, int px = 20, string fg = "black", string bg = "white")
    {
        var path = Path.Combine(Path.GetTempPath(), $"assistant-read-{Guid.NewGuid():N}.png");
        TextLines.RenderText(text, path, "DejaVu Sans", px, fg, bg);
        return path;
    }

    [Fact]
    public async Task Read_PrintsEachLineWithItsConfidence_AndJsonHasBoxes()
    {
        var png = Rendered("Disk quota exceeded (98%)");
        var (code, stdout, _) = await CliRun.Run("read", "--image", png);
        Assert.Equal(0, code);
        Assert.Matches(@"^Disk quota exceeded \(98%\)\t\(confidence (0\.[5-9]\d|1\.00), box \d+,\d+,\d+,\d+\)\n", stdout.Replace("\r", ""));
        Assert.Contains("1 lines  | detect", stdout);

        (code, stdout, _) = await CliRun.Run("read", "--image", png, "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(stdout);
        var line = doc.RootElement.GetProperty("lines")[0];
        Assert.Equal("Disk quota exceeded (98%)", line.GetProperty("text").GetString());
        Assert.Equal(4, line.GetProperty("box").GetArrayLength());
        Assert.InRange(line.GetProperty("confidence").GetDouble(), 0.5, 1.0);
    }

    [Fact]
    public async Task Read_TheScreen_AndARegionOfIt()
    {
        using var xvfb = new XvfbServer(170, 480, 120);
        var png = Rendered("Update available: v2.13.1", 24);
        xvfb.ShowOnRoot(png);
        var (code, stdout, stderr) = await CliRun.Run("read", "--screen", "--display", xvfb.Display, "--json");
        Assert.True(code == 0, stderr);
        using (var doc = JsonDocument.Parse(stdout))
        {
            Assert.Equal(480, doc.RootElement.GetProperty("width").GetInt32());
            Assert.Contains(doc.RootElement.GetProperty("lines").EnumerateArray(), l => l.GetProperty("text").GetString()!.StartsWith("Update available: v2.13.1"));
        }
        // A region holding the picture's first copy only (display tiles it over the root window).
        var frame = Capture.ImageFile.Load(png);
        (code, stdout, stderr) = await CliRun.Run("read", "--screen", "--display", xvfb.Display, "--region", $"0,0,{frame.Width},{frame.Height}");
        Assert.True(code == 0, stderr);
        Assert.StartsWith("Update available: v2.13.1\t", stdout);
        Assert.Contains("\n1 lines", stdout.Replace("\r", ""));
    }

    [Fact]
    public async Task Read_OnAnImageWithoutText_PrintsNoLines_AndSucceeds()
    {
        var (code, stdout, _) = await CliRun.Run("read", "--image", Path.Combine(Repo.TrainedModels, "golden", "image.png"));
        Assert.Equal(0, code);
        Assert.StartsWith("0 lines", stdout);
    }

    [Theory]
    [InlineData(new[] { "read" }, "give exactly one of --image PATH or --screen")]
    [InlineData(new[] { "read", "--image", "a.png", "--screen" }, "give exactly one of --image PATH or --screen")]
    [InlineData(new[] { "read", "--image", "a.png", "--region", "0,0,10,10" }, "--region needs --screen")]
    [InlineData(new[] { "read", "--image", "/no/such/image.png" }, "image not found")]
    public async Task Read_BadArguments_AreOneLineErrors(string[] args, string message)
    {
        var (code, stdout, stderr) = await CliRun.Run(args);
        Assert.Equal(2, code);
        Assert.Contains(message, stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Equal("", stdout);
    }

    [Fact]
    public async Task Read_WithMissingModels_SaysHowToFetchThem()
    {
        var empty = Directory.CreateTempSubdirectory("assistant-no-ocr").FullName;
        var (code, _, stderr) = await CliRun.Run("read", "--image", Rendered("hello"), "--ocr-models", empty);
        Assert.Equal(2, code);
        Assert.Contains("fetch_models.sh", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Fact]
    public async Task Ask_SendsATextQuestionToOcr_AndAVisualOneToTheDecoder()
    {
        var png = Rendered("Build 4127 succeeded", 24, "#e8e8e8", "#1e1e1e");
        var (code, stdout, stderr) = await CliRun.Run("ask", "--image", png, "--query", "what does the message say?");
        Assert.Equal(0, code);
        Assert.StartsWith("Build 4127 succeeded\n", stdout.Replace("\r", ""));
        Assert.Contains("[ocr, route ocr (reading verb 'say')]", stderr);

        var scene = Path.Combine(Repo.TrainedModels, "golden", "image.png");
        (code, _, stderr) = await CliRun.Run("ask", "--image", scene, "--query", "what shape is the purple object?");
        Assert.Equal(0, code);
        Assert.Contains("route visual (no text cue)", stderr);

        (code, stdout, _) = await CliRun.Run("ask", "--image", png, "--query", "what does the message say?", "--route", "ocr", "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal("ocr", doc.RootElement.GetProperty("route").GetString());
        Assert.Equal("forced", doc.RootElement.GetProperty("route_rule").GetString());
        Assert.Equal("Build 4127 succeeded", doc.RootElement.GetProperty("answer").GetString());
    }
    [Fact]
    public async Task Live_AnswersAQuestionAboutText_ByReadingIt_AsAskDoes_TypedOrGiven()
    {
        // Before: live refused "what does the text say?" as unknown words, where ask routed it to OCR.
        var dir = Directory.CreateTempSubdirectory("assistant-live-read-").FullName;
        File.Copy(Rendered("Build 4127 succeeded", 24), Path.Combine(dir, "a.png"));
        var (code, stdout, stderr) = await CliRun.Run("live", "--source", $"folder:{dir}", "--query", "what does the message say?");
        Assert.True(code == 0, stderr);
        Assert.Contains($"frame 0 ({Path.Combine(dir, "a.png")}): what does the message say? -> Build 4127 succeeded", stdout);
        // Typed while it runs: a world question first, then one about text, read from the same picture.
        (code, stdout, stderr) = await CliRun.RunWithInput("what does the text say?\n", "live", "--source", $"file:{Path.Combine(dir, "a.png")}", "--query", "how many circles are there?", "--frames", "40", "--target-fps", "20");
        Assert.True(code == 0, stderr);
        Assert.Contains("new question, answered by reading the text", stdout);
        Assert.Contains("what does the text say? -> Build 4127 succeeded", stdout);
    }
}
