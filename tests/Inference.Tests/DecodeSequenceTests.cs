using Assistant.Tests;

namespace Assistant.Inference.Tests;

/// <summary>Decoding into the model's fixed step buffers (LanguageModel.BeginDecode) against the allocate-per-step Forward.</summary>
public sealed class DecodeSequenceTests(DefaultSet set) : IClassFixture<DefaultSet>
{
    private KvCache Prefill(DecoderState lm, string text)
    {
        int[] ids = [set.Models.Tokenizer.SpecialId("<|im_start|>"), .. set.Models.Tokenizer.Encode(text)];
        var embeds = new float[ids.Length * lm.Spec.Dim];
        lm.Embed(ids, embeds);
        using var empty = lm.EmptyCache();
        return lm.Forward(empty, embeds, ids.Length);
    }

    [Fact]
    public void Steps_GiveTheSameLogitsAsForwardingACacheAStepAtATime()
    {
        using var lm = set.Decoder.Lease();
        int[] tokens = [.. set.Models.Tokenizer.Encode("red blue green circle square left right two three")];
        using var prefix = Prefill(lm, "How many red stars are there?");

        var expected = new List<float[]>();
        var one = new float[lm.Spec.Dim];
        KvCache? cache = null;
        foreach (int t in tokens)
        {
            lm.Embed([t], one);
            var next = lm.Forward(cache ?? prefix, one, 1);
            cache?.Dispose();
            cache = next;
            expected.Add(lm.LastLogits.ToArray());
        }
        cache?.Dispose();

        using var sequence = lm.BeginDecode(prefix, tokens.Length);
        for (int i = 0; i < tokens.Length; i++)
        {
            sequence.Append(tokens[i]);
            Assert.Equal(prefix.Length + i + 1, sequence.Length);
            for (int j = 0; j < expected[i].Length; j++) Assert.Equal(expected[i][j], lm.LastLogits[j], 5);
        }
    }

    [Fact]
    public void SteadyStateSteps_AllocateNoManagedMemory()
    {
        using var lm = set.Decoder.Lease();
        using var prefix = Prefill(lm, "Is there a blue circle?");
        const int steps = 40;
        // The first sequence makes the tensors and bindings for these lengths; the later ones reuse them.
        using (var warm = lm.BeginDecode(prefix, steps))
            for (int i = 0; i < steps; i++) warm.Append(7);
        // An allocation the steps make happens on every try; one the runtime makes once on this thread (a type
        // loaded, a method promoted to its next tier while the machine is loaded) does not. So the steps pass
        // when one of three tries allocates nothing, and every try's figure is in the message when none does.
        var allocated = new List<long>();
        for (int attempt = 0; attempt < 3 && (allocated.Count == 0 || allocated[^1] != 0); attempt++)
        {
            using var sequence = lm.BeginDecode(prefix, steps);
            sequence.Append(7);  // the first step binds the caller's prefix (once per sequence)
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 1; i < steps; i++) sequence.Append(7);
            allocated.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.True(allocated[^1] == 0, $"bytes allocated by {steps - 1} steps, per try: {string.Join(", ", allocated)}");
    }

    [Fact]
    public void BeginningAnotherSequence_EndsThePreviousOne()
    {
        using var lm = set.Decoder.Lease();
        using var prefix = Prefill(lm, "Is there a blue circle?");
        using var first = lm.BeginDecode(prefix, 4);
        first.Append(7);
        using var second = lm.BeginDecode(prefix, 4);
        second.Append(7);
        var e = Assert.Throws<InvalidOperationException>(() => first.Append(7));
        Assert.Contains("newer one", e.Message);
    }

    [Fact]
    public void ASequence_RefusesStepsPastItsLimit()
    {
        using var lm = set.Decoder.Lease();
        using var prefix = Prefill(lm, "Is there a blue circle?");
        using var sequence = lm.BeginDecode(prefix, 2);
        sequence.Append(7);
        sequence.Append(7);
        Assert.Throws<InvalidOperationException>(() => sequence.Append(7));
    }

    [Fact]
    public void ALongerSequence_GrowsTheBuffers_AndStillMatchesForward()
    {
        using var lm = set.Decoder.Lease();
        using var prefix = Prefill(lm, "Is there a blue circle?");
        using (var shortOne = lm.BeginDecode(prefix, 3)) shortOne.Append(7);
        const int n = 300;  // past the first capacity (128 positions)
        using var sequence = lm.BeginDecode(prefix, n);
        for (int i = 0; i < n; i++) sequence.Append(7 + i % 5);
        var fromSteps = lm.LastLogits.ToArray();

        var one = new float[lm.Spec.Dim];
        KvCache? cache = null;
        for (int i = 0; i < n; i++)
        {
            lm.Embed([7 + i % 5], one);
            var next = lm.Forward(cache ?? prefix, one, 1);
            cache?.Dispose();
            cache = next;
        }
        cache!.Dispose();
        for (int j = 0; j < fromSteps.Length; j++) Assert.Equal(lm.LastLogits[j], fromSteps[j], 4);
    }

    [Fact]
    public void NegativeLength_IsAClearError()
    {
        using var lm = set.Decoder.Lease();
        using var prefix = Prefill(lm, "Is there a blue circle?");
        var e = Assert.Throws<InferenceException>(() => lm.BeginDecode(prefix, -1));
        Assert.Contains(">= 0", e.Message);
    }

    [Fact]
    public void PrefillIntoTheStepBuffers_MatchesForward_AndIsReusedOnlyForTheSamePast()
    {
        using var lm = set.Decoder.Lease();
        int d = lm.Spec.Dim;
        using var queryA = Prefill(lm, "How many red stars are there?");
        using var queryB = Prefill(lm, "Is there a blue circle?");
        var rng = new Random(3);
        var visual = Enumerable.Range(0, 6 * d).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();

        float[] Expected(KvCache past, int steps)
        {
            var cache = lm.Forward(past, visual, 6);
            var one = new float[d];
            for (int i = 0; i < steps; i++)
            {
                lm.Embed([9 + i], one);
                var next = lm.Forward(cache, one, 1);
                cache.Dispose();
                cache = next;
            }
            cache.Dispose();
            return lm.LastLogits.ToArray();
        }
        float[] FromSteps(KvCache past, int steps)
        {
            using var sequence = lm.BeginDecode(past, visual, 6, steps);
            Assert.Equal(past.Length + 6, sequence.Length);
            for (int i = 0; i < steps; i++) sequence.Append(9 + i);
            return lm.LastLogits.ToArray();
        }
        // A then A again (the kept binding), then B (a new past of another length), then A (bound again).
        foreach (var (past, steps) in new[] { (queryA, 0), (queryA, 3), (queryB, 3), (queryA, 2) })
        {
            var expected = Expected(past, steps);
            var got = FromSteps(past, steps);
            for (int j = 0; j < expected.Length; j++) Assert.Equal(expected[j], got[j], 4);
        }
    }
}
