using Assistant.Capture;
using Assistant.Capture.World;

namespace Assistant.Ui.Tests;

public sealed class CaptureCliTests
{
    private static string Temp(string name) => Path.Combine(Path.GetTempPath(), $"assistant-cap-{Guid.NewGuid():N}", name);

    [Fact]
    public async Task Capture_SavesWhatTheSourceDelivers_AndReportsSizeAndRate()
    {
        var out1 = Temp("one.png");
        var (code, stdout, _) = await CliRun.Run("capture", "--source", "world:2000010", "--out", out1);
        Assert.Equal(0, code);
        Assert.Contains("256x256", stdout);
        Assert.Contains("frames/s", stdout);
        Assert.Equal(WorldScene.RenderFrame(WorldScene.Generate(2000010), 256).Rgb, ImageFile.Load(out1).Rgb);

        var many = Temp("many.png");
        (code, _, _) = await CliRun.Run("capture", "--source", "world:2000010", "--out", many, "--frames", "3");
        Assert.Equal(0, code);
        Assert.Equal(3, Directory.GetFiles(Path.GetDirectoryName(many)!, "many-*.png").Length);
    }

    [Fact]
    public async Task Capture_FromASourceThatEnds_SaysSo()
    {
        var folder = Temp("shots");
        Directory.CreateDirectory(folder);
        PngFile.Write(WorldScene.RenderFrame(WorldScene.Generate(1), 32), Path.Combine(folder, "a.png"));
        var (code, stdout, stderr) = await CliRun.Run("capture", "--source", $"folder:{folder}", "--out", Temp("x.png"), "--frames", "5");
        Assert.Equal(0, code);
        Assert.Contains("ended after 1 frames", stderr);
        Assert.Contains("1 frames in", stdout);
    }

    [Fact]
    public async Task Capture_FromNowhere_IsOneLine()
    {
        var (code, _, stderr) = await CliRun.Run("capture", "--source", "folder:/nonexistent", "--out", Temp("x.png"));
        Assert.Equal(2, code);
        Assert.Equal("error: folder not found: /nonexistent", stderr.Trim());
    }
}
