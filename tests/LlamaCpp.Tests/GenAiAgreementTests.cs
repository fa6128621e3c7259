using System.Text.Json;
using Assistant.Inference;
using Assistant.Tests;
using Microsoft.ML.OnnxRuntimeGenAI;

namespace Assistant.LlamaCpp.Tests;

/// <summary>
/// ONNX Runtime GenAI (0.18.0) on an imported set's text decoder, as bench/Peers runs it: tools/genai_model.py joins
/// the embed and decoder graphs and writes genai_config.json, and GenAI's own generation loop (its attention mask,
/// position ids and KV cache handling) must give the engine's first-step logits and greedy tokens on the set's
/// prompt ids (the template's text and the question; GenAI has no vision).
/// </summary>
public sealed class GenAiAgreementTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Steps = 8;

    /// <summary>Both run ONNX Runtime on the same weights, so only summation order differs.</summary>
    private const float LogitTolerance = 1e-4f;

    public static TheoryData<string> TextKinds => new(["clip-qwen2-bf16-shards", "llama"]);

    [Theory]
    [MemberData(nameof(TextKinds))]
    public void GenAiAnswersTheTextPromptAsTheEngineDoes(string variant)
    {
        var made = HfCheckpoints.Get(variant);
        var dir = Path.Combine(Path.GetTempPath(), $"genai-{variant}-{Guid.NewGuid():N}");
        try
        {
            HfCheckpoints.Python("genai_model.py", [made.Set, "--out", dir]);
            using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(made.Set, "golden", "golden.json")));
            int[] ids = [.. Golden.Ints(golden.RootElement.GetProperty("prefix_ids")), .. Golden.Ints(golden.RootElement.GetProperty("question_ids"))];
            var (oursLogits, oursTokens) = Ours(made.Set, ids);

            using var oga = new OgaHandle();
            using var model = new Model(dir);
            using var parameters = new GeneratorParams(model);
            parameters.SetSearchOption("max_length", ids.Length + Steps);
            using var generator = new Microsoft.ML.OnnxRuntimeGenAI.Generator(model, parameters);
            generator.AppendTokens(ids);
            float[] first;
            using (var logits = generator.GetOutput("logits"))
            {
                int vocab = (int)logits.Shape()[^1];
                first = logits.GetData<float>()[^vocab..].ToArray();
            }
            var tokens = new List<int>();
            // Until Steps tokens or a stop id (GenAI ends there; the engine's loop here does not).
            for (int i = 0; i < Steps && !generator.IsDone(); i++)
            {
                generator.GenerateNextToken();
                tokens.Add(generator.GetNextTokens()[0]);
            }

            Assert.Equal(oursLogits.Length, first.Length);
            float diff = Golden.MaxAbsDiff(oursLogits, first);
            output.WriteLine($"{variant}: {ids.Length} prompt ids, max |first logit difference| {diff:G3}; greedy {string.Join(' ', tokens)}");
            Assert.True(diff < LogitTolerance, $"{variant}: GenAI's first logits differ from the engine's by {diff}");
            Assert.NotEmpty(tokens);
            Assert.Equal(oursTokens.Take(tokens.Count), tokens);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void TheGenAiFolderIsRefusedOverAnExistingOne_InOneLine()
    {
        var made = HfCheckpoints.Get("clip-qwen2-bf16-shards");
        var dir = Directory.CreateTempSubdirectory("genai-exists-").FullName;
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { Path.Combine(Repo.Root, "tools", "genai_model.py"), made.Set, "--out", dir }) psi.ArgumentList.Add(a);
            using var p = System.Diagnostics.Process.Start(psi)!;
            var err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.Equal(2, p.ExitCode);
            Assert.Single(err.Trim().Split('\n'));
            Assert.StartsWith("error: ", err);
            Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The engine's decoder on <paramref name="ids"/>: the first step's logits, then <see cref="Steps"/> greedy tokens.</summary>
    private static (float[] Logits, List<int> Tokens) Ours(string set, int[] ids)
    {
        using var models = ModelSet.Load(set, new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)));
        using var lease = models.Lease();
        var lm = models.Decoder(models.Manifest.Default.Decoder);
        var state = lease.Decoder(lm);
        int dim = lm.Spec.Dim;
        var embeds = new float[ids.Length * dim];
        state.Embed(ids, embeds);
        using var empty = state.EmptyCache();
        var cache = state.Forward(empty, embeds, ids.Length);
        var first = (float[])state.LastLogits.Clone();
        var tokens = new List<int>();
        var one = new float[dim];
        for (int i = 0; i < Steps; i++)
        {
            int next = ArgMax(state.LastLogits);
            tokens.Add(next);
            if (i == Steps - 1) break;
            state.Embed([next], one);
            var grown = state.Forward(cache, one, 1);
            cache.Dispose();
            cache = grown;
        }
        cache.Dispose();
        return (first, tokens);
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }
}
