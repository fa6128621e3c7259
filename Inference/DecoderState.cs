using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// One caller's run state of a <see cref="LanguageModel"/> (from <see cref="LanguageModel.Lease"/>): the
/// logits and hidden state of its last run, its embedding runs, its step buffers and the bindings over them.
/// Another lease of the same model shares the sessions and nothing else. One thread at a time.
/// <see cref="LastLogits"/> and <see cref="LastHidden"/> are overwritten by this state's next run.
/// </summary>
public sealed class DecoderState : IDisposable
{
    private readonly LanguageModel _model;
    private readonly InferenceSession _decoder;
    private readonly Binding _binding;
    private readonly RunOptions _run = new();
    private readonly string[] _pastNames, _presentNames;
    private readonly TokenEmbedder _embedder;
    private long[] _mask = new long[256];
    private long[] _positions = new long[64];
    private readonly long[] _onePosition = new long[1];
    private readonly OrtValue _onePositionValue;
    private readonly OrtValue _stepLogitsValue, _stepHiddenValue;

    internal DecoderState(LanguageModel model)
    {
        _model = model;
        var spec = model.Spec;
        _decoder = model.DecoderSession;
        _binding = NewBinding();
        _pastNames = DecoderContract.PastNames(spec.Layers);
        _presentNames = DecoderContract.PresentNames(spec.Layers);
        _embedder = new TokenEmbedder(model);
        // Pinned for the state's life: decode steps bind them as the graph's outputs, so ONNX Runtime writes
        // the logits and hidden state straight into them.
        LastLogits = GC.AllocateArray<float>(spec.VocabSize, pinned: true);
        LastHidden = GC.AllocateArray<float>(spec.Dim, pinned: true);
        _onePositionValue = OrtValue.CreateTensorValueFromMemory(_onePosition, [1, 1]);
        _stepLogitsValue = OrtValue.CreateTensorValueFromMemory(LastLogits, [1, 1, spec.VocabSize]);
        _stepHiddenValue = OrtValue.CreateTensorValueFromMemory(LastHidden, [1, 1, spec.Dim]);
        var kv = model.KvMemory;
        bool host = kv.Equals(OrtMemoryInfo.DefaultInstance);
        // In place where the graph allows it and the cache is in host memory (a prefix is copied in by the CPU);
        // elsewhere the same graph runs with past and present apart, as a concatenating graph does.
        InPlace = spec.KvInPlace && host;
        _stepBuffers = new StepBuffers(kv, host ? null : new OrtAllocator(_decoder, kv),
            _presentNames.Length, spec.KvHeads, spec.HeadDim, InPlace);
    }

    /// <summary>
    /// Whether decode steps and frame prefills write their keys and values in place into one buffer per layer (the
    /// graph's GroupQueryAttention shares past and present; manifest <c>kv_cache: in_place</c>) rather than copying
    /// the whole cache into a new one every step.
    /// </summary>
    public bool InPlace { get; }

    /// <summary>Positions of a prefix copied into the in-place buffers, summed (a test counts a reused prefix's copies).</summary>
    public long PrefixPositionsCopied { get; private set; }

    /// <summary>The model this state runs.</summary>
    public LanguageModel Model => _model;

    /// <summary>The model's spec.</summary>
    public DecoderSpec Spec => _model.Spec;

    /// <summary>Decoder runs of this state (the KV-cache test counts them).</summary>
    public int Runs { get; private set; }

    /// <summary>New positions fed to the decoder by this state, summed over runs.</summary>
    public long PositionsProcessed { get; private set; }

    /// <summary>Embedding values copied into the prefill's input by <see cref="BeginDecode(KvCache, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, int)"/>, summed (a test counts an answer restart's copies).</summary>
    public long PrefillFloatsWritten { get; private set; }

    /// <summary>Prompt embeddings by this state (<see cref="Embed"/> calls; decode steps not counted).</summary>
    public long PromptEmbedRuns => _embedder.PromptRuns;

    /// <summary>Sequence length of this state's most recent run.</summary>
    public int LastRunLength { get; private set; }

    /// <summary>Logits at the last position of this state's most recent run; valid until its next run.</summary>
    public float[] LastLogits { get; }

