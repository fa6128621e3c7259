using System.Text.Json.Nodes;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

public sealed class PlanCliTests
{
    [Fact]
    public async Task Plan_Json_ChoosesWithinTheBudget_OrSaysNothingFits()
    {
        var (code, stdout, _) = await CliRun.Run("plan", "--latency-ms", "1000", "--json", "--models", Repo.TrainedModels);
        Assert.Equal(0, code);
        var j = JsonNode.Parse(stdout)!;
        Assert.True((bool)j["fits"]!);
        Assert.True((double)j["choice"]!["total_ms"]! <= 1000);
        Assert.Equal(8, j["candidates"]!.AsArray().Count);
        Assert.NotNull(j["runner_up"]);

        var (code2, stdout2, _) = await CliRun.Run("plan", "--latency-ms", "0.000001", "--json", "--models", Repo.TrainedModels);
        Assert.Equal(0, code2);
        var n = JsonNode.Parse(stdout2)!;
        Assert.False((bool)n["fits"]!);
        Assert.Equal(n["candidates"]!.AsArray().Min(c => (double)c!["total_ms"]!), (double)n["choice"]!["total_ms"]!);
    }

    [Fact]
    public async Task Plan_OnASetWithoutALaw_IsAClearError()
    {
        var (code, _, stderr) = await CliRun.Run("plan", "--latency-ms", "10", "--models", Repo.TinyModels);
        Assert.Equal(2, code);
        Assert.Contains("no scaling law", stderr);
    }
    [Fact]
    public async Task Plan_OnAnImportedSet_ShowsCalibrationProgress_SaysWhoseLawItIs_AndKeepsAccuraciesInRange()
    {
        // Before: "calibrating this machine (a few seconds)..." then minutes of silence on a 0.5B set, and a predicted
        // accuracy of -11.1% from the paper's law with no word that it is the paper's.
        var set = HfCheckpoints.Get("clip-qwen2-bf16-shards").Set;
        var cache = new Dictionary<string, string> { ["ASSISTANT_CACHE"] = Directory.CreateTempSubdirectory("assistant-plan-cache-").FullName };
        var (code, stdout, stderr) = await AssistantProcess.RunAsync(["plan", "--latency-ms", "1000", "--models", set], cache);
        Assert.True(code == 0, stderr);
        Assert.Matches(@"calibrating this machine: the vision encoder takes [\d.]+ ms a run; 1 decoder\(s\) and their compressors next, about .* more", stderr);
        Assert.Matches(@"calibrating this machine: decoder \S+ timed \(1/1\)", stderr);
        Assert.Contains("predicted accuracy: the paper's law", stdout);
        (code, stdout, stderr) = await AssistantProcess.RunAsync(["plan", "--latency-ms", "1000", "--models", set, "--json"], cache);
        Assert.True(code == 0, stderr);
        Assert.DoesNotContain("calibrating", stderr);  // cached now
        var j = JsonNode.Parse(stdout)!;
        Assert.StartsWith("the paper's law", (string)j["law"]!);
        Assert.All(j["candidates"]!.AsArray(), c => Assert.InRange((double)c!["predicted_accuracy"]!, 0.0, 1.0));
    }
}
