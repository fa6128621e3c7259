using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// A loaded and validated model set: every graph the manifest names, checked against its real ONNX
/// metadata and against the other components, before anything runs. Owns every session; Dispose frees them.
/// </summary>
public sealed class ModelSet : IDisposable
{
    private readonly SessionFactory _factory;

    private ModelSet(string directory, Manifest manifest, SessionFactory factory, VisionEncoder vision,
        TextTokenizer tokenizer, PromptLayout layout, IReadOnlyList<LanguageModel> decoders, IReadOnlyDictionary<string, long> residentAtLoad)
    {
        _factory = factory;
        ResidentAtLoad = residentAtLoad;
        Layout = layout;
        Directory = directory;
        Manifest = manifest;
        Provider = factory.Provider;
        Vision = vision;
        Tokenizer = tokenizer;
        Decoders = decoders;
    }

    /// <summary>
    /// How much the process's resident set grew while each component was opened, in bytes, by name ("vision",
    /// "text decoder", "text embedding", "text compressors"): what its weights cost before any run (a run's working
    /// memory comes on top; a mapped embedding table costs the rows read later). Compressors count as they are
    /// opened: the default one at load, the others when first used. Measured with
    /// <see cref="Environment.WorkingSet"/>, so another thread's allocations meanwhile land in it too.
    /// </summary>
    public IReadOnlyDictionary<string, long> ResidentAtLoad { get; }

    /// <summary>The set's folder (absolute).</summary>
    public string Directory { get; }
    /// <summary>The validated manifest.</summary>
    public Manifest Manifest { get; }
    /// <summary>The provider every session runs on.</summary>
    public ExecutionProvider Provider { get; }
    /// <summary>The vision encoder (sessions shared; states leased).</summary>
    public VisionEncoder Vision { get; }
    /// <summary>The tokenizer.</summary>
    public TextTokenizer Tokenizer { get; }
    /// <summary>One user turn of the prompt, checked against the tokenizer (its pieces, markers and where the question goes).</summary>
    public PromptLayout Layout { get; }
    /// <summary>Every decoder with its compressors.</summary>
    public IReadOnlyList<LanguageModel> Decoders { get; }

    /// <summary>
    /// Opens every graph not open yet (compressors open when first used), so that each is checked against its
    /// manifest entry now; any problem is one <see cref="InferenceException"/>.
    /// </summary>
    public void OpenEveryGraph()
    {
        foreach (var d in Decoders)
            foreach (var c in d.Compressors) c.Open();
    }

    /// <summary>Time spent inside ONNX Runtime's Run across every graph of the set, over its life.</summary>
    public TimeSpan RunTime => System.Diagnostics.Stopwatch.GetElapsedTime(0, Vision.RunTicks + Decoders.Sum(d => d.RunTicks));

    /// <summary>
    /// A new lease of the set's mutable state (buffers, bindings) for one user: valid until disposed, which
    /// must happen before the set is. Each pipeline, calibration or evaluation takes its own.
    /// </summary>
    public InferenceLease Lease()
    {
        Interlocked.Increment(ref _leasesTaken);
        return new(this);
    }

    /// <summary>Leases taken of this set over its life (a test counts an evaluation's).</summary>
    public long LeasesTaken => Interlocked.Read(ref _leasesTaken);

    private long _leasesTaken;

    /// <summary>Which frame kernels run as graphs on this set's provider (<see cref="SessionFactory.FrameGraphUse"/>).</summary>
    public (bool Thumbnail, bool Preprocess) FrameGraphUse => _factory.FrameGraphUse(Vision.Spec.ImageSize);

    private readonly Lock _frameGraphsLock = new();
    private (InferenceSession Preprocess, InferenceSession Thumbnail)? _frameGraphs;  // opened on first use, then shared

