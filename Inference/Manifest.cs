using System.Text.Json;
using System.Text.Json.Serialization;

namespace Assistant.Inference;

/// <summary>One declared tensor: element type and shape; a string in the shape names a dynamic axis.</summary>
public sealed record TensorSpec(string Dtype, IReadOnlyList<JsonElement> Shape)
{
    /// <summary>The fixed size of axis <paramref name="axis"/>, or null when the axis is dynamic.</summary>
    public long? Fixed(int axis) => Shape[axis] switch
    {
        { ValueKind: JsonValueKind.Number } n when n.TryGetInt64(out var size) && size >= 0 => size,
        { ValueKind: JsonValueKind.Number } n => throw new InferenceException($"manifest.json shape {this} has axis {axis} = {n.GetRawText()}: a size is a whole number >= 0, or a name for a dynamic axis"),
        { ValueKind: JsonValueKind.String } => null,
        var other => throw new InferenceException($"manifest.json shape {this} has axis {axis} of type {other.ValueKind}: a size is a whole number, or a name for a dynamic axis"),
    };

    /// <summary>"float32[1, T, 64]": dtype and shape.</summary>
    public override string ToString() =>
        $"{Dtype}[{string.Join(", ", Shape.Select(d => d.ValueKind == JsonValueKind.String ? d.GetString() : d.GetRawText()))}]";
}

/// <summary>One ONNX file and the tensors the manifest says it has.</summary>
public sealed record GraphSpec(
    string File,
    IReadOnlyDictionary<string, TensorSpec> Inputs,
    IReadOnlyDictionary<string, TensorSpec> Outputs);

/// <summary>The vision encoder of a set (manifest.json <c>vision</c>).</summary>
/// <param name="File">Its ONNX file.</param>
/// <param name="Inputs">Declared inputs.</param>
/// <param name="Outputs">Declared outputs.</param>
/// <param name="ImageSize">Input side in pixels.</param>
/// <param name="PatchSize">Patch side in pixels.</param>
/// <param name="Grid">Patches per side.</param>
/// <param name="Dim">Feature width.</param>
/// <param name="MultiDim">Width of the multi-layer features QueCC reads; 0: the graph has no features_multi (imported sets).</param>
/// <param name="Layers">Transformer layers.</param>
/// <param name="Heads">Attention heads.</param>
/// <param name="MultiLayers">The layers whose outputs make the multi-layer features.</param>
/// <param name="Mean">Per-channel normalisation mean (RGB).</param>
/// <param name="Std">Per-channel normalisation deviation (RGB).</param>
/// <param name="Params">Parameter count.</param>
/// <param name="MlpDim">The MLP's hidden width (0: 4 x dim).</param>
/// <param name="ClassToken">Whether the tower runs a class token beside the patches (CLIP, the world's encoder: yes; SigLIP: no).</param>
/// <param name="Crop">"center": the frame's centred square is resized (CLIP's processor); absent: the whole frame.</param>
public sealed record VisionSpec(
    string File,
    IReadOnlyDictionary<string, TensorSpec> Inputs,
    IReadOnlyDictionary<string, TensorSpec> Outputs,
    int ImageSize,
    int PatchSize,
    int Grid,
    int Dim,
    int MultiDim,
    int Layers,
    int Heads,
    IReadOnlyList<int> MultiLayers,
    IReadOnlyList<float> Mean,
    IReadOnlyList<float> Std,
    long Params,
    int MlpDim = 0,
    bool ClassToken = true,
    string? Crop = null)
{
    /// <summary>The MLP's hidden width (a manifest without mlp_dim means CLIP's 4 x dim).</summary>
    public int MlpDim { get; init; } = MlpDim > 0 ? MlpDim : 4 * Dim;

    /// <summary>The graph as a <see cref="GraphSpec"/>.</summary>
    public GraphSpec Graph => new(File, Inputs, Outputs);
    /// <summary>P: grid squared.</summary>
    public int Patches => Grid * Grid;
}

