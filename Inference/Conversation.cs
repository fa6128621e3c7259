namespace Assistant.Inference;

/// <summary>
/// What <see cref="Conversation.Prepare"/> did on a frame: the states it prepared, which parts of the chain ran, the
/// ids of the part holding the question (when it was made), and the Stopwatch ticks of the vision encoder, the
/// prompt's text and the compressor.
/// </summary>
public readonly record struct TurnWork(DecoderState Decoder, CompressorState Compressor, bool VisionRan, bool PrefixPrefilled,
    bool QuestionPrepared, bool CompressorRan, int QuestionTokens, long VisionTicks, long TextTicks, long CompressTicks);

/// <summary>
/// One user's conversation with a set about a moving picture: its own <see cref="InferenceLease"/>, and what the next
/// answer needs as a chain of dependencies, each link made again only when what it depends on changed.
/// <list type="bullet">
/// <item>features: the picture (the caller writes new pixels into <see cref="Vision"/> and says so, <see cref="PictureChanged"/>);</item>
/// <item>the prefix, the text before the image prefilled into a KV cache: per decoder, and per question when the
/// layout puts the question there (a world set); a chat set's template prefix is made once per decoder;</item>
/// <item>the query embedding: per decoder and question (the decoder's last hidden state after the prefix, or the
/// mean of the question's token embeddings); and, for a compressor that asks for it
/// (<see cref="PromptSpec.QuestionHiddenState"/>), the decoder run on the question's own tokens alone, made when such
/// a compressor is first prepared for this decoder and question and reused across frames and compressors;</item>
/// <item>the head and the tail: the embeddings of the image's opening markers (per decoder), and of its closing
/// markers with the text after the image (per decoder, and per question when it is there);</item>
/// <item>the visual tokens: per features, query embedding and compressor.</item>
/// </list>
/// An answer prefills [head][V visual tokens][tail] on the prefix (<see cref="BeginAnswer"/>): the visual tokens are
/// copied once, from the compressor's output into the decoder's input, and nothing constant is embedded again. No
/// caller asks which layout a set has (<see cref="PromptLayout"/>). Owns its lease and the prefix cache, both freed
/// by Dispose; the set must outlive it. One thread at a time.
/// </summary>
public sealed class Conversation : IDisposable
{
    private readonly PromptLayout _layout;
    private readonly TextTokenizer _tokenizer;
    private readonly InferenceLease _lease;  // lifetime: this conversation's
    private readonly List<int> _ids = [];
    private string? _question;
    private bool _featuresValid, _tokensValid;
    private CompressorState? _compressedBy;
    private (DecoderState Decoder, CompressorState Compressor)? _prepared;
    private KvCache? _prefix;
    private DecoderState? _prefixFor, _headFor, _tailFor;
    private string? _prefixQuestion, _tailQuestion;
    private float[] _head = [], _tail = [], _scratch = [], _queryEmbedding = [], _questionHidden = [];
    private int[] _questionIds = [];  // the question's own ids, as the layout encodes them in its place
    private int _questionTokens;
    private DecoderState? _questionHiddenFor;
    private string? _questionHiddenQuestion;
    private readonly DomainSpec? _domain;
    private readonly float[] _pooled;

    /// <summary>A conversation on <paramref name="set"/>, with a lease of its own.</summary>
    public Conversation(ModelSet set)
    {
        _domain = set.Manifest.Domain;
        _pooled = new float[set.Manifest.Vision.Dim];
        _layout = set.Layout;
        _tokenizer = set.Tokenizer;
        _lease = set.Lease();
    }

    /// <summary>The vision state the caller writes a new picture's pixels into (then <see cref="PictureChanged"/>).</summary>
    public VisionState Vision => _lease.Vision;

    /// <summary>
    /// How familiar the current picture looks to the set's encoder (<see cref="Familiarity"/>), made when the features
    /// are; null for a set without a <see cref="DomainSpec"/> (imported sets) or before the first picture.
    /// </summary>
    public double? FamiliarityScore { get; private set; }

    /// <summary>Whether the features describe the last picture written (false after <see cref="PictureChanged"/> until the next encode succeeds).</summary>
    public bool HasFeatures => _featuresValid;

    /// <summary>Time inside ONNX Runtime's Run by this conversation's states.</summary>
    public TimeSpan RunTime => _lease.RunTime;

    /// <summary>This conversation's state of <paramref name="model"/> (tests read its logits and counters).</summary>
    public DecoderState Decoder(LanguageModel model) => _lease.Decoder(model);

    /// <summary>New pixels are in <see cref="Vision"/>: the features, and all that follows from them, are made again.</summary>
    public void PictureChanged()
    {
        _featuresValid = false;
        _tokensValid = false;
    }

    /// <summary>The layout this conversation follows.</summary>
    public PromptLayout Layout => _layout;

    /// <summary>The question; null until <see cref="SetQuestion"/>.</summary>
    public string? Question => _question;

    /// <summary>What the last prepared compressor was given as its query embedding (D values), valid after <see cref="Prepare"/>.</summary>
    public float[] QueryEmbedding { get; private set; } = [];

    /// <summary>Prefills of the text before the image over this conversation's life.</summary>
    public long PrefixPrefills { get; private set; }

    /// <summary>Vision encoder runs, question preparations and compressor runs over this conversation's life.</summary>
    public (long Vision, long Questions, long Compressor) Runs { get; private set; }

    /// <summary>Sets the question (already validated by the caller); what depends on it is made again by the next <see cref="Prepare"/>.</summary>
    public void SetQuestion(string question) => _question = question;

