using Assistant.Inference.Ocr;

namespace Assistant.Inference.Tests.Ocr;

public sealed class CtcDecoderTests
{
    // Classes: 0 blank, 1 'a', 2 'b', 3 '：' (full width), 4 space.
    private static readonly CtcDecoder Ctc = new(["a", "b", "："], spaceProbability: 0.05f);

    private static float[] Steps(params (int Best, float P, float Space)[] steps)
    {
        var probs = new float[steps.Length * 5];
        for (int t = 0; t < steps.Length; t++)
        {
            var (best, p, space) = steps[t];
            probs[t * 5 + 4] = space;
            probs[t * 5 + best] = Math.Max(p, probs[t * 5 + best]);
            float rest = (1 - probs.AsSpan(t * 5, 5).ToArray().Sum()) / 5;
            for (int c = 0; c < 5; c++) if (c != best) probs[t * 5 + c] += Math.Max(rest, 0);
        }
        return probs;
    }

    [Fact]
    public void Repeats_collapse_and_a_blank_separates_double_letters()
    {
        var r = Ctc.Decode(Steps((1, 0.9f, 0), (1, 0.9f, 0), (0, 0.9f, 0), (1, 0.8f, 0), (2, 0.7f, 0)), 5);
        Assert.Equal("aab", r.Text);
        Assert.Equal((0.9f + 0.8f + 0.7f) / 3, r.Confidence, 3);
    }

    [Fact]
    public void A_likely_space_lost_to_the_blank_is_restored_and_an_unlikely_one_is_not()
    {
        Assert.Equal("a b", Ctc.Decode(Steps((1, 0.9f, 0), (0, 0.8f, 0.12f), (2, 0.9f, 0)), 3).Text);
        Assert.Equal("ab", Ctc.Decode(Steps((1, 0.9f, 0), (0, 0.9f, 0.01f), (2, 0.9f, 0)), 3).Text);
        Assert.Equal("a b", Ctc.Decode(Steps((1, 0.9f, 0), (4, 0.9f, 0.9f), (2, 0.9f, 0)), 3).Text);  // an emitted space is kept once
    }

    [Fact]
    public void Full_width_punctuation_becomes_ascii_and_no_characters_is_empty()
    {
        Assert.Equal("a:", Ctc.Decode(Steps((1, 0.9f, 0), (3, 0.9f, 0)), 2).Text);
        var empty = Ctc.Decode(Steps((0, 0.9f, 0), (0, 0.9f, 0)), 2);
        Assert.Equal("", empty.Text);
        Assert.Throws<InferenceException>(() => Ctc.Decode(new float[7], 2));
    }
}