/// <summary>A compressor (QueCC or the query-agnostic baseline) with one graph per supported V.</summary>
/// <param name="Kind">Its kind, as --compressor takes it.</param>
/// <param name="QueryAware">Whether its graphs take the query embedding.</param>
/// <param name="Heads">Attention heads (trained kinds).</param>
/// <param name="Params">Parameter count.</param>
/// <param name="Graphs">One graph per V, keyed by V.</param>
/// <param name="QueryEmbedding">What this compressor is given as its query embedding when it is not the prompt's
/// (<see cref="PromptSpec.QueryEmbedding"/>): a distilled compressor trained on <see cref="PromptSpec.QuestionHiddenState"/>
/// says so here, while the set's training-free <c>query</c> keeps the prompt's mean embedding.</param>
public sealed record CompressorSpec(
    string Kind,
    bool QueryAware,
    int Heads,
    long Params,
    IReadOnlyDictionary<string, GraphSpec> Graphs,
    string? QueryEmbedding = null)
{
    /// <summary>Supported visual-token counts, ascending.</summary>
    public IReadOnlyList<int> Tokens => Graphs.Keys.Select(int.Parse).Order().ToArray();
}

/// <summary>One decoder of a set with its embedding graph and compressors (manifest.json <c>decoders[]</c>).</summary>
/// <param name="Name">Its name, as --decoder takes it.</param>
/// <param name="Decoder">The decoder graph.</param>
/// <param name="Embed">The embedding graph.</param>
/// <param name="Dim">Hidden width.</param>
/// <param name="Layers">Transformer layers.</param>
/// <param name="Heads">Query heads.</param>
/// <param name="KvHeads">Key/value heads (grouped-query attention).</param>
/// <param name="HeadDim">Width per head.</param>
/// <param name="Intermediate">The MLP's hidden width.</param>
/// <param name="VocabSize">Logit rows (at least the tokenizer's ids).</param>
/// <param name="RopeTheta">Rotary position base.</param>
/// <param name="RmsEps">RMSNorm epsilon.</param>
/// <param name="Params">Parameter count.</param>
/// <param name="Compressors">The compressors trained for it.</param>
/// <param name="EmbedTable">The embedding graph's table as raw rows the engine maps instead of loading the graph
/// (imported sets); absent: the embedding graph runs.</param>
/// <param name="KvCache">How the graph treats its cache: <c>in_place</c> when its attention (GroupQueryAttention) may be
/// given one buffer as both past and present and writes only the new positions into it; absent or <c>concat</c>: it
/// returns the past with the new positions appended.</param>
public sealed record DecoderSpec(
    string Name,
    GraphSpec Decoder,
    GraphSpec Embed,
    int Dim,
    int Layers,
    int Heads,
    int KvHeads,
    int HeadDim,
    int Intermediate,
    int VocabSize,
    double RopeTheta,
    double RmsEps,
    long Params,
    IReadOnlyList<CompressorSpec> Compressors,
    EmbedTableSpec? EmbedTable = null,
    string? KvCache = null)
{
    /// <summary>The <c>kv_cache</c> value of a graph that may write its cache in place.</summary>
    public const string KvInPlaceValue = "in_place";

    /// <summary>Whether past and present may be one buffer (<see cref="KvCache"/> is <c>in_place</c>).</summary>
    public bool KvInPlace => KvCache == KvInPlaceValue;

    /// <summary>Whether the decoder graph computes logits for the last position only: its spec says logits (batch, 1, vocab).</summary>
    public bool LastLogitsOnly =>
        Decoder.Outputs.TryGetValue(DecoderContract.Logits, out var logits) && logits.Shape.Count == 3 && logits.Fixed(1) == 1;
}

/// <summary>
/// A decoder's token embeddings as a file of raw little-endian rows (the embedding graph's own external data):
/// <paramref name="Rows"/> x <paramref name="Dim"/> values of <paramref name="Dtype"/> (<c>f32</c> or <c>f16</c>) from
/// byte <paramref name="Offset"/> of <paramref name="File"/>.
/// </summary>
public sealed record EmbedTableSpec(string File, long Offset, int Rows, int Dim, string Dtype);

