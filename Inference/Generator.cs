using System.Runtime.CompilerServices;

namespace Assistant.Inference;

/// <summary>Limits of one answer.</summary>
public sealed record GenerationOptions(int MaxNewTokens = 32, SamplingOptions? Sampling = null, IReadOnlyCollection<int>? StopTokens = null)
{
    public static GenerationOptions Default { get; } = new();
}

/// <summary>One generated token and the text it completes (may be empty mid-character, or for a special token).</summary>
public readonly record struct GeneratedToken(int Id, string Text);

/// <summary>
/// One answer being decoded, resumable a token at a time (the frame loop spreads it over frames; the
/// generator streams it): sampling, stop tokens, the length limit and the text, on a
/// <see cref="DecodeSequence"/>. A token's forward pass runs when the next token is asked for, so the
/// last token of an answer, and a token after which the caller stops, cost none. Owns its sequence.
/// Made from a caller's cache, that cache stays the caller's and must outlive the second
/// <see cref="TryNext"/> (the first step reads it); made from a prefill into the step buffers, nothing
/// outside is read again.
/// </summary>
public sealed class AnswerDecoder : IDisposable
{
    private readonly LanguageModel _model;
    private readonly DecodeSequence _sequence;
    private readonly Sampler _sampler;
    private readonly StreamingDetokenizer _text;
    private readonly int[] _stop;
    private readonly int _maxNewTokens;
    private readonly float[] _logits;
    private int _pending = -1;

    /// <param name="prefix">The cache to continue; its run must be the model's most recent (its logits are read now).</param>
    public AnswerDecoder(LanguageModel model, TextTokenizer tokenizer, KvCache prefix, GenerationOptions options)
        : this(model, tokenizer, model.BeginDecode(prefix, Validated(options).MaxNewTokens), options)
    {
    }

    /// <param name="sequence">A sequence just begun on <paramref name="model"/> (its prefill's logits are read now); owned from here.</param>
    public AnswerDecoder(LanguageModel model, TextTokenizer tokenizer, DecodeSequence sequence, GenerationOptions options)
    {
        _model = model;
        _sequence = sequence;
        _sampler = new Sampler(Validated(options).Sampling ?? SamplingOptions.Greedy);
        _text = tokenizer.CreateStream();
        _stop = [.. options.StopTokens ?? []];
        _maxNewTokens = options.MaxNewTokens;
        _logits = model.LastLogits.ToArray();
        Done = options.MaxNewTokens == 0;
    }

    private static GenerationOptions Validated(GenerationOptions options) =>
        options.MaxNewTokens >= 0 ? options : throw new InferenceException($"max tokens must be >= 0, got {options.MaxNewTokens}");

    /// <summary>Tokens produced so far (stop tokens are not counted).</summary>
    public int Generated { get; private set; }

    /// <summary>A stop token came, or the length limit was reached.</summary>
    public bool Done { get; private set; }

    /// <summary>The next token, or false when the answer is done.</summary>
    public bool TryNext(out GeneratedToken token)
    {
        token = default;
        if (Done) return false;
        if (_pending >= 0)
        {
            _sequence.Append(_pending);
            _pending = -1;
            _model.LastLogits.CopyTo(_logits, 0);
        }
        int id = _sampler.Next(_logits);
        if (Array.IndexOf(_stop, id) >= 0)
        {
            Done = true;
            return false;
        }
        token = new GeneratedToken(id, _text.Push(id));
        if (++Generated >= _maxNewTokens) Done = true;
        else _pending = id;
        return true;
    }

    public void Dispose() => _sequence.Dispose();
}

/// <summary>
/// Autoregressive decoding on a KV cache: each step feeds only the newest token, never the whole
/// sequence again. The cache passed in is not consumed: the caller still owns it (so a query prefix
/// can be reused).
/// </summary>
public static class Generator
{
    /// <summary>
    /// Streams tokens that follow <paramref name="prefix"/>, whose last run left its logits in
    /// <see cref="LanguageModel.LastLogits"/>. Stops at a stop token (not yielded), at the length limit,
    /// or on cancellation (between steps).
    /// </summary>
    public static IAsyncEnumerable<GeneratedToken> GenerateAsync(LanguageModel model, TextTokenizer tokenizer, KvCache prefix,
        GenerationOptions options, CancellationToken cancellation = default) =>
        StreamAsync(() => new AnswerDecoder(model, tokenizer, prefix, options), cancellation);

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
