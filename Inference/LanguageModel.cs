using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// Keys and values of every decoder layer for the first <see cref="Length"/> positions of a sequence.
/// A cache is never changed after it is made: a forward pass returns a new one, so a cached query prefix
/// can be extended many times (once per frame). The cache owns its tensors, which stay in the execution
/// provider's memory (I/O binding), and frees them on Dispose.
/// </summary>
public sealed class KvCache : IDisposable
{
    internal KvCache(OrtValue[] values, int length)
    {
        Values = values;
        Length = length;
    }

    /// <summary>Positions held.</summary>
    public int Length { get; }

    /// <summary>past_key_values.{i}.key, .value for i = 0..layers-1, in that order.</summary>
    internal OrtValue[] Values { get; }

    public void Dispose()
    {
        foreach (var v in Values) v.Dispose();
    }
}

/// <summary>
/// A decoder and its embedding graph (one language model of a set), with the compressors trained for it.
/// Not thread-safe: one caller at a time. <see cref="LastLogits"/> and <see cref="LastHidden"/> are
/// overwritten by the next <see cref="Forward"/>.
/// </summary>
public sealed class LanguageModel : IDisposable
{
    private readonly InferenceSession _decoder, _embed;
    private readonly OrtMemoryInfo _kvMemory;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _run = new();
    private readonly string[] _pastNames, _presentNames;
    private readonly Dictionary<(string Kind, int Tokens), Compressor> _compressors;
    private long[] _ids = new long[64];
    private long[] _mask = new long[256];
    private long[] _positions = new long[64];

    internal LanguageModel(DecoderSpec spec, InferenceSession decoder, InferenceSession embed, OrtMemoryInfo kvMemory,
        Dictionary<(string, int), Compressor> compressors)
    {
        Spec = spec;
        _oneEmbed = new float[spec.Dim];
        _oneIdValue = OrtValue.CreateTensorValueFromMemory(_oneId, [1, 1]);
        _oneEmbedValue = OrtValue.CreateTensorValueFromMemory(_oneEmbed, [1, 1, spec.Dim]);
        _onePositionValue = OrtValue.CreateTensorValueFromMemory(_onePosition, [1, 1]);
        _decoder = decoder;
        _embed = embed;
        _kvMemory = kvMemory;
        _compressors = compressors;
        _binding = decoder.CreateIoBinding();
        _pastNames = Enumerable.Range(0, spec.Layers).SelectMany(i => new[] { $"past_key_values.{i}.key", $"past_key_values.{i}.value" }).ToArray();
        _presentNames = Enumerable.Range(0, spec.Layers).SelectMany(i => new[] { $"present.{i}.key", $"present.{i}.value" }).ToArray();
        LastLogits = new float[spec.VocabSize];
        LastHidden = new float[spec.Dim];
    }

    public DecoderSpec Spec { get; }

    /// <summary>Decoder runs since load (the KV-cache test counts them).</summary>
    public int Runs { get; private set; }

    /// <summary>New positions fed to the decoder since load, summed over runs.</summary>
    public long PositionsProcessed { get; private set; }

    /// <summary>Sequence length of the most recent run.</summary>
    public int LastRunLength { get; private set; }

    /// <summary>Logits at the last position of the most recent run; valid until the next run.</summary>
    public float[] LastLogits { get; }

    /// <summary>Final-norm hidden state at the last position of the most recent run; valid until the next run.</summary>
    public float[] LastHidden { get; }

    /// <summary>Compressors available for this decoder, ordered by kind then V.</summary>
    public IEnumerable<Compressor> Compressors => _compressors.Values.OrderBy(c => c.Spec.Kind).ThenBy(c => c.Tokens);

    public Compressor Compressor(string kind, int tokens)
    {
        if (_compressors.TryGetValue((kind, tokens), out var c)) return c;
        var kinds = _compressors.Keys.Select(k => k.Kind).Distinct().ToArray();
        if (!kinds.Contains(kind))
            throw new InferenceException($"decoder {Spec.Name} has no compressor '{kind}' (it has: {string.Join(", ", kinds)})");
        var offered = _compressors.Keys.Where(k => k.Kind == kind).Select(k => k.Tokens).Order();
        throw new InferenceException($"--tokens {tokens} is not offered by {kind} for {Spec.Name}: choose one of {string.Join(", ", offered)}");
    }

    private long _runTicks;
    private static readonly string[] EmbedInputNames = ["input_ids"], EmbedOutputNames = ["inputs_embeds"];
    private readonly long[] _oneId = new long[1];
    private readonly float[] _oneEmbed;
    private readonly OrtValue _oneIdValue, _oneEmbedValue;
    private readonly long[] _onePosition = new long[1];
    private readonly OrtValue _onePositionValue;
    private float[]? _stepEmbeddings;
    private OrtValue? _stepEmbedsValue;

    /// <summary>Stopwatch ticks spent inside ONNX Runtime's Run for the decoder, embedding and compressor graphs, over their life.</summary>
    public long RunTicks => _runTicks + _compressors.Values.Sum(c => c.RunTicks);

    /// <summary>An empty cache (length 0) to start a sequence from.</summary>
    public KvCache EmptyCache()
    {
        var values = new OrtValue[_pastNames.Length];
        for (int i = 0; i < values.Length; i++)
            values[i] = OrtValue.CreateTensorValueFromMemory(Array.Empty<float>(), [1, Spec.KvHeads, 0, Spec.HeadDim]);
        return new KvCache(values, 0);
    }