/// <summary>The tokenizer's files and special tokens: a byte-level BPE (Qwen2's) or a SentencePiece BPE (Llama 2's).</summary>
/// <param name="PreTokenizer">Which tokenizer it is: <c>qwen2</c> (byte-level BPE with Qwen2's split), <c>smollm</c>
/// (byte-level BPE with SmolLM2's) or <c>sentencepiece</c> (SentencePiece's own normalisation: spaces as U+2581 and a dummy prefix).</param>
/// <param name="SpecialTokens">Special token text to id.</param>
/// <param name="Vocab">vocab.json, relative to the set (byte-level BPE).</param>
/// <param name="Merges">merges.txt, relative to the set (byte-level BPE).</param>
/// <param name="Model">tokenizer.model (a SentencePiece model), relative to the set (SentencePiece).</param>
public sealed record TokenizerSpec(
    string PreTokenizer,
    IReadOnlyDictionary<string, int> SpecialTokens,
    string? Vocab = null,
    string? Merges = null,
    string? Model = null)
{
    /// <summary>The byte-level BPE with Qwen2's pre-tokenizer split.</summary>
    public const string Qwen2 = "qwen2";

    /// <summary>The byte-level BPE with SmolLM2's pre-tokenizer (SmolVLM's): every digit alone, then GPT-2's split.</summary>
    public const string SmolLm = "smollm";

    /// <summary>SentencePiece BPE with byte fallback, read from a tokenizer.model (Llama 2, Vicuna).</summary>
    public const string SentencePiece = "sentencepiece";
}

/// <summary>
/// The prompt of a set, in one of two layouts. World sets: <c>[query_start query][vision_start visual vision_end][answer stop]</c>
/// (<paramref name="QueryStart"/>, <paramref name="VisionStart"/>, <paramref name="VisionEnd"/> name its special tokens).
/// Imported chat sets (<paramref name="Chat"/> given): <c>[before_image][visual][before_question question after_question][answer stop]</c>,
/// as the checkpoint's chat template renders one user turn. <paramref name="AnswerWords"/>: the most words an
/// answer of this set has (the world sets: 1), after which decoding stops; absent: no word limit.
/// <paramref name="QueryEmbedding"/>: what a query-aware compressor is given, <c>last_hidden_state</c> (the decoder's
/// hidden state at the query's last token; the default) or <c>question_embedding_mean</c> (the mean of the
/// question's token embeddings, for a chat layout whose question follows the image) or <c>question_hidden_state</c>
/// (the decoder run on the question's own tokens alone, its hidden state at the last one: the paper's QueCC query).
/// <paramref name="Layout"/>: any other layout written out as pieces (<see cref="PromptLayout"/>); the engine runs
/// every layout through <see cref="PromptLayout.Of"/>, never by asking which kind a set is.
/// </summary>
public sealed record PromptSpec(IReadOnlyList<string> Stop, string? QueryStart = null, string? VisionStart = null, string? VisionEnd = null,
    int? AnswerWords = null, ChatPromptSpec? Chat = null, string? QueryEmbedding = null, PromptLayoutSpec? Layout = null)
{
    /// <summary>The query embedding of the world layout: the decoder's hidden state at the query's last token.</summary>
    public const string LastHiddenState = "last_hidden_state";

    /// <summary>The query embedding of the chat layout: the mean of the question's token embeddings.</summary>
    public const string QuestionEmbeddingMean = "question_embedding_mean";

    /// <summary>
    /// The paper's query embedding for any layout: the decoder run on the question's own tokens alone (no template text,
    /// no picture), its final hidden state at the question's last token. One short prefill per question and decoder.
    /// </summary>
    public const string QuestionHiddenState = "question_hidden_state";
}

/// <summary>
/// The text a chat template puts around one user turn of [image, question]: special tokens inside it are
/// recognised (it comes from the set, not from the user), everything else is byte-level BPE.
/// </summary>
/// <param name="BeforeImage">Up to the image placeholder; the same for every frame and question, so its KV is computed once.</param>
/// <param name="BeforeQuestion">Between the image and the question.</param>
/// <param name="AfterQuestion">After the question up to where the answer starts (the assistant prefix).</param>
public sealed record ChatPromptSpec(string BeforeImage, string BeforeQuestion, string AfterQuestion);

/// <summary>The configuration used when none is asked for.</summary>
/// <param name="Decoder">Decoder name.</param>
/// <param name="Compressor">Compressor kind.</param>
/// <param name="Tokens">V.</param>
public sealed record DefaultSpec(string Decoder, string Compressor, int Tokens);

/// <summary>
/// What the pictures a set was trained on look like to its own vision encoder (world sets): the per-channel mean and
/// standard deviation of the encoder's patch-averaged features over held-out scenes, and the familiarity score above
/// which a picture is called unfamiliar (the score: the mean squared z-score of its averaged features; the threshold:
/// a quantile of the held-out scenes' own scores, so nearly all of them pass). Written by `assistant models
/// calibrate-domain`; absent for imported sets, which are not domain-checked.
/// </summary>
/// <param name="Mean">Per-channel mean of the averaged features (vision.dim values).</param>
/// <param name="Std">Per-channel standard deviation (vision.dim values, each > 0).</param>
/// <param name="Threshold">Scores above this are unfamiliar.</param>
/// <param name="Scenes">How many held-out scenes measured it.</param>
/// <param name="Quantile">The share of those scenes at or under the threshold.</param>
public sealed record DomainSpec(IReadOnlyList<float> Mean, IReadOnlyList<float> Std, double Threshold, int Scenes, double Quantile);

