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

    [Theory]
    [InlineData(-1f, 1f)]
    [InlineData(float.NaN, 1f)]
    [InlineData(1f, 0f)]
    [InlineData(1f, 1.5f)]
    public void InvalidOptions_AreOneLineErrors(float temperature, float topP) =>
        Assert.Throws<InferenceException>(() => new Sampler(new SamplingOptions(temperature, topP)));
}
