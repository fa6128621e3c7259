using System.Text.Json;

namespace Assistant.Inference;

/// <summary>
/// An imported set's golden picture run through its own graphs and compared with what the importer's PyTorch computed
/// (golden/golden.json, <c>layout: "chat"</c>): the tower's features, one compressor's visual tokens and the first
/// answer step's logits, every value finite. <c>assistant models import</c> runs it on the finished set before moving
/// it into place, so an import that succeeds is a set the engine answers with (issue 31, finding 6: all-NaN weights,
/// a graph the exporter got wrong); <c>models check --golden</c> runs it on any imported set.
/// </summary>
public static class GoldenCheck
{
    /// <summary>Largest difference accepted for float32 and float16 storage (the parity tests hold 1e-4).</summary>
    public const float Tolerance = 1e-3f;

    /// <summary>Largest golden read (a 7B import's, with 576 visual tokens of 4,096, is about 100 MB).</summary>
    public const long MaxGoldenBytes = 1L << 30;

    /// <summary>Largest difference accepted for a distilled compressor's visual tokens (tools/distill.py's PyTorch module).</summary>
    public const float DistilledTolerance = 1e-4f;

    /// <summary>
    /// What was compared, for the one line a check prints: the features, one compressor's visual tokens and the first
    /// logits, and the visual tokens of every distilled compressor graph the golden lists (<paramref name="Distilled"/>
    /// graphs, within <paramref name="DistilledDiff"/>, the engine's question pass among them where one is given it:
    /// <paramref name="QuestionPass"/>).
    /// </summary>
    public sealed record Result(string Compressor, int Tokens, float FeaturesDiff, float TokensDiff, float LogitsDiff, bool Compared,
        int Distilled = 0, float DistilledDiff = 0, bool QuestionPass = false);

    /// <summary>
    /// Runs the check; a failure is an <see cref="InferenceException"/> whose message names the stage and the difference.
    /// Sets with block-quantized weights are checked for finite values only: their golden holds PyTorch with the
    /// quantized weights in float32, which ONNX Runtime's int8 activations approach but do not match to 1e-3.
    /// </summary>
    public static Result Run(ModelSet set)
    {
        if (set.Manifest.Golden is not { } relative)
            throw new InferenceException($"{set.Directory} has no golden outputs to check against (an imported set has golden/golden.json)");
        var file = SetFile.Resolve(set.Directory, relative, "golden");
        if (SetFile.Target(new FileInfo(file)).Length > MaxGoldenBytes)
            throw new InferenceException($"golden {file} is larger than the {MaxGoldenBytes >> 20} MB limit");
        JsonElement golden;
        try
        {
            using var stream = File.OpenRead(file);
            using var doc = JsonDocument.Parse(stream);
            golden = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InferenceException($"{file} is not valid JSON: {e.Message}");
        }
        if (!golden.TryGetProperty("layout", out var layout) || layout.GetString() != "chat")
            throw new InferenceException($"{file} is not a chat golden (the golden check is for imported sets)");
        bool compare = !Quantized(set.Manifest);
        try
        {
            return Compare(set, golden, compare);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InferenceException($"{file} is not a golden this engine reads ({e.Message})");
        }
    }

