using Assistant.Tests;

namespace Assistant.Inference.Tests;

public sealed class KvCacheTests(DefaultSet set) : IClassFixture<DefaultSet>
{
    private int[] Prompt() => [set.Models.Tokenizer.SpecialId("<|im_start|>"), .. set.Models.Tokenizer.Encode("How many red stars are there?")];

    /// <summary>The prompt prefilled from an empty cache; its logits are left in <see cref="DecoderState.LastLogits"/>.</summary>
    private KvCache PrefillPrompt(DecoderState lm)
    {
        var prompt = Prompt();
        var embeds = new float[prompt.Length * lm.Spec.Dim];
        lm.Embed(prompt, embeds);
        using var empty = lm.EmptyCache();
        return lm.Forward(empty, embeds, prompt.Length);
    }

    [Fact]
    public async Task Decoding_FeedsOneNewTokenPerStep_AndMatchesRecomputingFromScratch()
    {
        using var lm = set.Decoder.Lease();
        int d = lm.Spec.Dim;
        var prompt = Prompt();
        using var prefix = PrefillPrompt(lm);

        const int n = 12;
        int runsBefore = lm.Runs;
        long positionsBefore = lm.PositionsProcessed;
        var lengths = new List<int>();
        var cached = new List<int>();
        await foreach (var t in Generator.GenerateAsync(lm, set.Models.Tokenizer, prefix, new GenerationOptions(n, StopTokens: [])))
        {
            cached.Add(t.Id);
            if (cached.Count > 1) lengths.Add(lm.LastRunLength);
        }
        Assert.Equal(n, cached.Count);
        // One prefill (above), then one run per generated token after the first, each on exactly one new position.
        Assert.Equal(n - 1, lm.Runs - runsBefore);
        Assert.Equal(n - 1, lm.PositionsProcessed - positionsBefore);
        Assert.All(lengths, l => Assert.Equal(1, l));

        // Reference: rerun the whole sequence from an empty cache for every token.
        var sequence = prompt.ToList();
        var recomputed = new List<int>();
        for (int i = 0; i < n; i++)
        {
            var all = new float[sequence.Count * d];
            lm.Embed(sequence.ToArray(), all);
            using var e = lm.EmptyCache();
            using var full = lm.Forward(e, all, sequence.Count);
            int next = Sampler.ArgMax(lm.LastLogits);
            recomputed.Add(next);
            sequence.Add(next);
        }
        Assert.Equal(recomputed, cached);
    }

    [Fact]
    public void Forward_LeavesThePastCacheUsable_SoAPrefixCanBeExtendedTwice()
    {
        using var lm = set.Decoder.Lease();
        int d = lm.Spec.Dim;
        var prompt = Prompt();
        using var prefix = PrefillPrompt(lm);
        var one = new float[d];
        lm.Embed([prompt[1]], one);
        using var a = lm.Forward(prefix, one, 1);
        var first = lm.LastLogits.ToArray();
        using var b = lm.Forward(prefix, one, 1);
        Assert.Equal(prompt.Length + 1, a.Length);
        Assert.Equal(first, lm.LastLogits);
    }

    [Fact]
    public async Task Generation_StopsAtAStopToken_AndAtTheLengthLimit()
    {
        using var lm = set.Decoder.Lease();
        using var prefix = PrefillPrompt(lm);
        var logits = lm.LastLogits.ToArray();
        int first = Sampler.ArgMax(logits);

        var none = new List<GeneratedToken>();
        await foreach (var t in Generator.GenerateAsync(lm, set.Models.Tokenizer, prefix, new GenerationOptions(10, StopTokens: [first])))
            none.Add(t);
        Assert.Empty(none);

        logits.CopyTo(lm.LastLogits, 0);
        var three = new List<GeneratedToken>();
        await foreach (var t in Generator.GenerateAsync(lm, set.Models.Tokenizer, prefix, new GenerationOptions(3, StopTokens: [])))
            three.Add(t);
        Assert.Equal(3, three.Count);
        Assert.Equal(first, three[0].Id);
    }

    [Fact]
    public async Task Generation_CancelledMidStream_StopsWithoutFurtherDecoderRuns()
    {
        using var lm = set.Decoder.Lease();
        using var prefix = PrefillPrompt(lm);
        using var cts = new CancellationTokenSource();
        int seen = 0, runsAtCancel = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in Generator.GenerateAsync(lm, set.Models.Tokenizer, prefix, new GenerationOptions(50, StopTokens: []), cts.Token))
            {
                if (++seen == 2)
                {
                    cts.Cancel();
                    runsAtCancel = lm.Runs;
                }
            }
        });
        Assert.Equal(2, seen);
        Assert.Equal(runsAtCancel, lm.Runs);
    }
}