/// <summary>The synthetic world a set was trained on (absent for sets that are not world-trained).</summary>
public sealed record WorldSpec(
    string Definition,
    int ImageSize,
    IReadOnlyList<string> Vocabulary,
    IReadOnlyList<string> Answers,
    IReadOnlyList<string> Families);

/// <summary>manifest.json of a model set; models/README.md is the full contract.</summary>
public sealed record Manifest(
    string Format,
    string Name,
    string? Description,
    string? CreatedBy,
    VisionSpec Vision,
    IReadOnlyList<DecoderSpec> Decoders,
    TokenizerSpec Tokenizer,
    PromptSpec Prompt,
    DefaultSpec Default,
    JsonElement? ScalingLaw,
    string? Golden = null,
    WorldSpec? World = null,
    JsonElement? Source = null,
    DomainSpec? Domain = null)
{
    /// <summary>The manifest format this build reads.</summary>
    public const string FormatName = "quecc-assistant-models/1";

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        RespectRequiredConstructorParameters = true,
        RespectNullableAnnotations = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Reads and parses <c>manifest.json</c> in <paramref name="directory"/>; every failure is one line.</summary>
    public static Manifest Read(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
            throw new InferenceException($"model folder not found: {directory}");
        var path = Path.Combine(directory, "manifest.json");
        if (!System.IO.File.Exists(path))
            throw new InferenceException($"not a model set: {directory} has no manifest.json");
        Manifest? manifest;
        try
        {
            // A FIFO or a device as manifest.json is refused unopened; a huge one is refused by size.
            var text = SetFile.ReadText(SetFile.Regular(path, "manifest"), SetFile.MaxManifestBytes, "manifest");
            manifest = JsonSerializer.Deserialize<Manifest>(text, Json);
        }
        catch (JsonException e)
        {
            throw new InferenceException($"{path} is not a valid manifest: {SessionFactory.FirstLine(e.Message)}", inner: e);
        }
        if (manifest is null)
            throw new InferenceException($"{path} is empty");
        RefuseNullEntries(manifest, "manifest.json");
        if (manifest.Format != FormatName)
            throw new InferenceException($"{path} has format '{manifest.Format}'; this build reads '{FormatName}'");
        if (manifest.Decoders.Count == 0)
            throw new InferenceException($"{path} lists no decoders");
        return manifest;
    }

    /// <summary>
    /// The serializer refuses a null for a non-nullable property, but not inside a list or a map: a null decoder,
    /// compressor graph or tensor there became a NullReferenceException deep in loading. No entry of this
    /// manifest may be null; the first one found is named by its path.
    /// </summary>
    private static void RefuseNullEntries(object node, string path)
    {
        switch (node)
        {
            case string or JsonElement or ValueType:
                return;
            case System.Collections.IDictionary map:
                foreach (System.Collections.DictionaryEntry e in map)
                    Entry(e.Value, $"{path}.{e.Key}");
                return;
            case System.Collections.IEnumerable list:
                int i = 0;
                foreach (var e in list) Entry(e, $"{path}[{i++}]");
                return;
        }
        // A spec record: its declared (init) properties, not computed ones such as GraphSpec views or V lists.
        foreach (var p in node.GetType().GetProperties())
            if (p.SetMethod is not null && p.GetValue(node) is { } value)
                RefuseNullEntries(value, $"{path}.{Json.PropertyNamingPolicy!.ConvertName(p.Name)}");

        static void Entry(object? value, string at)
        {
            if (value is null) throw new InferenceException($"{at} is an empty (null) entry");
            RefuseNullEntries(value, at);
        }
    }

    /// <summary>The decoder named <paramref name="name"/>; a clear error naming the set's decoders otherwise.</summary>
    public DecoderSpec FindDecoder(string name) =>
        Decoders.FirstOrDefault(d => d.Name == name)
        ?? throw new InferenceException($"model set '{Name}' has no decoder '{name}' (it has: {string.Join(", ", Decoders.Select(d => d.Name))})");
}
