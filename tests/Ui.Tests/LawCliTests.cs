using System.Text.Json.Nodes;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

public sealed class LawCliTests
{
    private static readonly string PaperCsv = Path.Combine(Repo.Root, "tests", "data", "paper_scaling_points.csv");

    [Fact]
    public async Task LawFit_Json_OnThePapersPoints()
    {
        var (code, stdout, _) = await CliRun.Run("law", "fit", "--points", PaperCsv, "--json", "--bootstrap", "50");
        Assert.Equal(0, code);
        var j = JsonNode.Parse(stdout)!;
        Assert.InRange((double)j["alpha"]!, 0.065, 0.085);
        Assert.InRange((double)j["beta"]!, 0.012, 0.018);
        Assert.InRange((double)j["optimal_tokens"]!["q50"]!, 8, 20);
        Assert.Equal(28, (int)j["points"]!);
        Assert.False((bool)j["degenerate"]!);
    }

    [Fact]
    public async Task LawFit_Text_ShowsIntervalsAndTheOptimalV()
    {
        var (code, stdout, _) = await CliRun.Run("law", "fit", "--points", PaperCsv, "--bootstrap", "20");
        Assert.Equal(0, code);
        Assert.Contains("95% [", stdout);
        Assert.Contains("Q=50 ->", stdout);
    }

    [Fact]
    public async Task LawFit_WhereTokensPayMoreThanParameters_HasNoFiniteOptimum()
    {
        var world = Path.Combine(Repo.Root, "tests", "data", "world_scaling_points.csv");
        var (code, stdout, _) = await CliRun.Run("law", "fit", "--points", world, "--bounds", "a=0:10,alpha=0:0.5,beta=0:0.5,d=0:0.3", "--json", "--bootstrap", "20");
        Assert.Equal(0, code);
        var j = JsonNode.Parse(stdout)!;
        Assert.True((double)j["beta"]! >= (double)j["alpha"]!);
        Assert.Null(j["optimal_tokens"]!["q50"]);
        var (_, text, _) = await CliRun.Run("law", "fit", "--points", world, "--bounds", "a=0:10,alpha=0:0.5,beta=0:0.5,d=0:0.3", "--bootstrap", "0");
        Assert.Contains("no finite compute-optimal V", text);
    }

    [Fact]
    public async Task LawFit_Unbounded_IsRefused()
    {
        var (code, _, stderr) = await CliRun.Run("law", "fit", "--points", PaperCsv, "--bounds", "none");
        Assert.Equal(2, code);
        Assert.Contains("degenerate", stderr);
    }

    [Fact]
    public async Task LawFit_MissingFile_IsAClearError()
    {
        var (code, _, stderr) = await CliRun.Run("law", "fit", "--points", "/nonexistent.csv");
        Assert.Equal(2, code);
        Assert.Equal("error: points file not found: /nonexistent.csv", stderr.Trim());
    }

    private static string Points(string body)
    {
        var path = Path.Combine(Path.GetTempPath(), $"assistant-points-{Guid.NewGuid():N}.csv");
        File.WriteAllText(path, body);
        return path;
    }

    [Fact]
    public async Task LawFit_Json_OnIdenticalRows_IsValidJson_NotAnInternalError()
    {
        // Ten identical rows used to end in exit 1: alpha / beta was infinite, which JSON cannot hold.
        var rows = string.Concat(Enumerable.Repeat("0.5,4,0.7\n", 10));
        var (code, stdout, stderr) = await CliRun.Run("law", "fit", "--points", Points("llm_params_b,visual_tokens,accuracy\n" + rows), "--json", "--bootstrap", "20");
        Assert.True(code == 0, stderr);
        Assert.NotNull(System.Text.Json.Nodes.JsonNode.Parse(stdout));
    }

    [Fact]
    public async Task LawFit_RefusesSpecialFilesBinaryHeadersAndHugeFiles_InOneLine()
    {
        var (code, _, stderr) = await CliRun.Run("law", "fit", "--points", "/dev/zero");
        Assert.Equal((2, "error: points file /dev/zero is empty (0 bytes) or not a regular file"), (code, stderr.Trim()));
        var link = Path.Combine(Path.GetTempPath(), $"assistant-points-{Guid.NewGuid():N}.csv");
        File.CreateSymbolicLink(link, "/dev/zero");  // a link reports its own length: it grew past 6 GB before
        (code, _, stderr) = await CliRun.Run("law", "fit", "--points", link);
        Assert.Equal((2, $"error: points file {link} is empty (0 bytes) or not a regular file"), (code, stderr.Trim()));

        var binary = Points("\u0001\u001b[2J\npng\u0000garbage\n1,2,3\n");
        (code, _, stderr) = await CliRun.Run("law", "fit", "--points", binary);
        Assert.Equal(2, code);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));  // was three lines of the file's header
        Assert.DoesNotContain('\u001b', stderr);

        var many = Points("llm_params_b,visual_tokens,accuracy\n" + string.Concat(Enumerable.Range(0, 2001).Select(i => $"0.5,{1 + i % 64},0.7\n")));
        (code, _, stderr) = await CliRun.Run("law", "fit", "--points", many);
        Assert.Equal(2, code);
        Assert.Contains("2001 points; the limit is 2000", stderr);
    }
}