    /// <summary>Embeds token ids into <paramref name="destination"/> (ids.Length x D floats) through the embed graph.</summary>
    public void Embed(ReadOnlySpan<int> ids, Span<float> destination)
    {
        int t = ids.Length, d = Spec.Dim;
        if (destination.Length < t * d)
            throw new ArgumentException($"destination holds {destination.Length} floats, {t * d} needed", nameof(destination));
        if (t == 1)
        {
            // The decode step's case, every token: tensors over reused buffers, made once.
            _oneId[0] = ids[0];
            _runTicks += OrtCall.Run(_embed, _run, EmbedInputNames, [_oneIdValue], EmbedOutputNames, [_oneEmbedValue], Spec.Embed.File);
            _oneEmbed.CopyTo(destination);
            return;
        }
        if (_ids.Length < t) _ids = new long[Math.Max(t, 2 * _ids.Length)];
        for (int i = 0; i < t; i++) _ids[i] = ids[i];
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _ids.AsMemory(0, t), [1, t]);
        using var output = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [1, t, d]);
        _runTicks += OrtCall.Run(_embed, _run, EmbedInputNames, [input], EmbedOutputNames, [output], Spec.Embed.File);
        output.GetTensorDataAsSpan<float>().CopyTo(destination);
    }

    /// <summary>
    /// Feeds <paramref name="length"/> new positions (their embeddings, length x D floats) on top of
    /// <paramref name="past"/>, fills <see cref="LastLogits"/> and <see cref="LastHidden"/>, and returns the
    /// extended cache, which the caller owns. <paramref name="past"/> is left as it was.
    /// </summary>
    public KvCache Forward(KvCache past, float[] embeddings, int length)
    {
        int d = Spec.Dim, total = past.Length + length;
        if (length <= 0 || embeddings.Length < length * d)
            throw new ArgumentException($"need {length} x {d} embedding values, got {embeddings.Length}", nameof(embeddings));
        if (_mask.Length < total) _mask = new long[Math.Max(total, 2 * _mask.Length)];
        if (_positions.Length < length) _positions = new long[Math.Max(length, 2 * _positions.Length)];
        _mask.AsSpan(0, total).Fill(1);
        for (int i = 0; i < length; i++) _positions[i] = past.Length + i;

        // A decode step (one position, the caller's reused embedding buffer) binds tensors made once; other
        // calls make theirs. The mask's length grows every step, so it is always made.
        bool step = length == 1;
        if (step && !ReferenceEquals(embeddings, _stepEmbeddings))
        {
            _stepEmbedsValue?.Dispose();
            _stepEmbedsValue = OrtValue.CreateTensorValueFromMemory(embeddings, [1, 1, d]);
            _stepEmbeddings = embeddings;
        }
        _onePosition[0] = past.Length;
        using var madeEmbeds = step ? null : OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, embeddings.AsMemory(0, length * d), [1, length, d]);
        using var madePositions = step ? null : OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _positions.AsMemory(0, length), [1, length]);
        var embeds = madeEmbeds ?? _stepEmbedsValue!;
        var positions = madePositions ?? _onePositionValue;
        using var mask = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _mask.AsMemory(0, total), [1, total]);

        _binding.ClearBoundInputs();
        _binding.ClearBoundOutputs();
        _binding.BindInput("inputs_embeds", embeds);
        _binding.BindInput("attention_mask", mask);
        _binding.BindInput("position_ids", positions);
        for (int i = 0; i < _pastNames.Length; i++) _binding.BindInput(_pastNames[i], past.Values[i]);
        // Logits and hidden state come back to the host; the new keys/values stay where the provider keeps them.
        _binding.BindOutputToDevice("logits", OrtMemoryInfo.DefaultInstance);
        _binding.BindOutputToDevice("last_hidden_state", OrtMemoryInfo.DefaultInstance);
        foreach (var name in _presentNames) _binding.BindOutputToDevice(name, _kvMemory);

        try
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            _decoder.RunWithBinding(_run, _binding);
            _runTicks += System.Diagnostics.Stopwatch.GetTimestamp() - start;
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException($"{Spec.Decoder.File} failed: {SessionFactory.FirstLine(e.Message)}", exitCode: 1, inner: e);
        }
        var outputs = _binding.GetOutputValues();
        using (var logits = outputs[0])
            logits.GetTensorDataAsSpan<float>().Slice((length - 1) * Spec.VocabSize, Spec.VocabSize).CopyTo(LastLogits);
        using (var hidden = outputs[1])
            hidden.GetTensorDataAsSpan<float>().Slice((length - 1) * d, d).CopyTo(LastHidden);
        var present = new OrtValue[_presentNames.Length];
        for (int i = 0; i < present.Length; i++) present[i] = outputs[2 + i];
        Runs++;
        PositionsProcessed += length;
        LastRunLength = length;
        return new KvCache(present, total);
    }

    public void Dispose()
    {
        _oneIdValue.Dispose();
        _oneEmbedValue.Dispose();
        _onePositionValue.Dispose();
        _stepEmbedsValue?.Dispose();
        foreach (var c in _compressors.Values) c.Dispose();
        _binding.Dispose();
        _run.Dispose();
        _decoder.Dispose();
        _embed.Dispose();
    }
}
