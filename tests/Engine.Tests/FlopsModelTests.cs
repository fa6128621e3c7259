using System.Text.Json;
using Assistant.Inference;
using Assistant.Tests;
using Microsoft.ML.OnnxRuntime;

namespace Assistant.Engine.Tests;

/// <summary>
/// The analytic FLOPs model against the work ONNX Runtime actually does: each graph runs once, unoptimised,
/// with profiling on, and every MatMul, Gemm and Conv in the profile is counted from its real shapes.
/// </summary>
public sealed class FlopsModelTests
{
    public static IEnumerable<object[]> Sets() =>
        [[Repo.TinyModels], [Repo.TrainedModels], [HfCheckpoints.Get("clip-qwen2-bf16-shards").Set], [HfCheckpoints.Get("siglip").Set], [Repo.WorldLlava]];

    private static double ProfiledFlops(string path, IReadOnlyList<(string Name, long[] Shape, bool Int64)> inputs, string output)
    {
        var prefix = Path.Combine(Path.GetTempPath(), $"assistant-profile-{Guid.NewGuid():N}");
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL,  // count the graph's own nodes, unfused
            EnableProfiling = true,
            ProfileOutputPathPrefix = prefix,
        };
        using var session = new InferenceSession(path, options);
        var values = inputs.Select(i =>
        {
            long n = i.Shape.Aggregate(1L, (a, b) => a * b);
            return i.Int64
                ? OrtValue.CreateTensorValueFromMemory(Enumerable.Range(0, (int)n).Select(x => i.Name == "attention_mask" ? 1L : x).ToArray(), i.Shape)
                : OrtValue.CreateTensorValueFromMemory(Enumerable.Range(0, (int)n).Select(x => MathF.Sin(x)).ToArray(), i.Shape);
        }).ToArray();
        using (var run = new RunOptions())
        using (session.Run(run, inputs.Select(i => i.Name).ToArray(), values, [output])) { }
        foreach (var v in values) v.Dispose();
        var file = session.EndProfiling();
        double total = 0;
        using var doc = JsonDocument.Parse(File.ReadAllText(file));
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            if (e.GetProperty("cat").GetString() != "Node" || !e.GetProperty("name").GetString()!.EndsWith("_kernel_time")) continue;
            var args = e.GetProperty("args");
            var op = args.GetProperty("op_name").GetString();
            if (op is not ("MatMul" or "Gemm" or "Conv" or "GroupQueryAttention")) continue;
            long[] Shape(JsonElement s) => s.EnumerateObject().First().Value.EnumerateArray().Select(x => x.GetInt64()).ToArray();
            var ins = args.GetProperty("input_type_shape").EnumerateArray().Select(Shape).ToArray();
            var outShape = Shape(args.GetProperty("output_type_shape")[0]);
            if (op == "GroupQueryAttention")
            {
                // A fused decoder's attention: scores and weighted values, query (1, t, Hq*Dh) against the context its
                // present key holds (1, KVH, ctx, Dh); the test's past buffers are exactly the past, so ctx = past + t.
                var presentKey = Shape(args.GetProperty("output_type_shape")[1]);
                total += 2 * 2 * (double)ins[0][1] * presentKey[2] * ins[0][2];
                continue;
            }
            double outputs = outShape.Aggregate(1.0, (a, b) => a * b);
            total += op == "Conv" ? 2 * outputs * ins[1].Skip(1).Aggregate(1.0, (a, b) => a * b) : 2 * outputs * ins[0][^1];
        }
        File.Delete(file);
        return total;
    }

    private static Manifest Read(string dir) => Manifest.Read(dir);

    [Theory]
    [MemberData(nameof(Sets))]
    public void Vision_MatchesTheGraph(string dir)
    {
        var v = Read(dir).Vision;
        double graph = ProfiledFlops(Path.Combine(dir, v.File), [("pixel_values", [1, 3, v.ImageSize, v.ImageSize], false)], "features");
        Assert.Equal(graph, FlopsModel.Vision(v), 6);
    }

    [Theory]
    [MemberData(nameof(Sets))]
    public void EveryCompressor_MatchesItsGraph(string dir)
    {
        var m = Read(dir);
        var v = m.Vision;
        int checkedGraphs = 0;
        foreach (var d in m.Decoders)
            foreach (var c in d.Compressors)
                foreach (var (tokens, g) in c.Graphs)
                {
                    var inputs = new List<(string, long[], bool)> { ("features", [1, v.Patches, v.Dim], false) };
                    if (v.MultiDim > 0) inputs.Add(("features_multi", [1, v.Patches, v.MultiDim], false));
                    if (c.QueryAware) inputs.Add(("query_embedding", [1, d.Dim], false));
                    double graph = ProfiledFlops(Path.Combine(dir, g.File), inputs, "visual_tokens");
                    Assert.Equal(graph, FlopsModel.Compressor(v, c.Kind, c.QueryAware, int.Parse(tokens), d.Dim), 6);
                    checkedGraphs++;
                }
        Assert.True(checkedGraphs >= 4);
    }

    [Theory]
    [MemberData(nameof(Sets))]
    public void DecoderRuns_MatchTheGraph_IncludingTheContextTerm(string dir)
    {
        foreach (var d in Read(dir).Decoders)
            foreach (var (t, past) in new[] { (12, 0), (6, 12), (1, 30) })
            {
                var inputs = new List<(string, long[], bool)>
                {
                    ("inputs_embeds", [1, t, d.Dim], false), ("attention_mask", [1, past + t], true), ("position_ids", [1, t], true),
                };
                for (int i = 0; i < d.Layers; i++)
                {
                    inputs.Add(($"past_key_values.{i}.key", [1, d.KvHeads, past, d.HeadDim], false));
                    inputs.Add(($"past_key_values.{i}.value", [1, d.KvHeads, past, d.HeadDim], false));
                }
                double graph = ProfiledFlops(Path.Combine(dir, d.Decoder.File), inputs, "logits");
                Assert.Equal(graph, FlopsModel.DecoderRun(d, t, past), 6);
            }
    }

    [Fact]
    public void AttentionContextTerm_GrowsDecodeCostWithContext()
    {
        var d = Read(Repo.TrainedModels).Decoders[^1];
        Assert.True(FlopsModel.DecoderRun(d, 1, 1000) > FlopsModel.DecoderRun(d, 1, 10));
        var ask = FlopsModel.Ask(Read(Repo.TrainedModels).Vision, d, true, 4, 12, 2);
        Assert.Equal(ask.Total - ask.QueryPrefill, ask.PerFrameCachedQuery, 6);
        Assert.True(ask.VisualPrefill < FlopsModel.Ask(Read(Repo.TrainedModels).Vision, d, true, 64, 12, 2).VisualPrefill);
    }

    [Fact]
    public void AChatSet_PrefillsTheVisualTokensAndTheQuestion_OnTopOfTheTemplatePrefix()
    {
        var m = Read(HfCheckpoints.Get("siglip").Set);
        var d = m.Decoders[0];
        var full = d.Compressors.Single(c => c.Kind == "full");
        var query = d.Compressors.Single(c => c.Kind == "query");
        int patches = m.Vision.Patches;
        var all = FlopsModel.Ask(m, d, full, patches, 18, 2);
        var four = FlopsModel.Ask(m, d, query, 4, 18, 2);
        int prefix = FlopsModel.PrefixPositions(m.Prompt, 18);
        Assert.Equal(FlopsModel.DecoderRun(d, patches + 18, prefix), all.VisualPrefill, 6);  // V + the question after the image
        Assert.Equal(FlopsModel.DecoderRun(d, 4 + 18, prefix), four.VisualPrefill, 6);
        Assert.Equal(all.QueryPrefill, four.QueryPrefill, 6);  // the template prefix does not depend on V
        Assert.Equal(all.Vision, four.Vision, 6);
    }
}
