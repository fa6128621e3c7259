using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>
/// Matrix work per component, from the manifest's dimensions: 2 FLOPs per multiply-accumulate of every
/// matrix product and convolution the graphs run (norms, softmax and elementwise work are left out; they
/// are a few percent at these sizes). Checked against ONNX Runtime's own per-node shapes in the tests.
/// Unlike the paper's 2 N (Q + V), it counts the vision encoder and the compressor too, and attention's
/// context term, because a real-time budget pays for all of it.
/// </summary>
public static class FlopsModel
{
    /// <summary>One image through the vision encoder (its class token too, when it has one, as CLIP does).</summary>
    public static double Vision(VisionSpec v)
    {
        // An imported tower's features may concatenate several layers (dim = width x layers); its width is the MLP's input.
        double t = v.Patches + (v.ClassToken ? 1 : 0), c = v.MultiDim == 0 ? v.Dim / Math.Max(1, v.MultiLayers.Count) : v.Dim, m = v.MlpDim;
        double patchEmbed = 2.0 * v.Patches * c * 3 * v.PatchSize * v.PatchSize;
        double perLayer = 2 * t * c * 3 * c + 2 * 2 * t * t * c + 2 * t * c * c + 2 * 2 * t * c * m;
        return patchEmbed + v.Layers * perLayer;
    }

    /// <summary>One compressor run producing <paramref name="tokens"/> visual tokens for a decoder of width <paramref name="llmDim"/>.</summary>
    public static double Compressor(VisionSpec v, bool queryAware, int tokens, int llmDim)
    {
        double p = v.Patches, c = v.Dim, dm = v.MultiDim, d = llmDim, n = tokens;
        double inject = queryAware ? 2 * d * c : 0;
        double queryMlp = 2 * 2 * p * c * c;
        double downsample = 2 * p * c;  // depthwise: V outputs x k^2 taps x C channels = P x C
        double kvMlp = 2 * p * dm * c + 2 * p * c * c;
        double attention = 2 * n * c * c + 2 * 2 * p * c * c + 2 * 2 * p * c + 2 * n * c * c;  // q, k+v, scores+AV over k^2 keys each, o
        double projector = 2 * n * c * d + 2 * n * d * d;
        return inject + queryMlp + downsample + kvMlp + attention + projector;
    }

    /// <summary>
    /// One run of a compressor tools/distill.py trained for an imported set (no <c>features_multi</c>): QueCC's shape, with
    /// keys and values from the feature layer, each of the V regions gathered into a window of k_max^2 patches (the
    /// adaptive bins where V does not divide the grid, so V k_max^2 may exceed P), and its depthwise filter applied
    /// elementwise (not a matrix product: left out, as norms are).
    /// </summary>
    public static double DistilledCompressor(VisionSpec v, bool queryAware, int tokens, int llmDim)
    {
        double p = v.Patches, c = v.Dim, d = llmDim, n = tokens;
        int side = (int)Math.Round(Math.Sqrt(tokens)), kmax = 0;
        for (int i = 0; i < side; i++) kmax = Math.Max(kmax, (int)Math.Ceiling((i + 1) * (double)v.Grid / side) - i * v.Grid / side);
        double keys = n * kmax * kmax;
        double inject = queryAware ? 2 * d * c : 0;
        double mlps = 2 * 2 * p * c * c + 2 * 2 * p * c * c;  // the query's and the keys' MLPs, on every patch
        double attention = 2 * n * c * c + 2 * 2 * keys * c * c + 2 * 2 * keys * c + 2 * n * c * c;
        double projector = 2 * n * c * d + 2 * n * d * d;
        return inject + mlps + attention + projector;
    }

    /// <summary>
    /// One compressor run of kind <paramref name="kind"/>: QueCC and TokenPacker as above; an imported set's training-free
    /// <c>full</c>, <c>pool</c> and <c>query</c> project every patch (Dv -> D -> D), then pool to V (and, for query, score
    /// each patch against the question first).
    /// </summary>
    public static double Compressor(VisionSpec v, string kind, bool queryAware, int tokens, int llmDim)
    {
        if (kind is not ("full" or "pool" or "query"))
            return v.MultiDim == 0 ? DistilledCompressor(v, queryAware, tokens, llmDim) : Compressor(v, queryAware, tokens, llmDim);
        double p = v.Patches, c = v.Dim, d = llmDim, n = tokens;
        double projector = 2 * p * c * d + 2 * p * d * d;
        double pool = kind == "full" ? 0 : 2 * n * p * d;
        double score = kind == "query" ? 2 * p * d : 0;  // each patch against the question; the region softmax is elementwise
        return projector + pool + score;
    }

