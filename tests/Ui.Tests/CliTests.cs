using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

/// <summary>The command line end to end, in process: output, JSON, and every bad input as one line + exit 2.</summary>
public sealed class CliTests
{
    private static readonly string Image = Golden.Tiny.ImagePath;

    private static async Task<string> FailsWithOneLine(params string[] args)
    {
        var (code, _, err) = await CliRun.Run(args);
        Assert.Equal(2, code);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.DoesNotContain(" at ", err.Replace("error: ", ""), StringComparison.Ordinal);  // no stack frames
        return lines[0];
    }

    private static string Temp(byte[] bytes)
    {
        var path = Path.Combine(Path.GetTempPath(), $"assistant-cli-{Guid.NewGuid():N}.png");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public async Task Ask_StreamsTheAnswerAloneToStdout_AndOneTimingsLineNamingTheCompressorToStderr()
    {
        foreach (var kind in new[] { "quecc", "tokenpacker" })
        {
            var (code, stdout, stderr) = await CliRun.Run("ask", "--image", Image, "--query", "what color is the circle?", "--models", Repo.TinyModels,
                "--max-tokens", "6", "--compressor", kind);
            Assert.Equal(0, code);
            Assert.Single(stdout.TrimEnd('\n').Split('\n'));  // `$(assistant ask ...)` is the answer
            var line = Assert.Single(stderr.TrimEnd('\n').Split('\n'));
            Assert.Contains($"+ {kind} V=", line);
            foreach (var stage in new[] { "preprocess", "vision", "query_prefill", kind, "visual_prefill", "decode" })
                Assert.Contains($"{stage} ", line);
            Assert.Contains("tok/s", line);
        }
    }

    [Fact]
    public async Task Ask_OnAPictureOutsideTheWorld_AnswersOneWord_NotARunawayRepetition()
    {
        // ffmpeg's 640x480 test card is no world scene: before the word limit the default set printed
        // "fivesixsixsix..." to the token limit. Its manifest says answers are one word, so it stops after one.
        var card = Path.Combine(Path.GetTempPath(), $"assistant-testsrc-{Guid.NewGuid():N}.png");
        Tool.Run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x480:rate=1", "-frames:v", "1", "-y", card]);
        var (code, stdout, _) = await CliRun.Run("ask", "--image", card, "--query", "how many objects are there?", "--json");
        Assert.Equal(0, code);
        var j = JsonNode.Parse(stdout)!;
        Assert.Single(j["token_ids"]!.AsArray());
        Assert.Matches("^[a-z]+$", ((string)j["answer"]!).Trim());
    }

    [Fact]
    public async Task ResponseFiles_AreOff_SoAnArgumentCannotMakeItReadAFile()
    {
        var err = await FailsWithOneLine("ask", "@/etc/passwd");
        Assert.DoesNotContain("root:", err);  // the file's first line used to come back in the error
        var fifo = Path.Combine(Path.GetTempPath(), $"assistant-fifo-{Guid.NewGuid():N}");
        Tool.Run("mkfifo", [fifo]);
        var clock = Stopwatch.StartNew();
        await FailsWithOneLine("ask", $"@{fifo}");  // used to block forever
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30));
        File.Delete(fifo);
    }

    [Theory]
    [InlineData("--decoder", "x\nsecond line")]
    [InlineData("--decoder", "\u001b]0;pwned\u0007\u001b[31mred")]
    [InlineData("--image", "/tmp/\u001b[2Jcleared.png")]
    [InlineData("--compressor", "a\rb\u2028c")]
    public async Task EchoedValues_StayOneLine_AndCannotDriveTheTerminal(string option, string escaped)
    {
        var value = System.Text.RegularExpressions.Regex.Unescape(escaped);
        var args = new List<string> { "ask", "--image", Image, "--query", "what shape is it?", "--models", Repo.TinyModels };
        int at = args.IndexOf(option);
        if (at >= 0) args[at + 1] = value;
        else args.AddRange([option, value]);
        var err = await FailsWithOneLine([.. args]);
        Assert.DoesNotContain(err, c => char.IsControl(c) || c == '\u2028');  // no raw line break, escape or separator
        if (value.Contains('\u001b')) Assert.Contains("\\x1b", err);  // shown, escaped
        if (value.Contains('\n')) Assert.Contains("x\\nsecond line", err);
    }

    [Fact]
    public async Task AnImageOverTheFileSizeCap_IsOneLine_AndTheCapIsSettable()
    {
        var env = new Dictionary<string, string> { ["ASSISTANT_MAX_IMAGE_MB"] = "0.0005" };  // 524 B: the golden PNG is 782
        var (code, _, err) = await AssistantProcess.RunAsync(["ask", "--image", Image, "--query", "what shape is it?", "--models", Repo.TinyModels], env);
        Assert.Equal(2, code);
        Assert.Matches(@"^error: image .* is \d+ B; the limit is 524 B \(ASSISTANT_MAX_IMAGE_MB\)\s*$", err);
    }

    [Fact]
    public async Task Ask_Json_ReportsConfigurationAndTimings()
    {
        var (code, stdout, _) = await CliRun.Run("ask", "--image", Image, "--query", "is there a star?", "--models", Repo.TinyModels, "--tokens", "16", "--compressor", "tokenpacker", "--json", "--max-tokens", "4");
        Assert.Equal(0, code);
        var j = JsonNode.Parse(stdout)!;
        Assert.Equal(16, (int)j["tokens"]!);
        Assert.Equal("tokenpacker", (string)j["compressor"]!);
        Assert.Equal("cpu", (string)j["ep"]!);
        Assert.Equal(4, j["token_ids"]!.AsArray().Count);
        Assert.Equal(6, j["timings_ms"]!.AsObject().Count);
    }

    [Fact]
    public async Task Ask_Sampling_IsReproducibleWithASeed()
    {
        string[] args = ["ask", "--image", Image, "--query", "how many shapes?", "--models", Repo.TinyModels, "--json", "--temperature", "1.0", "--top-p", "0.9", "--max-tokens", "10"];
        var a = JsonNode.Parse((await CliRun.Run([.. args, "--seed", "3"])).Out)!["token_ids"]!.ToJsonString();
        var b = JsonNode.Parse((await CliRun.Run([.. args, "--seed", "3"])).Out)!["token_ids"]!.ToJsonString();
        var c = JsonNode.Parse((await CliRun.Run([.. args, "--seed", "4"])).Out)!["token_ids"]!.ToJsonString();
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public async Task ModelsCheck_DescribesTheSet()
    {
        var (code, stdout, _) = await CliRun.Run("models", "check", Repo.TinyModels);
        Assert.Equal(0, code);
        Assert.Contains("OK on cpu", stdout);
        Assert.Contains("V in {1, 4, 16, 64}", stdout);
        Assert.Contains("params", stdout);
    }

    [Fact]
    public async Task ModelsCheck_Json()
    {
        var (code, stdout, _) = await CliRun.Run("models", "check", Repo.TinyModels, "--json");
        Assert.Equal(0, code);
        var j = JsonNode.Parse(stdout)!;
        Assert.True((bool)j["ok"]!);
        Assert.Equal(new[] { 1, 4, 16, 64 }, j["decoders"]![0]!["compressors"]![0]!["tokens"]!.AsArray().Select(x => (int)x!));
        Assert.True((long)j["vision"]!["params"]! > 0);
        // What each component's weights cost the process at load: one entry per component, none negative.
        var resident = j["resident_mb_at_load"]!.AsObject();
        var decoders = j["decoders"]!.AsArray().Select(d => (string)d!["name"]!).ToList();
        Assert.Equal(new[] { "vision" }.Concat(decoders.SelectMany(d => new[] { $"{d} embedding", $"{d} decoder", $"{d} compressors" })).Order(),
            resident.Select(kv => kv.Key).Order());
        Assert.All(resident, kv => Assert.True((double)kv.Value! >= 0, kv.Key));
    }

    [Fact]
    public async Task Bad_MissingModelFolder() =>
        Assert.Contains("model folder not found", await FailsWithOneLine("ask", "--image", Image, "--query", "q?", "--models", "/nonexistent/set"));

    [Fact]
    public async Task Bad_MissingComponentFile()
    {
        var dir = Repo.CopyTinyModels();
        File.Delete(Path.Combine(dir, "vision.onnx"));
        Assert.Contains("model file not found", await FailsWithOneLine("ask", "--image", Image, "--query", "q?", "--models", dir));
    }

    [Fact]
    public async Task Bad_ManifestNamesATensorTheGraphLacks()
    {
        var dir = Repo.CopyTinyModels();
        var path = Path.Combine(dir, "manifest.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"features_multi\"", "\"features_many\""));
        Assert.Contains("has no output 'features_many'", await FailsWithOneLine("models", "check", dir));
    }

    [Fact]
    public async Task Bad_DimensionMismatch()
    {
        var dir = Repo.CopyTinyModels();
        var path = Path.Combine(dir, "manifest.json");
        var m = JsonNode.Parse(File.ReadAllText(path))!;
        m["vision"]!["dim"] = 32;
        File.WriteAllText(path, m.ToJsonString());
        Assert.Contains("dimension mismatch", await FailsWithOneLine("ask", "--image", Image, "--query", "q?", "--models", dir));
    }

    /// <summary>A copy of the tiny set with one of its decoder's graphs cut to its first third.</summary>
    private static string TinySetWithACutGraph(string file)
    {
        var dir = Repo.CopyTinyModels();
        Repo.CutToAThird(Path.Combine(dir, "decoder-d64-l2", file));
        return dir;
    }

    [Fact]
    public async Task Bad_CorruptOnnx() =>
        Assert.Contains("cannot load", await FailsWithOneLine("models", "check", TinySetWithACutGraph("decoder.onnx")));

    [Fact]
    public async Task Bad_CorruptCompressorOffTheDefaultPath_IsFoundByCheckAndByItsFirstUse()
    {
        // Compressors other than the default open when first used: a broken one does not stop the set from answering,
        // fails in one line where it is asked for, and models check (which opens every graph) finds it.
        var dir = TinySetWithACutGraph("tokenpacker_V4.onnx");
        var (code, _, stderr) = await CliRun.Run("ask", "--image", Image, "--query", "what is here?", "--models", dir);
        Assert.True(code == 0, stderr);
        var asked = await FailsWithOneLine("ask", "--image", Image, "--query", "what is here?", "--models", dir, "--compressor", "tokenpacker", "--tokens", "4");
        Assert.Contains("cannot load", asked);
        Assert.Contains("tokenpacker_V4.onnx", asked);
        var check = await FailsWithOneLine("models", "check", dir);
        Assert.Contains("cannot load", check);
        Assert.Contains("tokenpacker_V4.onnx", check);
    }

    [Fact]
    public async Task Bad_ZeroByteImage() =>
        Assert.Contains("0 bytes", await FailsWithOneLine("ask", "--image", Temp([]), "--query", "q?", "--models", Repo.TinyModels));

    [Fact]
    public async Task Bad_UnreadableImage() =>
        Assert.Contains("not a readable image", await FailsWithOneLine("ask", "--image", Temp("plain text, not an image"u8.ToArray()), "--query", "q?", "--models", Repo.TinyModels));

    [Fact]
    public async Task Bad_ImageHeaderClaimingAHugeSize() =>
        Assert.Contains("largest accepted side", await FailsWithOneLine("ask", "--image", Temp("GIF89a but not really"u8.ToArray()), "--query", "q?", "--models", Repo.TinyModels));

    [Fact]
    public async Task Bad_MissingImage() =>
        Assert.Contains("image not found", await FailsWithOneLine("ask", "--image", "/nonexistent.png", "--query", "q?", "--models", Repo.TinyModels));

    [Theory]
    [InlineData("")]
    [InlineData("    ")]
    public async Task Bad_EmptyQuery(string query) =>
        Assert.Contains("query is empty", await FailsWithOneLine("ask", "--image", Image, "--query", query, "--models", Repo.TinyModels));

    [Fact]
    public async Task Bad_TokensNotOffered() =>
        Assert.Contains("--tokens 5 is not offered", await FailsWithOneLine("ask", "--image", Image, "--query", "q?", "--models", Repo.TinyModels, "--tokens", "5"));

    [Fact]
    public async Task Bad_DmlOnLinux() =>
        Assert.Contains("needs Windows", await FailsWithOneLine("ask", "--image", Image, "--query", "q?", "--models", Repo.TinyModels, "--ep", "dml"));

    [Fact]
    public async Task Bad_CudaOnACpuBuild() =>
        Assert.Contains("Gpu.Linux", await FailsWithOneLine("models", "check", Repo.TinyModels, "--ep", "cuda"));

    [Fact]
    public async Task Bad_UnknownOptionOrMissingRequired()
    {
        Assert.Contains("--query", await FailsWithOneLine("ask", "--image", Image));
        await FailsWithOneLine("ask", "--image", Image, "--query", "q", "--bogus");
    }

    [Fact]
    public async Task NoArguments_ShowsTheCommands()
    {
        var (code, stdout, _) = await CliRun.Run();
        Assert.Equal(0, code);
        foreach (var command in new[] { "ask", "models", "eval", "world", "law", "plan", "live" })
            Assert.Contains($"  {command} ", stdout);
    }

    [Fact]
    public async Task Bad_UnknownCommand_PointsToTheHelp() =>
        Assert.Contains("(see assistant --help)", await FailsWithOneLine("teleport"));

    [Fact]
    public async Task Bad_MaxTokensOutOfRange() =>
        Assert.Contains("--max-tokens", await FailsWithOneLine("ask", "--image", Image, "--query", "q?", "--models", Repo.TinyModels, "--max-tokens", "0"));

    [Fact]
    public async Task RealProcess_ExitsTwoWithOneLine_NoStackTrace()
    {
        // The built executable, not the in-process entry point: what a user's shell sees.
        var (code, _, err) = await AssistantProcess.RunAsync(["ask", "--image", "/nonexistent.png", "--query", "q?"]);
        Assert.Equal(2, code);
        Assert.Equal("error: image not found: /nonexistent.png", err.Trim());
    }
}
