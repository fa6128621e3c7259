using Assistant.Tests;

namespace Assistant.Inference.Tests;

/// <summary>The endings on the random-weight set.</summary>
public sealed class TinyAnswerDecoderTests(DefaultSet set) : AnswerDecoderTests(set), IClassFixture<DefaultSet>;

/// <summary>The endings on the trained set, whose answers past their stop token loop (the runaway the guard is for).</summary>
public sealed class TrainedAnswerDecoderTests(TrainedSet set) : AnswerDecoderTests(set), IClassFixture<TrainedSet>
{
    [Fact]
    public void TheGuard_FiresOnThisSet_SoTheTheoryIsNotVacuous()
    {
        using var lm = Set.Decoder.Lease();
        var (free, _) = Decode(lm, new GenerationOptions(48, StopTokens: [], RepeatLimit: 0));
        Assert.True(Cut(free, 4) > 0, $"48 greedy tokens past the stop token without a repeat: {string.Join(",", free)}");
    }
}

/// <summary>How an answer ends: the repetition guard and the word limit.</summary>
public abstract class AnswerDecoderTests(LoadedSet set)
{
    protected LoadedSet Set => set;

    protected (List<int> Ids, AnswerEnd Ending) Decode(DecoderState lm, GenerationOptions options)
    {
        int[] prompt = [set.Models.Tokenizer.SpecialId("<|im_start|>"), .. set.Models.Tokenizer.Encode("what color is the circle?")];
        var embeds = new float[prompt.Length * lm.Spec.Dim];
        lm.Embed(prompt, embeds);
        using var empty = lm.EmptyCache();
        using var prefix = lm.Forward(empty, embeds, prompt.Length);
        using var answer = new AnswerDecoder(lm, set.Models.Tokenizer, prefix, options);
        var ids = new List<int>();
        while (answer.TryNext(out var t)) ids.Add(t.Id);
        return (ids, answer.Ending);
    }

    /// <summary>Where a guard of <paramref name="repeats"/> cuts <paramref name="ids"/>: after the first token that ends an n-gram (n &lt;= 8) repeated that often; -1: nowhere.</summary>
    protected static int Cut(List<int> ids, int repeats)
    {
        for (int end = 1; end <= ids.Count; end++)
            for (int n = 1; n <= AnswerDecoder.LongestRepeat && n * repeats <= end; n++)
                if (Enumerable.Range(1, repeats - 1).All(r => ids.Skip(end - n).Take(n).SequenceEqual(ids.Skip(end - n - r * n).Take(n))))
                    return end;
        return -1;
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void TheRepetitionGuard_CutsTheAnswerAtTheFirstRepeatedNGram(int repeats)
    {
        using var lm = set.Decoder.Lease();
        var (free, freeEnd) = Decode(lm, new GenerationOptions(48, StopTokens: [], RepeatLimit: 0));
        Assert.Equal((48, AnswerEnd.TokenLimit), (free.Count, freeEnd));
        var (guarded, ending) = Decode(lm, new GenerationOptions(48, StopTokens: [], RepeatLimit: repeats));
        int cut = Cut(free, repeats);
        Assert.Equal(free.Take(cut < 0 ? 48 : cut), guarded);
        Assert.Equal(cut < 0 ? AnswerEnd.TokenLimit : AnswerEnd.Repetition, ending);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void AWordLimit_EndsTheAnswerAfterThatManyWholeWords(int words)
    {
        using var lm = set.Decoder.Lease();
        var every = Enumerable.Range(0, set.Decoder.Spec.VocabSize).ToHashSet();  // each token a word by itself
        var (ids, ending) = Decode(lm, new GenerationOptions(20, StopTokens: [], MaxWords: words, WholeWordTokens: every, RepeatLimit: 0));
        Assert.Equal(words, ids.Count);
        Assert.Equal(AnswerEnd.WordLimit, ending);
        var (free, _) = Decode(lm, new GenerationOptions(20, StopTokens: [], RepeatLimit: 0));
        Assert.Equal(free.Take(words), ids);
    }

    [Fact]
    public void NonFiniteLogits_AreAnError_NeverText()
    {
        using var lm = set.Decoder.Lease();
        var embeds = Enumerable.Repeat(float.NaN, 3 * lm.Spec.Dim).ToArray();  // what broken weights or normalisation give
        using var empty = lm.EmptyCache();
        using var prefix = lm.Forward(empty, embeds, 3);
        Assert.Contains(lm.LastLogits, float.IsNaN);
        using var answer = new AnswerDecoder(lm, set.Models.Tokenizer, prefix, new GenerationOptions(4, StopTokens: []));
        var e = Assert.Throws<InferenceException>(() => answer.TryNext(out _));
        Assert.Equal(1, e.ExitCode);
        Assert.Contains("non-finite logits", e.Message);
    }

    [Theory]
    [InlineData(0, 4)]
    [InlineData(-1, 4)]
    [InlineData(4, 1)]
    public void BadLimits_AreRefused(int maxWords, int repeatLimit)
    {
        using var lm = set.Decoder.Lease();
        Assert.Throws<InferenceException>(() => Decode(lm, new GenerationOptions(4, MaxWords: maxWords == 4 ? null : maxWords, RepeatLimit: repeatLimit)));
    }
}