    /// <summary>Final-norm hidden state at the last position of this state's most recent run; valid until its next run.</summary>
    public float[] LastHidden { get; }

    /// <summary>Stopwatch ticks this state spent inside ONNX Runtime's Run (decoder and embedding).</summary>
    public long RunTicks => _runTicks + _embedder.RunTicks;

    private long _runTicks;

    /// <summary>An empty cache (length 0) to start a sequence from; the caller owns it.</summary>
    public KvCache EmptyCache()
    {
        var values = new OrtValue[_pastNames.Length];
        for (int i = 0; i < values.Length; i++)
            values[i] = OrtValue.CreateTensorValueFromMemory(Array.Empty<float>(), [1, Spec.KvHeads, 0, Spec.HeadDim]);
        return new KvCache(values, 0);
    }

    /// <summary>Embeds token ids into <paramref name="destination"/> (ids.Length x D floats) through the embed graph.</summary>
    public void Embed(ReadOnlySpan<int> ids, Span<float> destination) => _embedder.Embed(ids, destination);

    /// <summary>
    /// <paramref name="ids"/> alone through the decoder from position 0 (no cache before them, none kept after): the
    /// final hidden state at the last one, a new array (the query embedding <see cref="PromptSpec.QuestionHiddenState"/>,
    /// made once per question). Overwrites <see cref="LastLogits"/> and <see cref="LastHidden"/> like any run.
    /// </summary>
    public float[] HiddenAlone(ReadOnlySpan<int> ids)
    {
        if (ids.IsEmpty) return new float[Spec.Dim];  // as the mean of no tokens: zeros
        var embeddings = new float[ids.Length * Spec.Dim];
        Embed(ids, embeddings);
        using var empty = EmptyCache();
        using (Forward(empty, embeddings, ids.Length)) return LastHidden.ToArray();
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
        _binding.BindInput(DecoderContract.InputsEmbeds, embeds);
        _binding.BindInput(DecoderContract.AttentionMask, mask);
        _binding.BindInput(DecoderContract.PositionIds, positions);
        for (int i = 0; i < _pastNames.Length; i++) _binding.BindInput(_pastNames[i], past.Values[i]);
        // Logits and hidden state come back to the host; the new keys/values stay where the provider keeps them.
        _binding.BindOutputToDevice(DecoderContract.Logits, OrtMemoryInfo.DefaultInstance);
        _binding.BindOutputToDevice(DecoderContract.LastHiddenState, OrtMemoryInfo.DefaultInstance);
        foreach (var name in _presentNames) _binding.BindOutputToDevice(name, _model.KvMemory);

        RunDecoder(_binding);
        var outputs = _binding.GetOutputValues();
        using (var logits = outputs[0])
            logits.GetTensorDataAsSpan<float>().Slice((LogitsRows(length) - 1) * Spec.VocabSize, Spec.VocabSize).CopyTo(LastLogits);
        using (var hidden = outputs[1])
            hidden.GetTensorDataAsSpan<float>().Slice((length - 1) * d, d).CopyTo(LastHidden);
        var present = new OrtValue[_presentNames.Length];
        for (int i = 0; i < present.Length; i++) present[i] = outputs[2 + i];
        Count(length);
        return new KvCache(present, total);
    }

    /// <summary>
    /// Rows of logits a run of <paramref name="length"/> positions gives: one when the graph computes the last
    /// position's only (its spec says logits (batch, 1, vocab): imported sets), else one per position.
    /// </summary>
    private int LogitsRows(int length) => Spec.LastLogitsOnly ? 1 : length;

    private Binding NewBinding() => new(_decoder, _model.CopiesInputs);

    private void RunDecoder(Binding binding)
    {
        long ticks = OrtCall.Run(_decoder, _run, binding, Spec.Decoder.File);
        _runTicks += ticks;
        _model.AddRunTicks(ticks);
    }

    private void Count(int length)
    {
        Runs++;
        PositionsProcessed += length;
        LastRunLength = length;
    }

    // Decode steps run on bindings made once per cache length L over the step buffers (see StepBuffers), kept
    // for every later sequence; they are dropped when the buffers grow.
    private readonly StepBuffers _stepBuffers;
    private Binding?[] _stepBindings = [];  // [L]: the step from a cache of length L
    private int _sequenceTicket;