    /// <summary>
    /// A lease of the frame kernels' graphs on this set's provider, for a caller that prepares frames there; null where
    /// no kernel runs as a graph (<see cref="FrameGraphUse"/>). The sessions are opened on first use and shared, like the
    /// set's other graphs; the caller owns the lease and disposes it before the set.
    /// </summary>
    public FrameKernels? LoadFrameKernels(Func<byte[]> preprocessGraph, Func<byte[]> thumbnailGraph)
    {
        if (FrameGraphUse is (false, false)) return null;
        lock (_frameGraphsLock)
            _frameGraphs ??= FrameKernels.Open(_factory, preprocessGraph(), thumbnailGraph());
        return FrameKernels.Lease(_frameGraphs.Value);
    }

    /// <summary>The decoder named <paramref name="name"/>; a clear error naming the set's decoders otherwise.</summary>
    public LanguageModel Decoder(string name) =>
        Decoders.FirstOrDefault(d => d.Spec.Name == name)
        ?? throw new InferenceException($"model set '{Manifest.Name}' has no decoder '{name}' (it has: {string.Join(", ", Decoders.Select(d => d.Spec.Name))})");

    /// <summary>Reads, loads and validates the set in <paramref name="directory"/>; any problem is one <see cref="InferenceException"/>.</summary>
    public static ModelSet Load(string directory, SessionFactory factory)
    {
        var manifest = Manifest.Read(directory);
        // Everything opened so far and not yet handed to a wrapper: disposed if loading fails. A wrapper is made
        // first and only then takes its parts over (Adopt), so a wrapper that fails to construct leaves its
        // parts here to be disposed.
        var owned = new List<IDisposable>();
        var opened = new ResidentMeter();
        T Measured<T>(string component, Func<T> load) => opened.Measured(component, load);
        try
        {
            InferenceSession Open(GraphSpec g, bool plannedMemory = true)
            {
                var s = factory.Create(SetFile.Resolve(directory, g.File, "model file"), plannedMemory);
                owned.Add(s);
                return s;
            }
            T Adopt<T>(T wrapper, params IEnumerable<IDisposable> parts) where T : IDisposable
            {
                foreach (var part in parts) owned.Remove(part);
                owned.Add(wrapper);
                return wrapper;
            }

            ManifestRanges.Check(manifest);  // before anything is opened or sized from the manifest's numbers
            if (manifest.Vision.Crop is not (null or "center"))
                throw new InferenceException($"manifest.json vision crop '{manifest.Vision.Crop}' is not one this build does (center, or none)");
            var vs = manifest.Vision;
            var visionGraph = vs.Graph;
            var visionSession = Measured("vision", () => Open(visionGraph, plannedMemory: false));
            // An imported set (multi_dim 0) has no multi-layer features: its graphs neither make nor read them.
            bool multi = vs.MultiDim > 0;
            GraphContract.Check(visionSession, visionGraph, ["pixel_values"], multi ? ["features", "features_multi"] : ["features"]);
            GraphContract.Dim(visionGraph, "pixel_values", 1, 3, "RGB channels");
            GraphContract.Dim(visionGraph, "pixel_values", 2, vs.ImageSize, "vision image_size");
            GraphContract.Dim(visionGraph, "pixel_values", 3, vs.ImageSize, "vision image_size");
            GraphContract.Dim(visionGraph, "features", 1, vs.Patches, "vision patches (grid^2)");
            GraphContract.Dim(visionGraph, "features", 2, vs.Dim, "vision dim");
            if (multi)
            {
                GraphContract.Dim(visionGraph, "features_multi", 1, vs.Patches, "vision patches (grid^2)");
                GraphContract.Dim(visionGraph, "features_multi", 2, vs.MultiDim, "vision multi_dim");
            }

            var tokenizer = TextTokenizer.Load(directory, manifest.Tokenizer);
            var layout = CheckPrompt(manifest.Prompt, tokenizer);
            if (manifest.Prompt.AnswerWords is < 1)
                throw new InferenceException($"manifest.json prompt answer_words must be at least 1, got {manifest.Prompt.AnswerWords}");

            var kvMemory = factory.Provider == ExecutionProvider.Cuda
                ? new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, factory.Config.DeviceId, OrtMemType.Default)
                : OrtMemoryInfo.DefaultInstance;

            var decoders = new List<LanguageModel>();
            foreach (var ds in manifest.Decoders)
            {
                if (ds.KvCache is not (null or "concat" or DecoderSpec.KvInPlaceValue))
                    throw new InferenceException($"decoder {ds.Name} kv_cache '{ds.KvCache}' is not one this build knows (concat, in_place)");
                if (tokenizer.Count > ds.VocabSize)
                    throw new InferenceException($"dimension mismatch: tokenizer has {tokenizer.Count} ids but decoder {ds.Name} vocab_size is {ds.VocabSize}");
                // The mapped table where the set has one (its graph, the same table, is then not loaded); else the graph.
                InferenceSession? embed = null;
                EmbeddingTable? table = null;
                if (ds.EmbedTable is { } ts)
                {
                    table = Measured($"{ds.Name} embedding", () => EmbeddingTable.Open(directory, ts, ds));
                    owned.Add(table);
                }
                else
                {
                    embed = Measured($"{ds.Name} embedding", () => Open(ds.Embed));
                    GraphContract.Check(embed, ds.Embed, [DecoderContract.InputIds], [DecoderContract.InputsEmbeds]);
                    GraphContract.Dim(ds.Embed, DecoderContract.InputsEmbeds, 2, ds.Dim, $"decoder {ds.Name} dim");
                }
                var decoder = Measured($"{ds.Name} decoder", () => Open(ds.Decoder));
                // The manifest's layer count against the graph's own: every cache below is sized from it.
                int graphLayers = DecoderContract.GraphLayers(decoder.InputMetadata.Keys);
                if (graphLayers != ds.Layers)
                    throw new InferenceException(
                        $"decoder {ds.Name} layers is {ds.Layers} in manifest.json, but {ds.Decoder.File} takes past_key_values for {graphLayers} layers");
                GraphContract.Check(decoder, ds.Decoder, DecoderContract.DecoderInputs(ds.Layers), DecoderContract.DecoderOutputs(ds.Layers));
                GraphContract.Dim(ds.Decoder, DecoderContract.InputsEmbeds, 2, ds.Dim, $"decoder {ds.Name} dim");
                GraphContract.Dim(ds.Decoder, DecoderContract.LastHiddenState, 2, ds.Dim, $"decoder {ds.Name} dim");
                GraphContract.Dim(ds.Decoder, DecoderContract.Logits, 2, ds.VocabSize, $"decoder {ds.Name} vocab_size");
                foreach (var name in DecoderContract.PastNames(ds.Layers).Concat(DecoderContract.PresentNames(ds.Layers)))
                {
                    GraphContract.Dim(ds.Decoder, name, 1, ds.KvHeads, $"decoder {ds.Name} kv_heads");
                    GraphContract.Dim(ds.Decoder, name, 3, ds.HeadDim, $"decoder {ds.Name} head_dim");
                }

                var compressors = new Dictionary<(string, int), Compressor>();
                foreach (var cs in ds.Compressors)
                {
                    if (cs.Graphs.Count == 0)
                        throw new InferenceException($"compressor {cs.Kind} of {ds.Name} lists no graphs");
                    if (cs.QueryEmbedding is { } own)
                        layout.CheckQueryEmbedding(own, $"manifest.json compressor {cs.Kind} of {ds.Name}");
                    foreach (var (key, g) in cs.Graphs)
                    {
                        if (!int.TryParse(key, out var v) || v <= 0)
                            throw new InferenceException($"compressor {cs.Kind} of {ds.Name}: '{key}' is not a visual-token count");
                        // What can be checked without opening the graph is checked now; its names when it is opened.
                        var path = SetFile.Resolve(directory, g.File, "model file");
                        GraphContract.Dim(g, "features", 1, vs.Patches, "vision patches");
                        GraphContract.Dim(g, "features", 2, vs.Dim, "vision features width");
                        if (multi) GraphContract.Dim(g, "features_multi", 2, vs.MultiDim, "vision features_multi width");
                        if (cs.QueryAware) GraphContract.Dim(g, "query_embedding", 1, ds.Dim, $"decoder {ds.Name} dim");
                        GraphContract.Dim(g, "visual_tokens", 1, v, "the V it is listed under");
                        GraphContract.Dim(g, "visual_tokens", 2, ds.Dim, $"decoder {ds.Name} dim");
                        string[] inputs = [.. (multi ? new[] { "features", "features_multi" } : ["features"]), .. (cs.QueryAware ? new[] { "query_embedding" } : [])];
                        string component = $"{ds.Name} compressors";
                        InferenceSession OpenChecked() => opened.Measured(component, () =>
                        {
                            var session = factory.Create(path);
                            try
                            {
                                GraphContract.Check(session, g, inputs, ["visual_tokens"]);
                                return session;
                            }
                            catch
                            {
                                session.Dispose();
                                throw;
                            }
                        });
                        var compressor = new Compressor(OpenChecked, cs, g, v, ds.Dim, factory.CopiesInputsAtBind);
                        owned.Add(compressor);
                        compressors[(cs.Kind, v)] = compressor;
                    }
                }
                decoders.Add(Adopt(new LanguageModel(ds, decoder, embed, table, kvMemory, compressors, factory.CopiesInputsAtBind),
                    [decoder, .. (embed is null ? Array.Empty<IDisposable>() : [embed]), .. (table is null ? Array.Empty<IDisposable>() : [table]), .. compressors.Values]));
            }

            var d = manifest.Default;
            var defaultDecoder = decoders.FirstOrDefault(x => x.Spec.Name == d.Decoder)
                ?? throw new InferenceException($"manifest.json default decoder '{d.Decoder}' is not listed");
            // The default path's compressor is opened now: its problems show at load, and the first frame does not pay for it.
            defaultDecoder.Compressor(d.Compressor, d.Tokens).Open();

            var vision = Adopt(new VisionEncoder(visionSession, vs, factory.CopiesInputsAtBind), visionSession);
            return new ModelSet(Path.GetFullPath(directory), manifest, factory, vision, tokenizer, layout, decoders, opened.Grown);
        }
        catch
        {
            foreach (var o in owned) o.Dispose();
            throw;
        }
    }

    /// <summary>The prompt's stop tokens exist and its layout is whole (<see cref="PromptLayout.Check"/>).</summary>
    private static PromptLayout CheckPrompt(PromptSpec prompt, TextTokenizer tokenizer)
    {
        foreach (var t in prompt.Stop) tokenizer.SpecialId(t);
        if (prompt.Chat is null && prompt.Layout is null)
        {
            foreach (var (key, t) in new[] { ("query_start", prompt.QueryStart), ("vision_start", prompt.VisionStart), ("vision_end", prompt.VisionEnd) })
                tokenizer.SpecialId(t ?? throw new InferenceException($"manifest.json prompt has no {key} (and no chat or layout)"));
        }
        var layout = PromptLayout.Of(prompt);
        layout.Check(tokenizer);
        return layout;
    }

    /// <summary>Frees every session; leases must be disposed first.</summary>
    public void Dispose()
    {
        if (_frameGraphs is { } graphs)
        {
            graphs.Preprocess.Dispose();
            graphs.Thumbnail.Dispose();
        }
        Vision.Dispose();
        foreach (var d in Decoders) d.Dispose();
    }
}

/// <summary>How much the resident set grew while each named component was opened; safe from any thread.</summary>
internal sealed class ResidentMeter
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _grown = new();

    /// <summary>The growth so far, by component.</summary>
    public IReadOnlyDictionary<string, long> Grown => _grown;

    public T Measured<T>(string component, Func<T> open)
    {
        long before = Environment.WorkingSet;
        var made = open();
        long grew = Math.Max(0, Environment.WorkingSet - before);
        _grown.AddOrUpdate(component, grew, (_, sum) => sum + grew);
        return made;
    }
}
