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
        _decoder = decoder;
        _embed = embed;
        _kvMemory = kvMemory;
        _compressors = compressors;
        _binding = decoder.CreateIoBinding();
        _pastNames = Enumerable.Range(0, spec.Layers).SelectMany(i => new[] { $"past_key_values.{i}.key", $"past_key_values.{i}.value" }).ToArray();
        _presentNames = Enumerable.Range(0, spec.Layers).SelectMany(i => new[] { $"present.{i}.key", $"present.{i}.value" }).ToArray();
        // Pinned for the model's life: decode steps bind them as the graph's outputs, so ONNX Runtime writes
        // the logits and hidden state straight into them.
        LastLogits = GC.AllocateArray<float>(spec.VocabSize, pinned: true);
        LastHidden = GC.AllocateArray<float>(spec.Dim, pinned: true);
        _oneEmbed = GC.AllocateArray<float>(spec.Dim, pinned: true);
        _oneIdValue = OrtValue.CreateTensorValueFromMemory(_oneId, [1, 1]);
        _oneEmbedValue = OrtValue.CreateTensorValueFromMemory(_oneEmbed, [1, 1, spec.Dim]);
        _onePositionValue = OrtValue.CreateTensorValueFromMemory(_onePosition, [1, 1]);
        _stepLogitsValue = OrtValue.CreateTensorValueFromMemory(LastLogits, [1, 1, spec.VocabSize]);
        _stepHiddenValue = OrtValue.CreateTensorValueFromMemory(LastHidden, [1, 1, spec.Dim]);
        _embedBinding = embed.CreateIoBinding();
        _embedBinding.BindInput(EmbedInputNames[0], _oneIdValue);
        _embedBinding.BindOutput(EmbedOutputNames[0], _oneEmbedValue);
        _stepBuffers = new StepBuffers(kvMemory, kvMemory.Equals(OrtMemoryInfo.DefaultInstance) ? null : new OrtAllocator(decoder, kvMemory),
            _presentNames.Length, spec.KvHeads, spec.HeadDim);
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
    private readonly OrtValue _stepLogitsValue, _stepHiddenValue;
    private readonly OrtIoBinding _embedBinding;

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
            EmbedOne(ids[0]);
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

        // Prefills make their tensors per call; decode steps go through a DecodeSequence, which makes none.
        using var embeds = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, embeddings.AsMemory(0, length * d), [1, length, d]);
        using var positions = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _positions.AsMemory(0, length), [1, length]);
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

        RunDecoder(_binding);
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

    private void EmbedOne(int id)
    {
        _oneId[0] = id;
        _runTicks += OrtCall.Run(_embed, _run, _embedBinding, Spec.Embed.File);
    }

    private void RunDecoder(OrtIoBinding binding) => _runTicks += OrtCall.Run(_decoder, _run, binding, Spec.Decoder.File);

    // Decode steps run on bindings made once per cache length L over the step buffers (see StepBuffers), kept
    // for every later sequence; they are dropped when the buffers grow.
    private readonly StepBuffers _stepBuffers;
    private OrtIoBinding?[] _stepBindings = [];  // [L]: the step from a cache of length L
    private int _sequenceTicket;

    /// <summary>
    /// Starts decoding one token at a time after <paramref name="prefix"/> (whose last run left its logits in
    /// <see cref="LastLogits"/>). Steps make no managed allocations once every length has been seen. A model
    /// decodes one sequence at a time: beginning another ends this one (its next step throws). The prefix is
    /// read by the first step only and stays the caller's.
    /// </summary>
    public DecodeSequence BeginDecode(KvCache prefix, int maxNewTokens)
    {
        if (maxNewTokens < 0) throw new InferenceException($"max tokens must be >= 0, got {maxNewTokens}");
        EnsureStepCapacity(prefix.Length + maxNewTokens + 1);
        var first = _decoder.CreateIoBinding();
        BindStep(first, prefix.Length, past: i => prefix.Values[i]);
        return new DecodeSequence(this, first, prefix.Length, prefix.Length + maxNewTokens, ++_sequenceTicket);
    }

    /// <summary>
    /// Prefills <paramref name="length"/> positions (their embeddings, length x D floats) on top of
    /// <paramref name="past"/> straight into the step buffers, fills <see cref="LastLogits"/> and
    /// <see cref="LastHidden"/>, and starts decoding after them. This is the frame loop's visual prefill: the
    /// binding is kept for the next call with the same past and length (the next frame, on the same cached
    /// query), so a frame binds nothing. <paramref name="past"/> is left as it was and must outlive the call.
    /// </summary>
    public DecodeSequence BeginDecode(KvCache past, ReadOnlySpan<float> embeddings, int length, int maxNewTokens)
    {
        int d = Spec.Dim;
        if (length <= 0 || embeddings.Length < length * d)
            throw new ArgumentException($"need {length} x {d} embedding values, got {embeddings.Length}", nameof(embeddings));
        if (maxNewTokens < 0) throw new InferenceException($"max tokens must be >= 0, got {maxNewTokens}");
        int total = past.Length + length;
        EnsureStepCapacity(total + maxNewTokens + 1);
        if (_prefillBinding is null || !ReferenceEquals(past, _prefillPast) || length != _prefillLength) MakePrefillBinding(past, length);
        embeddings[..(length * d)].CopyTo(_prefillEmbeds);
        RunDecoder(_prefillBinding!);
        _prefillLogits.AsSpan((length - 1) * Spec.VocabSize, Spec.VocabSize).CopyTo(LastLogits);
        _prefillHidden.AsSpan((length - 1) * d, d).CopyTo(LastHidden);
        Runs++;
        PositionsProcessed += length;
        LastRunLength = length;
        return new DecodeSequence(this, null, total, total + maxNewTokens, ++_sequenceTicket);
    }

    // The prefill's binding and tensors, for one (past, length) at a time; made again when either changes.
    private OrtIoBinding? _prefillBinding;
    private KvCache? _prefillPast;
    private int _prefillLength;
    private float[] _prefillEmbeds = [], _prefillLogits = [], _prefillHidden = [];
    private long[] _prefillPositions = [];
    private readonly List<OrtValue> _prefillValues = [];

    private void MakePrefillBinding(KvCache past, int length)
    {
        ReleasePrefill();
        int d = Spec.Dim;
        if (_prefillEmbeds.Length < length * d)
        {
            _prefillEmbeds = GC.AllocateArray<float>(length * d, pinned: true);
            _prefillLogits = GC.AllocateArray<float>(length * Spec.VocabSize, pinned: true);
            _prefillHidden = GC.AllocateArray<float>(length * d, pinned: true);
            _prefillPositions = GC.AllocateArray<long>(length, pinned: true);
        }
        for (int i = 0; i < length; i++) _prefillPositions[i] = past.Length + i;
        OrtValue Over<T>(T[] array, long[] shape) where T : unmanaged
        {
            var v = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, array.AsMemory(0, (int)shape.Aggregate(1L, (a, b) => a * b)), shape);
            _prefillValues.Add(v);
            return v;
        }
        var binding = _decoder.CreateIoBinding();
        binding.BindInput("inputs_embeds", Over(_prefillEmbeds, [1, length, d]));
        binding.BindInput("attention_mask", _stepBuffers.Mask(past.Length + length));
        binding.BindInput("position_ids", Over(_prefillPositions, [1, length]));
        for (int i = 0; i < _pastNames.Length; i++) binding.BindInput(_pastNames[i], past.Values[i]);
        binding.BindOutput("logits", Over(_prefillLogits, [1, length, Spec.VocabSize]));
        binding.BindOutput("last_hidden_state", Over(_prefillHidden, [1, length, d]));
        for (int i = 0; i < _presentNames.Length; i++) binding.BindOutput(_presentNames[i], _stepBuffers.View(i, past.Length + length));
        _prefillBinding = binding;
        _prefillPast = past;
        _prefillLength = length;
    }

    private void ReleasePrefill()
    {
        _prefillBinding?.Dispose();
        _prefillBinding = null;
        _prefillPast = null;
        foreach (var v in _prefillValues) v.Dispose();
        _prefillValues.Clear();
    }

    internal void Step(DecodeSequence sequence, int token)
    {
        if (sequence.Ticket != _sequenceTicket) throw new InvalidOperationException("this decode sequence was ended by a newer one on the same model");
        int length = sequence.Length;
        if (length >= sequence.Limit) throw new InvalidOperationException($"the decode sequence is full ({sequence.Limit} positions)");
        EmbedOne(token);
        _onePosition[0] = length;
        RunDecoder(length == sequence.Start && sequence.First is { } first ? first : StepBinding(length));
        Runs++;
        PositionsProcessed++;
        LastRunLength = 1;
    }

    // The lambda lives in its own method: a captured parameter makes C# allocate the closure on entry to the
    // method that declares it, which would cost every step 32 bytes.
    private OrtIoBinding StepBinding(int length) => _stepBindings[length] ?? MakeStepBinding(length);

    private OrtIoBinding MakeStepBinding(int length)
    {
        var binding = _decoder.CreateIoBinding();
        BindStep(binding, length, past: i => _stepBuffers.View(i, length));
        return _stepBindings[length] = binding;
    }

    private void BindStep(OrtIoBinding binding, int length, Func<int, OrtValue> past)
    {
        binding.BindInput("inputs_embeds", _oneEmbedValue);
        binding.BindInput("attention_mask", _stepBuffers.Mask(length + 1));
        binding.BindInput("position_ids", _onePositionValue);
        for (int i = 0; i < _pastNames.Length; i++) binding.BindInput(_pastNames[i], past(i));
        binding.BindOutput("logits", _stepLogitsValue);
        binding.BindOutput("last_hidden_state", _stepHiddenValue);
        for (int i = 0; i < _presentNames.Length; i++) binding.BindOutput(_presentNames[i], _stepBuffers.View(i, length + 1));
    }

    private void EnsureStepCapacity(int positions)
    {
        if (!_stepBuffers.Ensure(positions)) return;
        ReleaseStepBindings();
        _stepBindings = new OrtIoBinding?[_stepBuffers.Capacity + 1];
        _sequenceTicket++;  // sequences bound to the old buffers are over
    }

    private void ReleaseStepBindings()
    {
        ReleasePrefill();  // bound to the step buffers' tensors
        foreach (var b in _stepBindings) b?.Dispose();
        _stepBindings = [];
    }

    public void Dispose()
    {
        _oneIdValue.Dispose();
        _oneEmbedValue.Dispose();
        _onePositionValue.Dispose();
        ReleaseStepBindings();
        _stepBuffers.Dispose();
        _stepLogitsValue.Dispose();
        _stepHiddenValue.Dispose();
        _embedBinding.Dispose();
        foreach (var c in _compressors.Values) c.Dispose();
        _binding.Dispose();
        _run.Dispose();
        _decoder.Dispose();
        _embed.Dispose();
    }
}

/// <summary>
/// One sequence being decoded a token at a time on a <see cref="LanguageModel"/> (from
/// <see cref="LanguageModel.BeginDecode"/>). Its keys/values live in the model's step buffers, so it is
/// valid until the model begins another sequence or is disposed. Disposing it frees the first step's binding, if it has one.
/// </summary>
public sealed class DecodeSequence : IDisposable
{
    private readonly LanguageModel _model;

    internal DecodeSequence(LanguageModel model, OrtIoBinding? first, int start, int limit, int ticket)
    {
        _model = model;
        First = first;
        Start = Length = start;
        Limit = limit;
        Ticket = ticket;
    }

    /// <summary>The first step's binding when the sequence starts from a caller's cache; null when it starts in the step buffers.</summary>
    internal OrtIoBinding? First { get; }
    internal int Start { get; }
    internal int Limit { get; }
    internal int Ticket { get; }

    /// <summary>Positions held: the prefix's plus one per step.</summary>
    public int Length { get; private set; }

    /// <summary>Feeds <paramref name="token"/> at the next position; its logits land in <see cref="LanguageModel.LastLogits"/>.</summary>
    public void Append(int token)
    {
        _model.Step(this, token);
        Length++;
    }

    public void Dispose() => First?.Dispose();
}
