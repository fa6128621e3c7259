using System.Text.Json;
using System.Text.Json.Nodes;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

/// <summary>
/// A model's answer reaches the terminal with its control characters escaped (issue 31, finding 3): a set whose
/// vocabulary maps a token the model emits to <c>ESC ]0;pwned BEL ESC [2J ESC[1;31m</c> (set the title, clear the
/// screen, red text), as a stranger's checkpoint can; --json keeps the exact text.
/// </summary>
public sealed class TerminalEscapeTests
{
    private const string Hostile = "\u001b]0;pwned\u0007\u001b[2J\u001b[1;31m";

    /// <summary>GPT-2's byte-to-character table, as byte-level BPE vocabularies spell bytes.</summary>
    private static string ByteLevel(string text)
    {
        var printable = Enumerable.Range(33, 94).Concat(Enumerable.Range(161, 12)).Concat(Enumerable.Range(174, 82)).ToHashSet();
        var map = new Dictionary<int, char>();
        int next = 256;
        for (int b = 0; b < 256; b++) map[b] = printable.Contains(b) ? (char)b : (char)next++;
        return string.Concat(System.Text.Encoding.UTF8.GetBytes(text).Select(b => map[b]));
    }

    [Fact]
    public async Task AnAnswerWithTerminalEscapes_IsPrintedEscaped_AndExactInJson()
    {
        var made = HfCheckpoints.Get("clip-qwen2-bf16-shards");
        var set = Repo.CopyFolder(made.Set);
        // The second greedy token of the golden answer (a merged token, not in the prompt) becomes the hostile string.
        var golden = JsonNode.Parse(File.ReadAllText(Path.Combine(set, "golden", "golden.json")))!;
        int id = golden["answers"]!["full"]!["greedy_tokens"]!.AsArray().Select(x => (int)x!).Skip(1).First();
        var vocab = JsonNode.Parse(File.ReadAllText(Path.Combine(set, "vocab.json")))!.AsObject();
        var old = vocab.Single(kv => (int)kv.Value! == id).Key;
        Assert.True(old.Length > 1, $"token {id} '{old}' is a single byte");
        vocab.Remove(old);
        vocab[ByteLevel(Hostile)] = id;
        File.WriteAllText(Path.Combine(set, "vocab.json"), vocab.ToJsonString());
        var merges = File.ReadAllLines(Path.Combine(set, "merges.txt"));
        File.WriteAllLines(Path.Combine(set, "merges.txt"), merges.Where(l => l.StartsWith('#') || !(l.Split(' ') is [var a, var b] && (a + b == old || a == old || b == old))));
        string[] ask = ["ask", "--models", set, "--image", Path.Combine(set, "golden", "image.png"), "--query", "What is in this picture?",
            "--compressor", "full", "--max-tokens", "4", "--ignore-stop"];

        var (code, stdout, stderr) = await CliRun.Run(ask);
        Assert.True(code == 0, stderr);
        Assert.DoesNotContain('\u001b', stdout);
        Assert.DoesNotContain('\u0007', stdout);
        Assert.Contains("\\x1b]0;pwned\\x07\\x1b[2J\\x1b[1;31m", stdout);

        (code, stdout, stderr) = await CliRun.Run([.. ask, "--json"]);
        Assert.True(code == 0, stderr);
        Assert.Contains(Hostile, JsonDocument.Parse(stdout).RootElement.GetProperty("answer").GetString());
        Directory.Delete(set, recursive: true);
    }

    [Fact]
    public async Task AnImporterErrorQuotingTheCheckpoint_IsPrintedEscaped_AndCut()
    {
        // model_type is echoed by the importer's refusal: its escape sequence must not colour the terminal, and its
        // 5,000 characters must not make a 5,000-character line.
        var made = HfCheckpoints.Get("clip-qwen2-bf16-shards");
        var hf = Repo.CopyFolder(made.Checkpoint);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(hf, "config.json")))!.AsObject();
        config["model_type"] = "\u001b[31mllava" + new string('x', 5000);
        File.WriteAllText(Path.Combine(hf, "config.json"), config.ToJsonString());
        var (code, _, stderr) = await CliRun.Run("models", "import", hf, "--out", hf + "-set");
        Assert.Equal(2, code);
        Assert.DoesNotContain('\u001b', stderr);
        Assert.Contains("\\x1b[31mllava", stderr);
        Assert.All(stderr.Split('\n'), l => Assert.True(l.Length <= 401, $"a line of {l.Length} characters"));
        Directory.Delete(hf, recursive: true);
    }
}
