namespace Assistant.Inference;

/// <summary>
/// The manifest's numbers checked for range before anything is opened or allocated from them (issue 20): a set
/// claiming 100,000,000 layers, zero heads, a negative patch size or a normalisation of 1e39 is one line naming
/// the key and the value, not gigabytes of tensor names, a Concat failure deep in ONNX Runtime, or NUL
/// characters printed from NaN logits.
/// </summary>
internal static class ManifestRanges
{
    /// <summary>Generous limits: the largest public models are well inside them.</summary>
    private const int MaxLayers = 1024, MaxHeads = 1024, MaxDim = 1 << 16, MaxVocab = 1 << 24, MaxImage = 8192, MaxTokens = 1 << 16;

    /// <summary>The most characters a chat template's one turn may put around the image and the question: the engine
    /// prefills them for every question (tools/import_hf.py's RENDERED_MAX_CHARS, held here too so that a set made
    /// elsewhere cannot make every `ask` prefill a 10,000-token prefix, issue 31).</summary>
    public const int MaxChatChars = 8192;

    /// <summary>Refuses the first number out of range.</summary>
    public static void Check(Manifest m)
    {
        var v = m.Vision;
        Int("vision.image_size", v.ImageSize, 1, MaxImage);
        Int("vision.patch_size", v.PatchSize, 1, v.ImageSize);
        Int("vision.grid", v.Grid, 1, MaxImage);
        Int("vision.dim", v.Dim, 1, MaxDim);
        Int("vision.multi_dim", v.MultiDim, 0, MaxDim);  // 0: no multi-layer features (imported sets)
        Int("vision.layers", v.Layers, 1, MaxLayers);
        Int("vision.heads", v.Heads, 1, MaxHeads);
        if (v.Mean.Count != 3 || v.Std.Count != 3)
            throw new InferenceException("manifest.json vision mean/std must be three values each");
        foreach (var x in v.Mean)
            if (!float.IsFinite(x) || Math.Abs(x) > 1000) throw new InferenceException($"manifest.json vision.mean {x} is not a finite value within +-1000");
        foreach (var x in v.Std)
            if (!float.IsFinite(x) || x < 1e-6f || x > 1000) throw new InferenceException($"manifest.json vision.std {x} is not in [1e-6, 1000]");
        foreach (var d in m.Decoders)
        {
            var at = $"decoder {d.Name}";
            Int($"{at} dim", d.Dim, 1, MaxDim);
            Int($"{at} layers", d.Layers, 1, MaxLayers);
            Int($"{at} heads", d.Heads, 1, MaxHeads);
            Int($"{at} kv_heads", d.KvHeads, 1, d.Heads);
            if (d.Heads % d.KvHeads != 0) throw new InferenceException($"manifest.json {at}: heads {d.Heads} is not a multiple of kv_heads {d.KvHeads}");
            Int($"{at} head_dim", d.HeadDim, 1, MaxDim);
            Int($"{at} intermediate", d.Intermediate, 1, 1 << 20);
            Int($"{at} vocab_size", d.VocabSize, 1, MaxVocab);
            if (!double.IsFinite(d.RopeTheta) || d.RopeTheta <= 0) throw new InferenceException($"manifest.json {at} rope_theta {d.RopeTheta} must be a positive finite number");
            if (!double.IsFinite(d.RmsEps) || d.RmsEps <= 0 || d.RmsEps > 1) throw new InferenceException($"manifest.json {at} rms_eps {d.RmsEps} must be in (0, 1]");
            foreach (var c in d.Compressors)
                foreach (var key in c.Graphs.Keys)
                    if (!int.TryParse(key, out var t) || t < 1 || t > MaxTokens)
                        throw new InferenceException($"manifest.json {at} compressor {c.Kind}: '{key}' is not a visual-token count in 1..{MaxTokens}");
        }
        Int("default.tokens", m.Default.Tokens, 1, MaxTokens);
        if (m.Domain is { } domain)
        {
            if (domain.Mean.Count != v.Dim || domain.Std.Count != v.Dim)
                throw new InferenceException($"manifest.json domain mean/std must have vision.dim ({v.Dim}) values each, got {domain.Mean.Count} and {domain.Std.Count}");
            if (domain.Mean.Any(x => !float.IsFinite(x)) || domain.Std.Any(x => !float.IsFinite(x) || x <= 0))
                throw new InferenceException("manifest.json domain mean must be finite and std finite and positive");
            if (!double.IsFinite(domain.Threshold) || domain.Threshold <= 0)
                throw new InferenceException($"manifest.json domain.threshold {domain.Threshold} must be a positive finite number");
        }
        if (m.Prompt.Chat is { } chat)
        {
            long chars = (long)(chat.BeforeImage?.Length ?? 0) + (chat.BeforeQuestion?.Length ?? 0) + (chat.AfterQuestion?.Length ?? 0);
            if (chars > MaxChatChars)
                throw new InferenceException($"manifest.json prompt.chat is {chars:N0} characters for one turn; at most {MaxChatChars:N0} (the engine prefills it for every question)");
        }
    }

    private static void Int(string key, long value, long lo, long hi)
    {
        if (value < lo || value > hi) throw new InferenceException($"manifest.json {key} is {value}; it must be in {lo}..{hi}");
    }
}
