using Assistant.Inference;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Assistant.Bench.Peers;

/// <summary>How far quantized weights move one runtime's next-token logits from its own F32 on a fixed prompt set.</summary>
/// <param name="Prompts">Prompts compared.</param>
/// <param name="Top1">Share of prompts whose most likely next token is F32's.</param>
/// <param name="MaxAbs">Largest absolute logit difference over all prompts and ids.</param>
/// <param name="MeanMaxAbs">The per-prompt largest difference, averaged.</param>
/// <param name="Spread">The F32 logits' mean per-prompt range (max - min), for scale.</param>
internal sealed record LogitAgreement(int Prompts, double Top1, double MaxAbs, double MeanMaxAbs, double Spread)
{
    public static LogitAgreement Of(IReadOnlyList<float[]> reference, IReadOnlyList<float[]> other)
    {
        int agree = 0;
        double max = 0, meanMax = 0, spread = 0;
        for (int p = 0; p < reference.Count; p++)
        {
            var (r, o) = (reference[p], other[p]);
            int n = Math.Min(r.Length, o.Length);
            double m = 0;
            for (int i = 0; i < n; i++) m = Math.Max(m, Math.Abs(r[i] - o[i]));
            if (VocabMath.ArgMax(r.AsSpan(0, n)) == VocabMath.ArgMax(o.AsSpan(0, n))) agree++;
            max = Math.Max(max, m);
            meanMax += m / reference.Count;
            spread += (r.Max() - r.Min()) / reference.Count;
        }
        return new LogitAgreement(reference.Count, (double)agree / reference.Count, max, meanMax, spread);
    }
}

/// <summary>
/// The fixed prompt set: <see cref="Count"/> token sequences of 8 to 40 ids drawn with a fixed seed from the
/// tokenizer's first ids (random weights make their meaning irrelevant), fed as ids to every runtime so no
/// tokenizer is involved; each gives the next-token logits after its last id.
/// </summary>
internal static class PromptSet
{
    public const int Count = 48;

    public static IReadOnlyList<int[]> Make(string set)
    {
        int ids = Ids(set);
        var rng = new Random(18);
        return Enumerable.Range(0, Count).Select(_ => Enumerable.Range(0, rng.Next(8, 41)).Select(_ => rng.Next(ids)).ToArray()).ToList();
    }

    /// <summary>A fixed-seed prompt of <paramref name="positions"/> ids below <paramref name="ids"/>: the same prefill work as a frame's prompt of that length.</summary>
    public static int[] Positions(int positions, int ids)
    {
        var rng = new Random(18);
        return Enumerable.Range(0, positions).Select(_ => rng.Next(ids)).ToArray();
    }

    /// <summary>How many of the tokenizer's first ids prompts draw from: its vocabulary, at most 4,096.</summary>
    public static int Ids(string set)
    {
        var tokenizer = TextTokenizer.Load(set, Manifest.Read(set).Tokenizer);
        return Math.Min(tokenizer.Count - tokenizer.Special.Count, 4096);
    }

    /// <summary>The engine's decoder (embed graph, then one prefill from an empty cache per prompt).</summary>
    public static List<float[]> Ours(string set, IReadOnlyList<int[]> prompts)
    {
        using var models = ModelSet.Load(set, new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)));
        using var lease = models.Lease();
        var lm = models.Decoder(models.Manifest.Default.Decoder);
        var state = lease.Decoder(lm);
        var result = new List<float[]>();
        foreach (var ids in prompts)
        {
            var embeds = new float[ids.Length * lm.Spec.Dim];
            state.Embed(ids, embeds);
            using var empty = state.EmptyCache();
            using var cache = state.Forward(empty, embeds, ids.Length);
            result.Add((float[])state.LastLogits.Clone());
        }
        return result;
    }

    /// <summary>llama.cpp on the GGUF text model: the prompt's ids in one batch from a cleared cache.</summary>
    public static List<float[]> LlamaCpp(string textGguf, IReadOnlyList<int[]> prompts)
    {
        var parameters = new ModelParams(textGguf) { ContextSize = 512, GpuLayerCount = 0, BatchSize = 512, UBatchSize = 512, Threads = Environment.ProcessorCount };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var result = new List<float[]>();
        var batch = new LLamaBatch();
        foreach (var ids in prompts)
        {
            context.NativeHandle.MemoryClear(true);
            batch.Clear();
            for (int i = 0; i < ids.Length; i++) batch.Add((LLamaToken)ids[i], i, (LLamaSeqId)0, i == ids.Length - 1);
            if (context.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed");
            result.Add(context.NativeHandle.GetLogitsIth(batch.TokenCount - 1).ToArray());
        }
        return result;
    }
}
