using System.Text.Json;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

/// <summary>
/// The checkpoint fuzz suite (issue 31, finding 8): tools/fuzz_checkpoint.py makes 60 seeded mutations of a valid tiny
/// llava-hf checkpoint (config values, safetensors header bytes and entries, index entries, tokenizer entries, chat
/// template text) and imports each as <c>assistant models import</c> does, judging what is imported with this build's
/// <c>models check --golden</c>. Every case must be refused in one line (exit 2) or give a set the engine accepts, within
/// 30 s and 1 GB of the importer's peak memory, leaving nothing beside the target. docs/ROBUSTNESS.md has the counts.
/// </summary>
public sealed class CheckpointFuzzTests
{
    [Fact]
    public void SixtySeededMutations_AreEachRefusedInOneLine_OrAcceptedByTheEngine_WithinBounds()
    {
        var report = Path.Combine(Path.GetTempPath(), $"assistant-fuzz-{Guid.NewGuid():N}.json");
        try
        {
            var stdout = Tool.Run("/usr/bin/python3", [Path.Combine(Repo.Root, "tools", "fuzz_checkpoint.py"), "--engine", AssistantProcess.Executable,
                "--cases", "60", "--seed", "31", "--report", report]);
            using var doc = JsonDocument.Parse(File.ReadAllText(report));
            var counts = doc.RootElement.GetProperty("counts");
            Assert.True(counts.GetProperty("violations").GetInt32() == 0, stdout);
            Assert.Equal(60, counts.GetProperty("cases").GetInt32());
            Assert.Equal(60, counts.GetProperty("refused").GetInt32() + counts.GetProperty("accepted").GetInt32());
            // Every refusal names its cause; none falls through to the importer's last handler ("could not be imported").
            Assert.True(counts.GetProperty("refused_by_the_last_handler").GetInt32() == 0, stdout);
            foreach (var family in counts.GetProperty("by_family").EnumerateObject())
                Assert.True(family.Value.GetProperty("refused").GetInt32() >= 5, $"{family.Name}: {family.Value}");
            Assert.InRange(counts.GetProperty("max_seconds").GetDouble(), 0, 30);
            Assert.InRange(counts.GetProperty("max_peak_mb").GetInt32(), 1, 1024);
        }
        finally
        {
            File.Delete(report);
        }
    }

    /// <summary>
    /// The same suite on the other families' layouts: llava-1.5 (a Llama 2 tokenizer, so tokenizer.model is mutated
    /// too: its bytes, its length, its model type, pieces, scores, piece types and normaliser) and SmolVLM (Idefics3's
    /// config, processor_config.json and chat_template.json).
    /// </summary>
    [Theory]
    [InlineData("llava-1.5", 36)]
    [InlineData("smolvlm", 30)]
    public void TheOtherFamilies_SeededMutations_AreEachRefusedInOneLine_OrAcceptedByTheEngine(string family, int cases)
    {
        var report = Path.Combine(Path.GetTempPath(), $"assistant-fuzz-{Guid.NewGuid():N}.json");
        try
        {
            var stdout = Tool.Run("/usr/bin/python3", [Path.Combine(Repo.Root, "tools", "fuzz_checkpoint.py"), "--engine", AssistantProcess.Executable,
                "--family", family, "--cases", cases.ToString(), "--seed", "29", "--report", report]);
            using var doc = JsonDocument.Parse(File.ReadAllText(report));
            var counts = doc.RootElement.GetProperty("counts");
            Assert.True(counts.GetProperty("violations").GetInt32() == 0, stdout);
            Assert.Equal(cases, counts.GetProperty("refused").GetInt32() + counts.GetProperty("accepted").GetInt32());
            Assert.True(counts.GetProperty("refused_by_the_last_handler").GetInt32() == 0, stdout);
            Assert.True(counts.GetProperty("refused").GetInt32() >= cases / 2, stdout);
            if (family == "llava-1.5")
                Assert.True(counts.GetProperty("by_family").GetProperty("tokenizer_model").GetProperty("refused").GetInt32() >= 3, stdout);
        }
        finally
        {
            File.Delete(report);
        }
    }
}