    private static Result Compare(ModelSet set, JsonElement g, bool compare)
    {
        using var lease = set.Lease();
        var vision = lease.Vision;
        Floats(g, "pixel_values", vision.PixelBuffer.Length).CopyTo(vision.PixelBuffer);
        vision.Encode();
        float featuresDiff = Check("the vision tower's features", Floats(g, "features", vision.Features.Length), vision.Features, compare);

        var lm = set.Decoder(g.GetProperty("decoder").GetString()!);
        var answers = g.GetProperty("answers");
        var kind = answers.TryGetProperty("query", out _) ? "query" : answers.EnumerateObject().First().Name;
        var answer = answers.GetProperty(kind);
        int v = answer.GetProperty("tokens").GetInt32();
        var compressor = lease.Compressor(lm.Compressor(kind, v));
        int dim = lm.Spec.Dim;
        var query = Floats(g, "query_embedding", dim);
        compressor.Compress(vision.Features, vision.FeaturesMulti, set.Vision.Spec.Patches, query);
        float tokensDiff = Check($"the {kind} compressor's visual tokens (V={v})", Floats(answer, "visual_tokens", v * dim),
            compressor.VisualTokens.AsSpan(0, v * dim), compare);

        var state = lease.Decoder(lm);
        var prefix = Ints(g, "prefix_ids");
        var question = Ints(g, "question_ids");
        var embeds = new float[Math.Max(prefix.Length, v + question.Length) * dim];
        state.Embed(prefix, embeds);
        using var empty = state.EmptyCache();
        using var cache = state.Forward(empty, embeds, prefix.Length);
        compressor.VisualTokens.AsSpan(0, v * dim).CopyTo(embeds);
        state.Embed(question, embeds.AsSpan(v * dim, question.Length * dim));
        using var sequence = state.BeginDecode(cache, embeds, v + question.Length, 1);
        float logitsDiff = Check("the first answer step's logits", Floats(answer, "prefill_logits", lm.Spec.VocabSize), state.LastLogits, compare);

        // tools/distill.py's compressors: each graph's visual tokens on the golden features and question, against the
        // PyTorch module it was exported from. One given the question's own pass (question_hidden_state) gets the
        // engine's pass of the golden question, itself held to the one PyTorch recorded.
        int distilled = 0;
        float distilledDiff = 0;
        float[]? questionHidden = null;
        if (g.TryGetProperty("distilled", out var list))
            foreach (var entry in list.EnumerateArray())
            {
                var dkind = entry.GetProperty("kind").GetString()!;
                int dv = entry.GetProperty("tokens").GetInt32();
                var distilledCompressor = lease.Compressor(lm.Compressor(dkind, dv));
                var given = query;
                if (set.Layout.TakesQuestionPass(distilledCompressor.Compressor.Spec))
                {
                    if (questionHidden is null)
                    {
                        questionHidden = state.HiddenAlone(set.Layout.QuestionIds(set.Tokenizer, g.GetProperty("query").GetString()!));
                        distilledDiff = Math.Max(distilledDiff, Check("the question's own pass (its last hidden state)", Floats(entry, "query_embedding", dim),
                            questionHidden, compare, DistilledTolerance, "tools/distill.py's PyTorch"));
                    }
                    given = questionHidden;
                }
                distilledCompressor.Compress(vision.Features, vision.FeaturesMulti, set.Vision.Spec.Patches, given);
                float diff = Check($"the distilled {dkind} compressor's visual tokens (V={dv})", Floats(entry, "visual_tokens", dv * dim),
                    distilledCompressor.VisualTokens.AsSpan(0, dv * dim), compare, DistilledTolerance, "tools/distill.py's PyTorch");
                distilledDiff = Math.Max(distilledDiff, diff);
                distilled++;
            }
        return new Result(kind, v, featuresDiff, tokensDiff, logitsDiff, compare, distilled, distilledDiff, questionHidden is not null);
    }

    /// <summary>
    /// The largest difference; a non-finite value, or (when comparing) a difference over <paramref name="tolerance"/>
    /// (relative to the golden's largest magnitude, at least 1), is refused, naming where the golden came from.
    /// </summary>
    private static float Check(string what, float[] expected, ReadOnlySpan<float> actual, bool compare, float tolerance = Tolerance,
        string source = "the importer's PyTorch")
    {
        if (expected.Length != actual.Length)
            throw new InferenceException($"golden check: {what} has {actual.Length} values, the golden {expected.Length}");
        float worst = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!float.IsFinite(actual[i]))
                throw new InferenceException($"golden check: {what} hold a non-finite value ({actual[i]} at {i}): the weights or graphs are damaged");
            worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]));
        }
        if (compare && !(worst <= tolerance * Math.Max(1f, MaxAbs(expected))))
            throw new InferenceException($"golden check: {what} differ from {source} by {worst:G3} (tolerance {tolerance:G1})");
        return worst;
    }

    private static float MaxAbs(float[] values)
    {
        float m = 0;
        foreach (var x in values) m = Math.Max(m, Math.Abs(x));
        return float.IsFinite(m) ? m : 0;
    }

    private static bool Quantized(Manifest m) =>
        m.Source is { ValueKind: JsonValueKind.Object } s && s.TryGetProperty("weights", out var w)
        && w.ValueKind == JsonValueKind.String && w.GetString() is "q8" or "q4";

    private static float[] Floats(JsonElement parent, string name, int length)
    {
        var array = parent.GetProperty(name);
        if (array.GetArrayLength() != length)
            throw new InferenceException($"golden check: the golden's {name} has {array.GetArrayLength()} values, the set's graphs {length}");
        var values = new float[length];
        int i = 0;
        foreach (var x in array.EnumerateArray()) values[i++] = x.ValueKind == JsonValueKind.Number ? x.GetSingle() : float.NaN;
        return values;
    }

    private static int[] Ints(JsonElement g, string name) => [.. g.GetProperty(name).EnumerateArray().Select(x => x.GetInt32())];
}
