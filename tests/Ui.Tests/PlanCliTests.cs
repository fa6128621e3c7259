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
}
