namespace Assistant.Ui.Tests;

/// <summary>The command line explains itself: plain-word parse errors, "did you mean", `help`, an example in every help.</summary>
public sealed class CliHelpTests
{
    private static async Task<string> OneLineError(params string[] args)
    {
        var (code, _, err) = await CliRun.Run(args);
        Assert.Equal(2, code);
        return Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Theory]
    [InlineData(new[] { "aks" }, "unknown command 'aks' for assistant: did you mean 'ask'?")]
    [InlineData(new[] { "models", "imprt", "x" }, "unknown command 'imprt' for assistant models: did you mean 'import'?")]
    [InlineData(new[] { "ask", "--image", "x.png", "--query", "q", "--tokens", "abc" }, "--tokens takes a whole number, got 'abc'")]
    [InlineData(new[] { "plan", "--latency-ms", "fast" }, "--latency-ms takes a number, got 'fast'")]
    [InlineData(new[] { "models", "import", "/tmp", "--out", "/tmp/x", "--quant", "q3" }, "--quant must be one of q8, q4; got 'q3'")]
    [InlineData(new[] { "ask", "--image", "x.png" }, "--query is required")]
    [InlineData(new[] { "ask", "--image", "x.png", "--query", "q", "--bogus" }, "'--bogus' is not an option or argument of this command")]
    [InlineData(new[] { "capture", "--source", "world", "--out", "/tmp" }, "--out /tmp is a folder: name a file in it, e.g. /tmp/frame.png")]
    [InlineData(new[] { "world", "render", "--seed", "1", "--out", "/tmp/assistant-never-written.jpg" }, "--out /tmp/assistant-never-written.jpg: this command writes PNG; name the file assistant-never-written.png")]
    public async Task ParseErrors_AreOneLineInPlainWords(string[] args, string expected)
    {
        var line = await OneLineError(args);
        Assert.StartsWith("error: " + expected, line, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", line, StringComparison.Ordinal);
        Assert.DoesNotContain("\\n", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HelpIsACommand_AndEveryCommandsHelpHasARunnableExample()
    {
        var (code, stdout, _) = await CliRun.Run("help");
        Assert.Equal(0, code);
        Assert.Contains("Commands:", stdout);
        (code, stdout, _) = await CliRun.Run("help", "models", "import");
        Assert.Equal(0, code);
        Assert.Contains("models import <HF_DIR>", stdout);
        foreach (var command in new[] { "ask", "eval", "plan", "live", "hotkey", "capture", "read", "listen", "serve", "models check", "models import", "world render", "law fit" })
        {
            (code, stdout, _) = await CliRun.Run([.. command.Split(' '), "--help"]);
            Assert.Equal(0, code);
            Assert.Contains("Example", stdout);
            Assert.Contains("  assistant " + command, stdout);
        }
    }

    [Fact]
    public async Task TheExamplesThatNeedNothingMore_RunAsWritten()
    {
        // The examples that use only what a clone has (the others need a camera, a checkpoint or a server's lifetime).
        var dir = Directory.CreateTempSubdirectory("assistant-examples-").FullName;
        foreach (var example in new[]
                 {
                     "law fit --points tests/data/paper_scaling_points.csv", "models check models/default", "eval --n 12",
                     "world render --seed 2000000 --out scene.png", "capture --source world --out frame.png",
                     "ask --image models/default/golden/image.png --query how_many_circles",
                 })
        {
            var args = example.Split(' ').Select(a => a.Replace("how_many_circles", "how many circles are there?")
                .Replace("tests/data", Path.Combine(Assistant.Tests.Repo.Root, "tests", "data"))
                .Replace("models/default", Path.Combine(Assistant.Tests.Repo.Root, "models", "default"))
                .Replace("scene.png", Path.Combine(dir, "scene.png")).Replace("frame.png", Path.Combine(dir, "frame.png"))).ToArray();
            var (code, _, err) = await CliRun.Run(args);
            Assert.True(code == 0, $"{example}: {err}");
        }
    }

    [Fact]
    public void TheNearestCommand_IsByEditDistance_WithSwapsAsOne()
    {
        Assert.Equal(1, CliHelpDistance("ask", "aks"));
        Assert.Equal(1, CliHelpDistance("serve", "serv"));
        Assert.Equal(3, CliHelpDistance("live", "law"));
    }

    private static int CliHelpDistance(string a, string b) =>
        (int)typeof(Cli).Assembly.GetType("Assistant.Ui.CliHelp")!.GetMethod("Distance", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic)!
            .Invoke(null, [a, b])!;
}
