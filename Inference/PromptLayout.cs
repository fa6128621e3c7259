namespace Assistant.Inference;

/// <summary>
/// One piece of a prompt's text around the image: template text (its special tokens recognised: it comes from the
/// set, not from the user), one special token by name, or the user's question (plain BPE, specials never recognised).
/// Exactly one of the three is given. The manifest's <c>prompt.layout</c> holds these as data (models/README.md).
/// </summary>
public sealed record PromptPieceSpec(string? Text = null, string? Special = null, bool Question = false);

/// <summary>The special tokens around an image's V visual positions (a world set's vision_start / vision_end).</summary>
public sealed record ImageMarkersSpec(IReadOnlyList<string>? Open = null, IReadOnlyList<string>? Close = null);

/// <summary>
/// A prompt layout written out in the manifest: the pieces before the image, the image's markers, the pieces after it.
/// Sets that give none get theirs from the older keys (<see cref="PromptLayout.Of"/>).
/// </summary>
public sealed record PromptLayoutSpec(IReadOnlyList<PromptPieceSpec> BeforeImage, IReadOnlyList<PromptPieceSpec> AfterImage, ImageMarkersSpec? Image = null);

/// <summary>
/// One user turn of a set's prompt as data, in the spirit of llama.cpp's mtmd chunks: the text before the image
/// (whose keys and values are cached between frames), the image as V visual positions between its marker tokens, the
/// text after it, and where the question goes. Every model kind is a layout plus its components; the engine that
/// runs a frame holds no branch on which layout it is. A world set is <c>[query_start question][vision_start V
/// vision_end]</c>; a chat set (imported, its template rendered once) is <c>[before_image][V][before_question
/// question after_question]</c>; a manifest may write any other as <c>prompt.layout</c>.
/// </summary>
public sealed class PromptLayout
{
    private PromptLayout(IReadOnlyList<PromptPieceSpec> before, IReadOnlyList<string> open, IReadOnlyList<string> close,
        IReadOnlyList<PromptPieceSpec> after, string queryEmbedding)
    {
        BeforeImage = before;
        Open = open;
        Close = close;
        AfterImage = after;
        QueryEmbedding = queryEmbedding;
        QuestionBeforeImage = before.Any(p => p.Question);
    }

    /// <summary>Pieces before the image: prefilled once and cached (per decoder, and per question when it is among them).</summary>
    public IReadOnlyList<PromptPieceSpec> BeforeImage { get; }

    /// <summary>Special tokens right before the visual positions.</summary>
    public IReadOnlyList<string> Open { get; }

    /// <summary>Special tokens right after the visual positions.</summary>
    public IReadOnlyList<string> Close { get; }

    /// <summary>Pieces after the image, prefilled with the visual positions on every new answer.</summary>
    public IReadOnlyList<PromptPieceSpec> AfterImage { get; }

    /// <summary>Whether the question is in the cached text before the image (then a new question prefills it again).</summary>
    public bool QuestionBeforeImage { get; }

    /// <summary>
    /// What a query-aware compressor is given unless its own entry says otherwise (<see cref="QueryEmbeddingOf"/>):
    /// <see cref="PromptSpec.LastHiddenState"/>, <see cref="PromptSpec.QuestionEmbeddingMean"/> or <see cref="PromptSpec.QuestionHiddenState"/>.
    /// </summary>
    public string QueryEmbedding { get; }

    /// <summary>The layout a prompt describes: its <c>layout</c>, else its chat text, else the world layout's special tokens.</summary>
    public static PromptLayout Of(PromptSpec prompt)
    {
        var embedding = prompt.QueryEmbedding ?? PromptSpec.LastHiddenState;
        if (prompt.Layout is { } l)
            return new(l.BeforeImage ?? [], l.Image?.Open ?? [], l.Image?.Close ?? [], l.AfterImage ?? [], embedding);
        if (prompt.Chat is { } chat)
            return new([new(Text: chat.BeforeImage)], [], [], [new(Text: chat.BeforeQuestion), new(Question: true), new(Text: chat.AfterQuestion)], embedding);
        return new([new(Special: prompt.QueryStart), new(Question: true)], [prompt.VisionStart!], [prompt.VisionEnd!], [], embedding);
    }

    /// <summary>
    /// The layout is whole: one question, each piece one kind, its special tokens in the tokenizer, its text within
    /// <see cref="ManifestRanges.MaxChatChars"/>, and a query embedding this build computes from where the question is
    /// (the last hidden state needs the question at the end of the cached text).
    /// </summary>
    internal void Check(TextTokenizer tokenizer)
    {
        var pieces = BeforeImage.Concat(AfterImage).ToList();
        foreach (var p in pieces)
        {
            if (p is null || (p.Text is not null ? 1 : 0) + (p.Special is not null ? 1 : 0) + (p.Question ? 1 : 0) != 1)
                throw new InferenceException("manifest.json prompt layout: each piece is one of text, special or question");
            if (p.Special is { } s) tokenizer.SpecialId(s);
        }
        foreach (var s in Open.Concat(Close)) tokenizer.SpecialId(s ?? throw new InferenceException("manifest.json prompt layout: an image marker is null"));
        int questions = pieces.Count(p => p.Question);
        if (questions != 1)
            throw new InferenceException($"manifest.json prompt layout has {questions} question pieces; it must have exactly one");
        long chars = pieces.Sum(p => (long)(p.Text?.Length ?? 0));
        if (chars > ManifestRanges.MaxChatChars)
            throw new InferenceException($"manifest.json prompt text is {chars:N0} characters for one turn; at most {ManifestRanges.MaxChatChars:N0} (the engine prefills it for every question)");
        CheckQueryEmbedding(QueryEmbedding, "manifest.json prompt");
    }

