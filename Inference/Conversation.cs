namespace Assistant.Inference;

/// <summary>
/// What <see cref="Conversation.Prepare"/> did: the text before the image was prefilled, the parts that depend on the
/// question were made again (then the query embedding changed), and the ids of the part holding the question.
/// </summary>
public readonly record struct TurnWork(bool PrefixPrefilled, bool QuestionPrepared, int QuestionTokens);

/// <summary>
/// One user's turn on a set's <see cref="PromptLayout"/>: the question, and what the next answer needs, each part made
/// again only when what it depends on changed.
/// <list type="bullet">
/// <item>the prefix, the text before the image prefilled into a KV cache: per decoder, and per question when the
/// layout puts the question there (a world set); a chat set's template prefix is made once per decoder;</item>
/// <item>the query embedding a query-aware compressor takes: per decoder and question (the decoder's last hidden
/// state after the prefix, or the mean of the question's token embeddings);</item>
/// <item>the head and the tail: the embeddings of the image's opening markers (per decoder), and of its closing markers
/// with the text after the image (per decoder, and per question when it is there).</item>
/// </list>
/// An answer prefills [head][V visual tokens][tail] on the prefix (<see cref="BeginAnswer"/>): the visual tokens are
/// copied once, from the compressor's output into the decoder's input, and nothing constant is embedded again. No
/// caller asks which layout a set has. Owns the prefix cache (freed by Dispose); the decoder states it is given must
/// come from one lease and outlive it. One thread at a time.
/// </summary>
public sealed class Conversation(PromptLayout layout, TextTokenizer tokenizer) : IDisposable
{
    private readonly List<int> _ids = [];
    private string? _question;
    private KvCache? _prefix;
    private DecoderState? _prefixFor, _headFor, _tailFor;
    private string? _prefixQuestion, _tailQuestion;
    private float[] _head = [], _tail = [], _scratch = [], _queryEmbedding = [];

    /// <summary>A conversation on <paramref name="set"/>'s layout and tokenizer.</summary>
    public Conversation(ModelSet set) : this(set.Layout, set.Tokenizer) { }

    /// <summary>The layout this conversation follows.</summary>
    public PromptLayout Layout => layout;

    /// <summary>The question; null until <see cref="SetQuestion"/>.</summary>
    public string? Question => _question;

    /// <summary>What the query-aware compressor takes (D values), valid after <see cref="Prepare"/>.</summary>
    public float[] QueryEmbedding => _queryEmbedding;

    /// <summary>Prefills of the text before the image over this conversation's life.</summary>
    public long PrefixPrefills { get; private set; }

    /// <summary>Sets the question (already validated by the caller); what depends on it is made again by the next <see cref="Prepare"/>.</summary>
    public void SetQuestion(string question) => _question = question;

    /// <summary>Makes, on <paramref name="lm"/>, whatever part of the turn is stale; says what ran.</summary>
    public TurnWork Prepare(DecoderState lm)
    {
        var question = _question ?? throw new InferenceException("no question: ask a question first");
        bool before = layout.QuestionBeforeImage;
        bool prefixStale = _prefix is null || !ReferenceEquals(_prefixFor, lm) || (before && !string.Equals(_prefixQuestion, question, StringComparison.Ordinal));
        bool tailStale = !ReferenceEquals(_tailFor, lm) || (!before && !string.Equals(_tailQuestion, question, StringComparison.Ordinal));
        int questionTokens = 0;
        int dim = lm.Spec.Dim;
        if (prefixStale)
        {
            _ids.Clear();
            PromptLayout.Encode(layout.BeforeImage, tokenizer, question, _ids, out int start, out int length);
            if (_ids.Count == 0) throw new InferenceException("the prompt layout has no text before the image to start from");
            Grow(ref _scratch, _ids.Count * dim);
            lm.Embed(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids), _scratch);
            _prefix?.Dispose();
            _prefix = null;
            using (var empty = lm.EmptyCache())
                _prefix = lm.Forward(empty, _scratch, _ids.Count);
            _prefixFor = lm;
            _prefixQuestion = question;
            PrefixPrefills++;
            if (before)
            {
                _queryEmbedding = layout.QueryEmbedding == PromptSpec.LastHiddenState ? lm.LastHidden.ToArray() : Mean(_scratch, start, length, dim);
                questionTokens = _ids.Count;
            }
        }
        if (!ReferenceEquals(_headFor, lm))
        {
            _head = EmbedAll(lm, [.. layout.Open.Select(tokenizer.SpecialId)]);
            _headFor = lm;
        }
        if (tailStale)
        {
            _ids.Clear();
            foreach (var s in layout.Close) _ids.Add(tokenizer.SpecialId(s));
            int markers = _ids.Count;
            PromptLayout.Encode(layout.AfterImage, tokenizer, question, _ids, out int start, out int length);
            _tail = EmbedAll(lm, [.. _ids]);
            _tailFor = lm;
            _tailQuestion = question;
            if (!before)
            {
                _queryEmbedding = Mean(_tail, start, length, dim);
                questionTokens = _ids.Count - markers;
            }
        }
        return new TurnWork(prefixStale, before ? prefixStale : tailStale, questionTokens);
    }

    /// <summary>
    /// Prefills [head][<paramref name="visualTokens"/>][tail] on the prefix made by <see cref="Prepare"/> for
    /// <paramref name="lm"/> and starts decoding up to <paramref name="maxNewTokens"/> after it; the caller owns the sequence.
    /// </summary>
    public DecodeSequence BeginAnswer(DecoderState lm, ReadOnlySpan<float> visualTokens, int maxNewTokens)
    {
        if (_prefix is null || !ReferenceEquals(_prefixFor, lm) || !ReferenceEquals(_tailFor, lm) || !ReferenceEquals(_headFor, lm))
            throw new InvalidOperationException("Prepare the conversation on this decoder state before an answer");
        return lm.BeginDecode(_prefix, _head, visualTokens, _tail, maxNewTokens);
    }

    /// <summary>Positions an answer prefills around <paramref name="visualTokens"/> visual tokens (after <see cref="Prepare"/>).</summary>
    public int AnswerPositions(int visualTokens, int dim) => visualTokens + (_head.Length + _tail.Length) / dim;

    private static float[] EmbedAll(DecoderState lm, int[] ids)
    {
        var values = new float[ids.Length * lm.Spec.Dim];
        if (ids.Length > 0) lm.Embed(ids, values);
        return values;
    }

    /// <summary>The mean of <paramref name="length"/> rows of <paramref name="rows"/> from <paramref name="start"/> (zeros for none).</summary>
    private static float[] Mean(float[] rows, int start, int length, int dim)
    {
        var mean = new float[dim];
        if (length <= 0) return mean;
        for (int i = 0; i < length; i++)
            for (int j = 0; j < dim; j++) mean[j] += rows[(start + i) * dim + j];
        for (int j = 0; j < dim; j++) mean[j] /= length;
        return mean;
    }

    private static void Grow(ref float[] buffer, int floats)
    {
        if (buffer.Length < floats) buffer = new float[Math.Max(floats, 2 * buffer.Length)];
    }

    /// <summary>Frees the prefix cache.</summary>
    public void Dispose()
    {
        _prefix?.Dispose();
        _prefix = null;
        _prefixFor = _headFor = _tailFor = null;
    }
}
