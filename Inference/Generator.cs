using System.Runtime.CompilerServices;

namespace Assistant.Inference;

/// <summary>
/// Limits of one answer. <paramref name="MaxWords"/>: the answer ends once it holds that many words (a set
/// whose answers are single words declares 1 in its manifest, <c>prompt.answer_words</c>); a word ends at
/// whitespace, and a token in <paramref name="WholeWordTokens"/> is a word by itself (the world's tokenizer
/// writes each answer word as one token with no space before it). <paramref name="RepeatLimit"/>: an n-gram
/// (n up to <see cref="AnswerDecoder.LongestRepeat"/>) repeated this many times in a row ends the answer as
/// degenerate; 0 turns the guard off.
/// </summary>
public sealed record GenerationOptions(int MaxNewTokens = 32, SamplingOptions? Sampling = null, IReadOnlyCollection<int>? StopTokens = null,
    int? MaxWords = null, IReadOnlySet<int>? WholeWordTokens = null, int RepeatLimit = 4)
{
    /// <summary>32 tokens, greedy, the set's stop tokens, no word limit, the repetition guard on.</summary>
    public static GenerationOptions Default { get; } = new();
}

/// <summary>One generated token and the text it completes (may be empty mid-character, or for a special token).</summary>
public readonly record struct GeneratedToken(int Id, string Text);

/// <summary>
/// Autoregressive decoding on a KV cache: each step feeds only the newest token, never the whole
/// sequence again. The cache passed in is not consumed: the caller still owns it (so a query prefix
/// can be reused).
/// </summary>
public static class Generator
{
    /// <summary>
    /// Streams tokens that follow <paramref name="prefix"/>, whose last run on <paramref name="state"/> left its
    /// logits in <see cref="DecoderState.LastLogits"/>. Stops at a stop token (not yielded), at the length or
    /// word limit, at a degenerate repetition, or on cancellation (between steps).
    /// </summary>
    public static IAsyncEnumerable<GeneratedToken> GenerateAsync(DecoderState state, TextTokenizer tokenizer, KvCache prefix,
        GenerationOptions options, CancellationToken cancellation = default) =>
        StreamAsync(() => new AnswerDecoder(state, tokenizer, prefix, options), cancellation);

    /// <summary>Streams the answer <paramref name="start"/> makes (when enumeration begins), disposing it at the end.</summary>
    public static async IAsyncEnumerable<GeneratedToken> StreamAsync(Func<AnswerDecoder> start,
        [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        using var answer = start();
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            if (!answer.TryNext(out var token)) yield break;
            yield return token;
            if (answer.Done) yield break;
            await Task.Yield();  // let a consumer print or cancel between steps
        }
    }
}
