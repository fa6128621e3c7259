using System.Diagnostics;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

/// <summary>
/// Every file a command reads or writes, given as a FIFO, a device, a link to /dev/zero or a folder (issue 20):
/// one line, exit 2, within 5 s, from the real process (a blocked open is what these cases used to do).
/// </summary>
public sealed class SpecialFileCliTests
{
    private static readonly string Dir = Directory.CreateTempSubdirectory("assistant-special-").FullName;

    private static string Fifo(string name)
    {
        var path = Path.Combine(Dir, $"{Guid.NewGuid():N}-{name}");
        Tool.Run("mkfifo", [path]);
        return path;
    }

    private static string ZeroLink(string name)
    {
        var path = Path.Combine(Dir, $"{Guid.NewGuid():N}-{name}");
        File.CreateSymbolicLink(path, "/dev/zero");
        return path;
    }

    public static TheoryData<string, string[], string> Cases()
    {
        var models = Repo.TinyModels;
        return new()
        {
            { "audio FIFO", ["listen", "--file", Fifo("a.wav")], "not a regular file" },                       // blocked
            { "audio link to /dev/zero", ["listen", "--file", ZeroLink("a.wav")], "not a regular file" },
            { "audio device", ["listen", "--file", "/dev/zero"], "not a regular file" },
            { "video FIFO", ["live", "--models", models, "--source", $"file:{Fifo("v.mp4")}", "--frames", "2"], "not a regular file" },
            { "video link to /dev/zero", ["live", "--models", models, "--source", $"file:{ZeroLink("v.mp4")}", "--frames", "2"], "not a regular file" },
            { "points link to /dev/zero", ["law", "fit", "--points", ZeroLink("p.csv")], "not a regular file" },      // grew past 6 GB
            { "image link to /dev/zero", ["ask", "--models", models, "--image", ZeroLink("i.png"), "--query", "what shape?"], "not a regular file" },
            { "record into a folder", ["live", "--models", models, "--frames", "2", "--record", Dir], "is a folder" },  // internal error before
            { "record into a FIFO nobody reads", ["live", "--models", models, "--frames", "2", "--record", Fifo("r.jsonl")], "FIFO with no reader" },  // blocked
            { "record where no folder is", ["live", "--models", models, "--frames", "2", "--record", "/nonexistent/dir/r.jsonl"], "cannot write the record file" },
        };
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task ASpecialFile_IsOneLine_Exit2_Within5s(string what, string[] args, string expected)
    {
        var clock = Stopwatch.StartNew();
        var (code, _, stderr) = await AssistantProcess.RunAsync(args, timeoutSeconds: 30);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5) + TimeSpan.FromSeconds(3), $"{what}: {clock.Elapsed.TotalSeconds:F1} s");  // 3 s: the process's start
        Assert.True(code == 2, $"{what}: exit {code}: {stderr}");
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"{what}: {stderr}");
        Assert.Contains(expected, lines[0]);
    }
}
