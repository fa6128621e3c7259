using System.Text.Json.Nodes;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

/// <summary>One name for each thing in what the commands print: `--json` keys, and the live session's frame message.</summary>
public sealed class JsonMessageTests
{
    private static readonly string Image = Golden.Trained.ImagePath;

    [Fact]
    public async Task EveryJsonCommand_NamesTheSetsFolderAndItsNameTheSameWay()
    {
        string folder = Path.GetFullPath(Repo.TrainedModels);
        string name = (string)JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "manifest.json")))!["name"]!;
        string[][] commands =
        [
            ["ask", "--models", folder, "--image", Image, "--query", "how many circles are there?", "--max-tokens", "2", "--json"],
            ["eval", "--models", folder, "--n", "6", "--json"],
            ["plan", "--models", folder, "--latency-ms", "1000", "--json"],
            ["models", "check", folder, "--json"],
        ];
        foreach (var args in commands)
        {
            var (code, stdout, stderr) = await CliRun.Run(args);
            Assert.True(code == 0, $"{args[0]}: {stderr}");
            var j = JsonNode.Parse(stdout)!;
            Assert.Equal(folder, (string)j["models"]!);
            Assert.Equal(name, (string)j["set_name"]!);
            Assert.Equal("cpu", (string)j["ep"]!);
        }
    }

    [Fact]
    public async Task TheOverlaysFrameMessage_IsTheRecordFilesFrameLine()
    {
        string record = Path.Combine(Directory.CreateTempSubdirectory("assistant-message-").FullName, "run.jsonl");
        await using var overlay = await OverlayProcess.StartAsync("--record", record);
        using var http = new HttpClient { BaseAddress = overlay.BaseUri };
        JsonNode? state = null;
        for (int i = 0; i < 600 && state is null; i++)
        {
            var response = await http.GetAsync(new Uri("api/state", UriKind.Relative));
            if (response.StatusCode == System.Net.HttpStatusCode.OK) state = JsonNode.Parse(await response.Content.ReadAsStringAsync());
            else await Task.Delay(100);
        }
        Assert.NotNull(state);
        long frame = (long)state["frame"]!;
        string? line = null;
        for (int i = 0; i < 100 && line is null; i++)
        {
            using var reader = new StreamReader(new FileStream(record, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
            line = (await reader.ReadToEndAsync()).Split('\n').FirstOrDefault(l => l.StartsWith($"{{\"frame\":{frame},", StringComparison.Ordinal));
            if (line is null) await Task.Delay(100);
        }
        Assert.NotNull(line);
        // The same report, serialized once by one method: the same text, key for key.
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(line), state), $"{line}\n{state.ToJsonString()}");
        foreach (var key in new[] { "question", "answer", "timings_ms", "decoder", "compressor", "tokens", "controls", "width", "height" })
            Assert.True(state[key] is not null, $"no '{key}' in {line}");
    }
}