    /// <summary>A decoder run on <paramref name="newTokens"/> positions after <paramref name="pastTokens"/> cached ones,
    /// with logits for every new position (as the contract's graph computes them).</summary>
    public static double DecoderRun(DecoderSpec s, int newTokens, int pastTokens)
    {
        double t = newTokens, ctx = pastTokens + newTokens, d = s.Dim, qd = s.Heads * s.HeadDim, kvd = s.KvHeads * s.HeadDim;
        double projections = 2 * t * d * qd + 2 * 2 * t * d * kvd + 2 * t * qd * d;
        double attention = 2 * 2 * t * ctx * qd;  // scores and weighted values: the context-length term
        double mlp = 3 * 2 * t * d * s.Intermediate;
        double logitRows = s.LastLogitsOnly ? 1 : t;  // an imported decoder projects the last position only
        return s.Layers * (projections + attention + mlp) + 2 * logitRows * d * s.VocabSize;
    }

    /// <summary>Positions of the visual prefill: the V visual tokens between the vision_start and vision_end markers.</summary>
    public static int VisualPositions(int tokens) => tokens + 2;

    /// <summary>
    /// Positions a frame prefills for <paramref name="tokens"/> visual tokens and a query of <paramref name="queryTokens"/>,
    /// from the set's prompt layout: the image's markers, the V visual tokens and the text after them (a world set's V + 2
    /// markers; a chat set's V and the question part).
    /// </summary>
    public static int VisualPositions(PromptSpec prompt, int tokens, int queryTokens) => PromptLayout.Of(prompt).AnswerPositions(tokens, queryTokens);

    /// <summary>Positions cached before the visual tokens, from the layout: a world set's query, a chat set's template text before the image (estimated at 3 characters a token).</summary>
    public static int PrefixPositions(PromptSpec prompt, int queryTokens) => PromptLayout.Of(prompt).PrefixPositions(queryTokens);

    /// <summary>
    /// The per-stage FLOPs of one ask on <paramref name="manifest"/>'s prompt layout: the text before the image (cached),
    /// then the visual tokens with the layout's markers and text after them on top of it, then decoding. A trained
    /// compressor's FLOPs come from its architecture (<see cref="Compressor(VisionSpec, bool, int, int)"/>), the importer's
    /// full/pool/query ones from their kind. A compressor given <see cref="PromptSpec.QuestionHiddenState"/> adds the
    /// question's own pass to the query prefill (counted at <paramref name="queryTokens"/>, its template text included:
    /// an upper bound), paid once per question like the cached text.
    /// </summary>
    public static AskFlops Ask(Manifest manifest, DecoderSpec decoder, CompressorSpec compressor, int tokens, int queryTokens, int answerTokens)
    {
        var layout = PromptLayout.Of(manifest.Prompt);
        int prefix = layout.PrefixPositions(queryTokens), visual = layout.AnswerPositions(tokens, queryTokens);
        double decode = 0;
        for (int i = 1; i < answerTokens; i++) decode += DecoderRun(decoder, 1, prefix + visual + i - 1);
        double compress = Compressor(manifest.Vision, compressor.Kind, compressor.QueryAware, tokens, decoder.Dim);
        double questionPass = layout.TakesQuestionPass(compressor) ? DecoderRun(decoder, queryTokens, 0) : 0;
        return new AskFlops(Vision(manifest.Vision), DecoderRun(decoder, prefix, 0) + questionPass, compress, DecoderRun(decoder, visual, prefix), decode);
    }

    /// <summary>The per-stage FLOPs of one ask: query prefill of Q tokens, compressor, visual prefill (V + 2 markers), and decoding.</summary>
    public static AskFlops Ask(VisionSpec vision, DecoderSpec decoder, bool queryAware, int tokens, int queryTokens, int answerTokens)
    {
        int visual = VisualPositions(tokens);
        double decode = 0;
        for (int i = 1; i < answerTokens; i++) decode += DecoderRun(decoder, 1, queryTokens + visual + i - 1);
        return new AskFlops(Vision(vision), DecoderRun(decoder, queryTokens, 0), Compressor(vision, queryAware, tokens, decoder.Dim),
            DecoderRun(decoder, visual, queryTokens), decode);
    }
}

/// <summary>FLOPs of each stage of one ask.</summary>
public sealed record AskFlops(double Vision, double QueryPrefill, double Compressor, double VisualPrefill, double Decode)
{
    /// <summary>Every stage together.</summary>
    public double Total => Vision + QueryPrefill + Compressor + VisualPrefill + Decode;

    /// <summary>Per frame once the query is cached: the query prefill is paid once per question, not per frame.</summary>
    public double PerFrameCachedQuery => Vision + Compressor + VisualPrefill + Decode;
}