    /// <summary>
    /// Starts decoding one token at a time after <paramref name="prefix"/> (whose last run, on this state, left
    /// its logits in <see cref="LastLogits"/>). Steps make no managed allocations once every length has been seen.
    /// A state decodes one sequence at a time: beginning another ends this one (its next step throws). The
    /// prefix is read by the first step only and stays the caller's.
    /// </summary>
    public DecodeSequence BeginDecode(KvCache prefix, int maxNewTokens)
    {
        if (maxNewTokens < 0) throw new InferenceException($"max tokens must be >= 0, got {maxNewTokens}");
        EnsureStepCapacity(prefix.Length + maxNewTokens + 1);
        if (InPlace)
        {
            MakeResident(prefix);
            return new DecodeSequence(this, null, prefix.Length, prefix.Length + maxNewTokens, ++_sequenceTicket);
        }
        var first = NewBinding();
        BindStep(first, prefix.Length, past: i => prefix.Values[i]);
        return new DecodeSequence(this, first, prefix.Length, prefix.Length + maxNewTokens, ++_sequenceTicket);
    }

    /// <summary>
    /// Prefills <paramref name="length"/> positions (their embeddings, length x D floats) on top of
    /// <paramref name="past"/> straight into the step buffers, fills <see cref="LastLogits"/> and
    /// <see cref="LastHidden"/>, and starts decoding after them. This is the frame pipeline's visual prefill: the
    /// binding is kept for the next call with the same past and length (the next frame, on the same cached
    /// query), so a frame binds nothing. <paramref name="past"/> is left as it was and must outlive the call.
    /// </summary>
    public DecodeSequence BeginDecode(KvCache past, ReadOnlySpan<float> embeddings, int length, int maxNewTokens)
    {
        int d = Spec.Dim;
        if (length <= 0 || embeddings.Length < length * d)
            throw new ArgumentException($"need {length} x {d} embedding values, got {embeddings.Length}", nameof(embeddings));
        return BeginDecode(past, embeddings[..(length * d)], [], [], maxNewTokens);
    }

    /// <summary>
    /// <see cref="BeginDecode(KvCache, ReadOnlySpan{float}, int, int)"/> over the embeddings of three runs of positions
    /// one after the other (a prompt layout's opening markers, the visual tokens, the markers and text after them), each
    /// copied once, straight into the prefill's input: the visual tokens go from the compressor's output to the decoder's
    /// input in one copy, and constant parts are not embedded again.
    /// </summary>
    public DecodeSequence BeginDecode(KvCache past, ReadOnlySpan<float> first, ReadOnlySpan<float> second, ReadOnlySpan<float> third, int maxNewTokens)
    {
        int d = Spec.Dim, floats = first.Length + second.Length + third.Length, length = floats / d;
        if (length <= 0 || floats % d != 0 || first.Length % d != 0 || second.Length % d != 0)
            throw new ArgumentException($"need whole positions of {d} embedding values, got {first.Length} + {second.Length} + {third.Length}");
        if (maxNewTokens < 0) throw new InferenceException($"max tokens must be >= 0, got {maxNewTokens}");
        int total = past.Length + length;
        EnsureStepCapacity(total + maxNewTokens + 1);
        if (_prefillBinding is null || !ReferenceEquals(past, _prefillPast) || length != _prefillLength) MakePrefillBinding(past, length);
        if (InPlace) MakeResident(past);
        first.CopyTo(_prefillEmbeds);
        second.CopyTo(_prefillEmbeds.AsSpan(first.Length));
        third.CopyTo(_prefillEmbeds.AsSpan(first.Length + second.Length));
        PrefillFloatsWritten += floats;
        RunDecoder(_prefillBinding!);
        _prefillLogits.AsSpan((LogitsRows(length) - 1) * Spec.VocabSize, Spec.VocabSize).CopyTo(LastLogits);
        _prefillHidden.AsSpan((length - 1) * d, d).CopyTo(LastHidden);
        Count(length);
        return new DecodeSequence(this, null, total, total + maxNewTokens, ++_sequenceTicket);
    }