    /// <summary>
    /// Makes whatever link of the chain is stale for <paramref name="model"/> and <paramref name="compressor"/>: the
    /// features, the prompt's text, the visual tokens; says what ran. A failure leaves the failed link stale, so the
    /// next call makes it again rather than reuse what no longer describes the picture.
    /// </summary>
    public TurnWork Prepare(LanguageModel model, Compressor compressor)
    {
        var lm = _lease.Decoder(model);
        var comp = _lease.Compressor(compressor);
        var vision = _lease.Vision;
        long visionTicks = 0, textTicks = 0, compressTicks = 0;
        bool visionRan = false, compressorRan = false;
        if (!_featuresValid)
        {
            long t = System.Diagnostics.Stopwatch.GetTimestamp();
            _tokensValid = false;
            FamiliarityScore = null;
            vision.Encode();
            if (_domain is not null)
            {
                Familiarity.Pool(vision.Features, vision.Spec.Patches, vision.Spec.Dim, _pooled);
                FamiliarityScore = Familiarity.Score(_pooled, _domain);
            }
            visionTicks = System.Diagnostics.Stopwatch.GetTimestamp() - t;
            _featuresValid = visionRan = true;
        }
        long tt = System.Diagnostics.Stopwatch.GetTimestamp();
        var (prefixPrefilled, questionPrepared, questionTokens) = PrepareText(lm);
        var query = _queryEmbedding;
        if (_layout.TakesQuestionPass(compressor.Spec))
        {
            if (QuestionPass(lm))
            {
                questionPrepared = true;
                questionTokens = _questionTokens;
            }
            query = _questionHidden;
        }
        QueryEmbedding = query;
        if (prefixPrefilled || questionPrepared) textTicks = System.Diagnostics.Stopwatch.GetTimestamp() - tt;
        if (questionPrepared) _tokensValid = false;
        if (!_tokensValid || !ReferenceEquals(_compressedBy, comp))
        {
            long t = System.Diagnostics.Stopwatch.GetTimestamp();
            _tokensValid = false;
            comp.Compress(vision.Features, vision.FeaturesMulti, vision.Spec.Patches, query);
            compressTicks = System.Diagnostics.Stopwatch.GetTimestamp() - t;
            _compressedBy = comp;
            _tokensValid = compressorRan = true;
        }
        _prepared = (lm, comp);
        var runs = Runs;
        Runs = (runs.Vision + (visionRan ? 1 : 0), runs.Questions + (questionPrepared ? 1 : 0), runs.Compressor + (compressorRan ? 1 : 0));
        return new TurnWork(lm, comp, visionRan, prefixPrefilled, questionPrepared, compressorRan, questionTokens, visionTicks, textTicks, compressTicks);
    }

    /// <summary>The prompt's text on <paramref name="lm"/>: the prefix, the query embedding, the head and the tail, each when stale.</summary>
    private (bool PrefixPrefilled, bool QuestionPrepared, int QuestionTokens) PrepareText(DecoderState lm)
    {
        var question = _question ?? throw new InferenceException("no question: ask a question first");
        var layout = _layout;
        var tokenizer = _tokenizer;
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
                _questionIds = _ids.GetRange(start, length).ToArray();
                questionTokens = _questionTokens = _ids.Count;
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
                _questionIds = _ids.GetRange(start, length).ToArray();
                questionTokens = _questionTokens = _ids.Count - markers;
            }
        }
        return (prefixStale, before ? prefixStale : tailStale, questionTokens);
    }

    /// <summary>
    /// The question's own tokens alone through <paramref name="lm"/> (<see cref="DecoderState.HiddenAlone"/>), kept
    /// as the query embedding of <see cref="PromptSpec.QuestionHiddenState"/>; made again only for another decoder or
    /// question. Says whether it ran.
    /// </summary>
    private bool QuestionPass(DecoderState lm)
    {
        if (ReferenceEquals(_questionHiddenFor, lm) && string.Equals(_questionHiddenQuestion, _question, StringComparison.Ordinal))
            return false;
        _questionHiddenFor = null;
        _questionHidden = lm.HiddenAlone(_questionIds);
        _questionHiddenFor = lm;
        _questionHiddenQuestion = _question;
        return true;
    }

    /// <summary>
    /// Prefills [head][visual tokens][tail] on the prefix, for the states <see cref="Prepare"/> last prepared, and starts
    /// decoding up to <paramref name="maxNewTokens"/> after it; the caller owns the sequence.
    /// </summary>
    public DecodeSequence BeginAnswer(int maxNewTokens)
    {
        if (_prepared is not var (lm, comp) || _prefix is null || !_tokensValid)
            throw new InvalidOperationException("Prepare the conversation before an answer");
        int v = comp.Compressor.Tokens;
        return lm.BeginDecode(_prefix, _head, comp.VisualTokens.AsSpan(0, v * lm.Spec.Dim), _tail, maxNewTokens);
    }

    /// <summary>Every position an answer's first token attends to: the cached text before the picture and <see cref="AnswerPositions"/>.</summary>
    public int PromptPositions => (_prefix?.Length ?? 0) + AnswerPositions;

    /// <summary>Positions an answer prefills for the prepared states: markers, visual tokens, the text after them.</summary>
    public int AnswerPositions => _prepared is var (lm, comp) ? comp.Compressor.Tokens + (_head.Length + _tail.Length) / lm.Spec.Dim : 0;

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

    /// <summary>Frees the prefix cache and the lease.</summary>
    public void Dispose()
    {
        _prefix?.Dispose();
        _prefix = null;
        _prefixFor = _headFor = _tailFor = _questionHiddenFor = null;
        _prepared = null;
        _lease.Dispose();
    }
}