    /// <summary>What <paramref name="compressor"/> is given: its own query_embedding, else the prompt's.</summary>
    public string QueryEmbeddingOf(CompressorSpec compressor) => compressor.QueryEmbedding ?? QueryEmbedding;

    /// <summary>Whether <paramref name="compressor"/> takes the question's own pass (<see cref="PromptSpec.QuestionHiddenState"/>).</summary>
    public bool TakesQuestionPass(CompressorSpec compressor) =>
        compressor.QueryAware && QueryEmbeddingOf(compressor) == PromptSpec.QuestionHiddenState;

    /// <summary>
    /// <paramref name="kind"/> is a query embedding this build computes for this layout (the last hidden state after
    /// the cached text needs the question at its end); <paramref name="where"/> starts the error.
    /// </summary>
    internal void CheckQueryEmbedding(string kind, string where)
    {
        if (kind is not (PromptSpec.LastHiddenState or PromptSpec.QuestionEmbeddingMean or PromptSpec.QuestionHiddenState))
            throw new InferenceException($"{where} query_embedding '{kind}' is not one this build computes ({PromptSpec.LastHiddenState}, {PromptSpec.QuestionEmbeddingMean}, {PromptSpec.QuestionHiddenState})");
        if (kind == PromptSpec.LastHiddenState && !(BeforeImage.Count > 0 && BeforeImage[^1].Question))
            throw new InferenceException($"{where}: the question is not the last piece before the image, so its query_embedding cannot be {PromptSpec.LastHiddenState} ({PromptSpec.QuestionEmbeddingMean} or {PromptSpec.QuestionHiddenState})");
    }

    /// <summary>
    /// The ids of <paramref name="pieces"/> with <paramref name="question"/> in its place, appended to <paramref name="ids"/>;
    /// <paramref name="questionStart"/> and <paramref name="questionLength"/> say where the question's own ids are (-1, 0: absent).
    /// </summary>
    public static void Encode(IReadOnlyList<PromptPieceSpec> pieces, TextTokenizer tokenizer, string question, List<int> ids,
        out int questionStart, out int questionLength)
    {
        questionStart = -1;
        questionLength = 0;
        // Each run of pieces starts a fragment (the prompt's start, or the image before it), and so does text right
        // after a special token: where SentencePiece adds its dummy prefix, as llama.cpp does per text chunk.
        int from = ids.Count;
        foreach (var p in pieces)
        {
            bool fresh = ids.Count == from || tokenizer.IsSpecial(ids[^1]);
            if (p.Text is { } text) ids.AddRange(tokenizer.EncodeTemplate(text, fresh));
            else if (p.Special is { } special) ids.Add(tokenizer.SpecialId(special));
            else
            {
                questionStart = ids.Count;
                ids.AddRange(tokenizer.Encode(question, fresh));
                questionLength = ids.Count - questionStart;
            }
        }
    }

    /// <summary>
    /// The question's own ids as this layout encodes them in its place (after the image's closing markers when it
    /// follows the image), what <see cref="PromptSpec.QuestionHiddenState"/> runs through the decoder alone.
    /// </summary>
    public int[] QuestionIds(TextTokenizer tokenizer, string question)
    {
        var ids = new List<int>();
        if (!QuestionBeforeImage)
            foreach (var s in Close) ids.Add(tokenizer.SpecialId(s));
        Encode(QuestionBeforeImage ? BeforeImage : AfterImage, tokenizer, question, ids, out int start, out int length);
        return ids.GetRange(start, length).ToArray();
    }

    /// <summary>
    /// Positions cached before the visual tokens, for the FLOPs model: the question part counts
    /// <paramref name="questionTokens"/> (its template text and specials included), other text 3 characters a token.
    /// </summary>
    public int PrefixPositions(int questionTokens) => QuestionBeforeImage ? questionTokens : Estimate(BeforeImage);

    /// <summary>Positions each new answer prefills: the markers, the V visual tokens and the text after the image.</summary>
    public int AnswerPositions(int tokens, int questionTokens) =>
        tokens + Open.Count + Close.Count + (QuestionBeforeImage ? Estimate(AfterImage) : questionTokens);

    private static int Estimate(IReadOnlyList<PromptPieceSpec> pieces) =>
        pieces.Count == 0 ? 0 : Math.Max(1, pieces.Sum(p => p.Special is not null ? 1 : p.Question ? 0 : (p.Text?.Length ?? 0) / 3));
}
