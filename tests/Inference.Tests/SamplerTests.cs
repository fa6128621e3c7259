namespace Assistant.Inference.Tests;

public sealed class SamplerTests
{
    private static readonly float[] Logits = [0.1f, 2.0f, 1.5f, -1f, 1.9f];

    [Fact]
    public void Greedy_PicksTheArgMax() => Assert.Equal(1, new Sampler(SamplingOptions.Greedy).Next(Logits));

    [Fact]
    public void Sampling_SameSeedSameSequence_OtherSeedDiffers()
    {
        int[] Draw(int seed)
        {
            var s = new Sampler(new SamplingOptions(1.0f, 1.0f, seed));
            return Enumerable.Range(0, 64).Select(_ => s.Next(Logits)).ToArray();
        }
        Assert.Equal(Draw(7), Draw(7));
        Assert.NotEqual(Draw(7), Draw(8));
    }

    [Fact]
    public void TopP_Small_KeepsOnlyTheMostLikelyToken()
    {
        var s = new Sampler(new SamplingOptions(1.0f, 0.05f, 3));
        Assert.All(Enumerable.Range(0, 100), _ => Assert.Equal(1, s.Next(Logits)));
    }

    [Fact]
    public void TopP_ExcludesTheTail()
    {
        // Probabilities at T=1: token 1 and 4 hold ~0.71 of the mass together with 2; token 3 (~0.02) is outside p=0.9.
        var s = new Sampler(new SamplingOptions(1.0f, 0.9f, 11));
        var seen = Enumerable.Range(0, 2000).Select(_ => s.Next(Logits)).ToHashSet();
        Assert.DoesNotContain(3, seen);
        Assert.Contains(2, seen);
    }

    [Fact]
    public void Sampling_FrequenciesFollowTheSoftmax()
    {
        var s = new Sampler(new SamplingOptions(1.0f, 1.0f, 5));
        var counts = new int[Logits.Length];
        const int n = 20000;
        for (int i = 0; i < n; i++) counts[s.Next(Logits)]++;
        var exp = Logits.Select(MathF.Exp).ToArray();
        float sum = exp.Sum();
        for (int i = 0; i < Logits.Length; i++)
            Assert.InRange(counts[i] / (double)n, exp[i] / sum - 0.02, exp[i] / sum + 0.02);
    }

    /// <summary>The nucleus by definition: every token sorted by probability (ties by id), the prefix that reaches the cut.</summary>
    private static (int[] Members, double Kept) FullSortNucleus(float[] probs, double cut)
    {
        var order = Enumerable.Range(0, probs.Length).Where(i => probs[i] > 0).ToArray();
        Array.Sort(order, (a, b) => probs[b] != probs[a] ? probs[b].CompareTo(probs[a]) : a.CompareTo(b));
        double kept = 0;
        int keep = 0;
        while (keep < order.Length && (keep == 0 || kept < cut)) kept += probs[order[keep++]];
        return (order[..keep], kept);
    }

    /// <summary>A Qwen2-sized vocabulary: a peaked head and a long tail, with runs of equal logits so that ties are ordered by id.</summary>
    private static float[] Qwen2SizedLogits()
    {
        var random = new Random(42);
        var logits = new float[151936];
        for (int i = 0; i < logits.Length; i++) logits[i] = MathF.Round((float)(random.NextDouble() * 12 - 6), 1);
        for (int i = 0; i < 40; i++) logits[random.Next(logits.Length)] = 9f + i % 5;
        return logits;
    }

    [Theory]
    [InlineData(0.9f, 0.7f)]   // the usual: a few hundred tokens at the top
    [InlineData(0.999f, 1.0f)] // far into the tail
    [InlineData(0.5f, 3.0f)]   // a flat distribution: half the vocabulary
    [InlineData(0.05f, 1.0f)]  // the top token alone
    public void Nucleus_IsTheFullSortsPrefix_AndEveryDrawIsInIt(float topP, float temperature)
    {
        var logits = Qwen2SizedLogits();
        var probs = new float[logits.Length];
        double sum = VocabMath.SumExp(logits, logits.Max(), 1f / temperature, probs);
        var (expected, expectedKept) = FullSortNucleus(probs, topP * sum);
        var sampler = new Sampler(new SamplingOptions(temperature, topP, 9));
        var members = new int[logits.Length];
        int count = sampler.Nucleus(probs, topP * sum, members, out double kept);
        Assert.Equal(expected.Order(), members[..count].Order());
        Assert.Equal(expectedKept, kept, 1e-9 * sum);
        var inside = expected.ToHashSet();
        Assert.All(Enumerable.Range(0, 200).Select(_ => sampler.Next(logits)), id => Assert.Contains(id, inside));
    }

    [Fact]
    public void TopP_FrequenciesFollowTheSoftmaxInsideTheNucleus()
    {
        // 2,000 tokens whose nucleus ends inside a bucket of near-equal probabilities, so the ranked part is drawn from too.
        var logits = Enumerable.Range(0, 2000).Select(i => i < 20 ? 3f + i * 0.01f : -2f + (i % 7) * 0.001f).ToArray();
        var probs = new float[logits.Length];
        double sum = VocabMath.SumExp(logits, logits.Max(), 1f, probs);
        var (nucleus, kept) = FullSortNucleus(probs, 0.8 * sum);
        Assert.InRange(nucleus.Length, 21, 1999);  // the head and part of the tail
        var sampler = new Sampler(new SamplingOptions(1f, 0.8f, 5));
        var inside = nucleus.ToHashSet();
        const int n = 40000;
        int head = 0;
        for (int i = 0; i < n; i++)
        {
            int id = sampler.Next(logits);
            Assert.Contains(id, inside);
            if (id < 20) head++;
        }
        double headMass = probs[..20].Sum(p => (double)p) / kept;
        Assert.InRange(head / (double)n, headMass - 0.01, headMass + 0.01);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void Sampling_ANonFiniteLogit_IsAnErrorNotAToken(float bad)
    {
        float[] logits = [0.1f, bad, 1.5f];
        var e = Assert.Throws<InferenceException>(() => new Sampler(new SamplingOptions(1.0f, 0.9f, 1)).Next(logits));
        Assert.Contains("non-finite logits", e.Message);
    }

    [Theory]
    [InlineData(-1f, 1f)]
    [InlineData(float.NaN, 1f)]
    [InlineData(1f, 0f)]
    [InlineData(1f, 1.5f)]
    public void InvalidOptions_AreOneLineErrors(float temperature, float topP) =>
        Assert.Throws<InferenceException>(() => new Sampler(new SamplingOptions(temperature, topP)));
}
