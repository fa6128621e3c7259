using System.Numerics;

namespace Assistant.Inference.Tests;

public sealed class VocabMathTests
{
    private const int Qwen2Vocab = 151936;

    private static int ScalarArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }

    private static float[] Logits(int n, int seed, float spread = 20f)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * spread - spread / 2))];
    }

    public static TheoryData<int> Lengths => [1, 2, 7, 8, 15, 16, 17, 31, 33, 64, 65, 1000, Qwen2Vocab];

    [Theory]
    [MemberData(nameof(Lengths))]
    public void ArgMax_IsTheScalarLoopsFirstLargest(int n)
    {
        var random = new Random(n);
        for (int trial = 0; trial < 40; trial++)
        {
            // Few distinct values, so the largest is often tied; infinities, signed zeros and NaNs mixed in.
            var values = new float[n];
            for (int i = 0; i < n; i++)
                values[i] = (random.Next(12)) switch
                {
                    0 => float.NegativeInfinity,
                    1 => -0f,
                    2 => 0f,
                    3 when trial % 4 == 0 => float.NaN,
                    4 when trial % 8 == 1 => float.PositiveInfinity,
                    var k => k - 6,
                };
            Assert.Equal(ScalarArgMax(values), VocabMath.ArgMax(values));
            Assert.Equal(ScalarArgMax(values), Sampler.ArgMax(values));
        }
        var logits = Logits(n, n);
        Assert.Equal(ScalarArgMax(logits), VocabMath.ArgMax(logits));
    }

    [Fact]
    public void ArgMax_OfNothing_IsRefused() => Assert.Throws<ArgumentException>(() => VocabMath.ArgMax([]));

    [Fact]
    public void Exp_IsWithinTwoUlpsOfTheDoubleExponential()
    {
        int lanes = Vector<float>.Count;
        var x = new float[lanes];
        double worst = 0;
        for (int k = 0; k <= 870_000; k += lanes)
        {
            for (int i = 0; i < lanes; i++) x[i] = -(k + i) / 10_000f;  // 0 down to -87
            var e = VocabMath.Exp(new Vector<float>(x));
            for (int i = 0; i < lanes; i++)
            {
                double exact = Math.Exp(x[i]);
                if (x[i] < -87f) { Assert.Equal(0f, e[i]); continue; }
                worst = Math.Max(worst, Math.Abs(e[i] - exact) / exact);
            }
        }
        Assert.True(worst < 2.4e-7, $"relative error up to {worst:G3}");  // two units in the last place of a float
        Assert.Equal(1f, VocabMath.Exp(Vector<float>.Zero)[0]);
        Assert.Equal(0f, VocabMath.Exp(new Vector<float>(-200f))[0]);
        Assert.Equal(0f, VocabMath.Exp(new Vector<float>(float.NegativeInfinity))[0]);
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void SumExp_And_Probability_AgreeWithDoubleLoops(int n)
    {
        var logits = Logits(n, 7 * n, spread: 40f);
        float max = logits.Max();
        var exps = new float[n];
        double sum = VocabMath.SumExp(logits, max, 0.5f, exps);
        double exact = logits.Sum(l => Math.Exp((l - max) * 0.5));
        Assert.InRange(sum / exact, 1 - 1e-6, 1 + 1e-6);
        for (int i = 0; i < n; i++)
            Assert.InRange(exps[i], Math.Exp((logits[i] - max) * 0.5) * (1 - 3e-7) - 1e-37, Math.Exp((logits[i] - max) * 0.5) * (1 + 3e-7));
        Assert.Equal(sum, VocabMath.SumExp(logits, max, 0.5f, []));
        int id = n / 2;
        double p = VocabMath.Probability(logits, id);
        double pExact = Math.Exp(logits[id] - max) / logits.Sum(l => Math.Exp(l - max));
        Assert.InRange(p / pExact, 1 - 1e-6, 1 + 1e-6);
    }

    [Fact]
    public void Probability_WithANaN_IsNaN_AsTheScalarLoopGives()
    {
        var logits = Logits(100, 3);
        logits[40] = float.NaN;
        Assert.True(double.IsNaN(VocabMath.Probability(logits, 2)));
        Assert.False(VocabMath.TryMax(logits, out _));
    }
}