    // The prefill's binding and tensors, for one (past, length) at a time; made again when either changes.
    private Binding? _prefillBinding;
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
            _prefillLogits = GC.AllocateArray<float>(LogitsRows(length) * Spec.VocabSize, pinned: true);
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
        var binding = NewBinding();
        binding.BindInput(DecoderContract.InputsEmbeds, Over(_prefillEmbeds, [1, length, d]));
        binding.BindInput(DecoderContract.AttentionMask, _stepBuffers.Mask(past.Length + length));
        binding.BindInput(DecoderContract.PositionIds, Over(_prefillPositions, [1, length]));
        for (int i = 0; i < _pastNames.Length; i++) binding.BindInput(_pastNames[i], InPlace ? _stepBuffers.View(i, 0) : past.Values[i]);
        binding.BindOutput(DecoderContract.Logits, Over(_prefillLogits, [1, LogitsRows(length), Spec.VocabSize]));
        binding.BindOutput(DecoderContract.LastHiddenState, Over(_prefillHidden, [1, length, d]));
        for (int i = 0; i < _presentNames.Length; i++) binding.BindOutput(_presentNames[i], _stepBuffers.View(i, past.Length + length));
        _prefillBinding = binding;
        _prefillPast = past;
        _prefillLength = length;
    }

    // In place: the cache whose positions 0..Length-1 the step buffers hold. Runs write only past a sequence's
    // start, so a prefix stays resident for every sequence and frame that extends it; growing the buffers loses it.
    private KvCache? _resident;

    private void MakeResident(KvCache prefix)
    {
        if (ReferenceEquals(prefix, _resident)) return;
        _stepBuffers.CopyPrefix(prefix.Values, prefix.Length);
        PrefixPositionsCopied += prefix.Length;
        _resident = prefix;
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
        if (sequence.Ticket != _sequenceTicket) throw new InvalidOperationException("this decode sequence was ended by a newer one on the same state");
        int length = sequence.Length;
        if (length >= sequence.Limit) throw new InvalidOperationException($"the decode sequence is full ({sequence.Limit} positions)");
        _embedder.EmbedOne(token);
        _onePosition[0] = length;
        RunDecoder(length == sequence.Start && sequence.First is { } first ? first : StepBinding(length));
        Count(1);
    }

    // The lambda lives in its own method: a captured parameter makes C# allocate the closure on entry to the
    // method that declares it, which would cost every step 32 bytes.
    private Binding StepBinding(int length) => _stepBindings[length] ?? MakeStepBinding(length);

    private Binding MakeStepBinding(int length)
    {
        var binding = NewBinding();
        BindStep(binding, length, past: i => _stepBuffers.View(i, length));
        return _stepBindings[length] = binding;
    }

    private void BindStep(Binding binding, int length, Func<int, OrtValue> past)
    {
        binding.BindInput(DecoderContract.InputsEmbeds, _embedder.OneValue);
        binding.BindInput(DecoderContract.AttentionMask, _stepBuffers.Mask(length + 1));
        binding.BindInput(DecoderContract.PositionIds, _onePositionValue);
        for (int i = 0; i < _pastNames.Length; i++) binding.BindInput(_pastNames[i], past(i));
        binding.BindOutput(DecoderContract.Logits, _stepLogitsValue);
        binding.BindOutput(DecoderContract.LastHiddenState, _stepHiddenValue);
        for (int i = 0; i < _presentNames.Length; i++) binding.BindOutput(_presentNames[i], _stepBuffers.View(i, length + 1));
    }

    private void EnsureStepCapacity(int positions)
    {
        if (!_stepBuffers.Ensure(positions)) return;
        ReleaseStepBindings();
        _resident = null;
        _stepBindings = new Binding?[_stepBuffers.Capacity + 1];
        _sequenceTicket++;  // sequences bound to the old buffers are over
    }

    private void ReleaseStepBindings()
    {
        ReleasePrefill();  // bound to the step buffers' tensors
        foreach (var b in _stepBindings) b?.Dispose();
        _stepBindings = [];
    }

    /// <summary>Frees the bindings, the step buffers and the tensors over this state's arrays.</summary>
    public void Dispose()
    {
        _onePositionValue.Dispose();
        ReleaseStepBindings();
        _stepBuffers.Dispose();
        _stepLogitsValue.Dispose();
        _stepHiddenValue.Dispose();
        _embedder.Dispose();
        _binding.Dispose();
        _run.Dispose();
    }
}
