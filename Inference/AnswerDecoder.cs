namespace Assistant.Inference;

/// <summary>Why an answer ended.</summary>
public enum AnswerEnd
{
    /// <summary>Still being decoded.</summary>
    None,

    /// <summary>A stop token came.</summary>
    StopToken,

    /// <summary>The token limit was reached.</summary>
    TokenLimit,

    /// <summary>The answer holds the words the set's answers have.</summary>
    WordLimit,

    /// <summary>The answer repeated itself (a degenerate loop) and was cut.</summary>
    Repetition,
}

/// <summary>
/// One answer being decoded, resumable a token at a time (the frame pipeline spreads it over frames; the
/// generator streams it): sampling, stop tokens, the length and word limits, the repetition guard and the
/// text, on a <see cref="DecodeSequence"/>. A token's forward pass runs when the next token is asked for, so
/// the last token of an answer, and a token after which the caller stops, cost none. Owns its sequence.
/// Made from a caller's cache, that cache stays the caller's and must outlive the second
/// <see cref="TryNext"/> (the first step reads it); made from a prefill into the step buffers, nothing
/// outside is read again.
/// </summary>
public sealed class AnswerDecoder : IDisposable
{
    /// <summary>The longest n-gram the repetition guard looks for.</summary>
    public const int LongestRepeat = 8;

    private readonly DecoderState _state;
    private readonly DecodeSequence _sequence;
    private readonly Sampler _sampler;
    private readonly StreamingDetokenizer _text;
    private readonly int[] _stop;
    private readonly GenerationOptions _options;
    private readonly float[] _logits;
    private readonly List<int> _ids;  // sized once: a step appends without allocating
    private int _pending = -1;
    private int _words;          // words complete so far
    private bool _inWord;        // a word has begun and not yet ended

    /// <param name="state">The state whose most recent run made <paramref name="prefix"/> (its logits are read now).</param>
    /// <param name="tokenizer">Turns the ids into text.</param>
    /// <param name="prefix">The cache to continue; it stays the caller's.</param>
    /// <param name="options">Limits and sampling.</param>
    public AnswerDecoder(DecoderState state, TextTokenizer tokenizer, KvCache prefix, GenerationOptions options)
        : this(state, tokenizer, state.BeginDecode(prefix, Validated(options).MaxNewTokens), options)
    {
    }

    /// <param name="state">The state the sequence runs on.</param>
    /// <param name="tokenizer">Turns the ids into text.</param>
    /// <param name="sequence">A sequence just begun on <paramref name="state"/> (its prefill's logits are read now); owned from here.</param>
    /// <param name="options">Limits and sampling.</param>
    public AnswerDecoder(DecoderState state, TextTokenizer tokenizer, DecodeSequence sequence, GenerationOptions options)
    {
        _state = state;
        _sequence = sequence;
        _options = Validated(options);
        _sampler = new Sampler(options.Sampling ?? SamplingOptions.Greedy);
        _text = tokenizer.CreateStream();
        _stop = [.. options.StopTokens ?? []];
        _logits = state.LastLogits.ToArray();
        _ids = new List<int>(Math.Min(options.MaxNewTokens, 4096));
        if (options.MaxNewTokens == 0) End(AnswerEnd.TokenLimit);
    }

    private static GenerationOptions Validated(GenerationOptions options)
    {
        if (options.MaxNewTokens < 0) throw new InferenceException($"max tokens must be >= 0, got {options.MaxNewTokens}");
        if (options.MaxWords is < 1) throw new InferenceException($"an answer's word limit must be at least 1, got {options.MaxWords}");
        if (options.RepeatLimit is < 0 or 1) throw new InferenceException($"the repetition limit must be 0 (off) or at least 2, got {options.RepeatLimit}");
        return options;
    }

    /// <summary>Tokens produced so far (stop tokens are not counted).</summary>
    public int Generated { get; private set; }

    /// <summary>The answer has ended (see <see cref="Ending"/>).</summary>
    public bool Done => Ending != AnswerEnd.None;

    /// <summary>
    /// The model's probability of the answer so far: the product over its tokens of each token's softmax probability
    /// (temperature 1, the model's own distribution) given the tokens before it. 1 before the first token.
    /// </summary>
    public double Confidence { get; private set; } = 1;

    /// <summary>Why the answer ended; <see cref="AnswerEnd.None"/> while it goes on.</summary>
    public AnswerEnd Ending { get; private set; }

    private void End(AnswerEnd why) => Ending = why;

    /// <summary>The next token, or false when the answer is done.</summary>
    public bool TryNext(out GeneratedToken token)
    {
        token = default;
        if (Done) return false;
        if (_pending >= 0)
        {
            _sequence.Append(_pending);
            _pending = -1;
            _state.LastLogits.CopyTo(_logits, 0);
        }
        int id = _sampler.Next(_logits);
        // NaN logits (broken weights or normalisation) make every comparison false and the sampler pick id 0:
        // an error, never text.
        if (!float.IsFinite(_logits[id]))
            throw Sampler.NonFiniteLogits();
        if (Array.IndexOf(_stop, id) >= 0)
        {
            End(AnswerEnd.StopToken);
            return false;
        }
        var text = _text.Push(id);
        if (!CountWords(id, text))
        {
            End(AnswerEnd.WordLimit);  // this token would begin a word past the limit: not part of the answer
            return false;
        }
        token = new GeneratedToken(id, text);
        Confidence *= VocabMath.Probability(_logits, id);
        _ids.Add(id);
        Generated++;
        if (_options.MaxWords is { } max && _words >= max) End(AnswerEnd.WordLimit);
        else if (Repeating()) End(AnswerEnd.Repetition);
        else if (Generated >= _options.MaxNewTokens) End(AnswerEnd.TokenLimit);
        else _pending = id;
        return true;
    }

    /// <summary>Counts the words <paramref name="text"/> ends or begins; false when it would begin one past the limit.</summary>
    private bool CountWords(int id, string text)
    {
        if (_options.MaxWords is not { } max) return true;
        bool wholeWord = _options.WholeWordTokens?.Contains(id) == true;
        bool hasLetters = text.Any(c => !char.IsWhiteSpace(c));
        // A leading space, or a token that is a word by itself, ends the word in progress.
        if (_inWord && (wholeWord || (text.Length > 0 && char.IsWhiteSpace(text[0]))))
        {
            _words++;
            _inWord = false;
        }
        if ((wholeWord || hasLetters) && _words >= max) return false;
        if (wholeWord) _words++;
        else if (hasLetters)
        {
            _inWord = !char.IsWhiteSpace(text[^1]);
            if (!_inWord) _words++;  // the token ends with a space: its word is complete
        }
        return true;
    }

    /// <summary>The last tokens are one n-gram repeated <see cref="GenerationOptions.RepeatLimit"/> times in a row.</summary>
    private bool Repeating()
    {
        int repeats = _options.RepeatLimit;
        if (repeats == 0) return false;
        for (int n = 1; n <= LongestRepeat && n * repeats <= _ids.Count; n++)
        {
            int end = _ids.Count;
            bool same = true;
            for (int r = 1; r < repeats && same; r++)
                for (int i = 0; i < n && same; i++)
                    same = _ids[end - 1 - i] == _ids[end - 1 - i - r * n];
            if (same) return true;
        }
        return false;
    }

    /// <summary>Frees the sequence's first-step binding.</summary>
    public void Dispose() => _sequence.Dispose();
}
