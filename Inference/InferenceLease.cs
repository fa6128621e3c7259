namespace Assistant.Inference;

/// <summary>
/// One user's mutable inference state over a shared <see cref="ModelSet"/>: its vision buffers, and a decoder
/// and compressor state per component it runs (made on first use). The set's sessions are shared; nothing a
/// lease writes is seen by another lease, so a calibration, an evaluation or a second pipeline can run beside
/// a live one. Lifetime: from <see cref="ModelSet.Lease"/> until <see cref="Dispose"/>, which must come before
/// the set's; every buffer it hands out is valid until then (or until the state's next run, as each says).
/// One thread at a time.
/// </summary>
public sealed class InferenceLease : IDisposable
{
    private readonly Dictionary<LanguageModel, DecoderState> _decoders = [];
    private readonly Dictionary<Compressor, CompressorState> _compressors = [];
    private bool _disposed;

    internal InferenceLease(ModelSet set)
    {
        Set = set;
        Vision = set.Vision.Lease();
    }

    /// <summary>The set this lease runs.</summary>
    public ModelSet Set { get; }

    /// <summary>This lease's vision buffers.</summary>
    public VisionState Vision { get; }

    /// <summary>This lease's state of <paramref name="model"/> (one of the set's decoders).</summary>
    public DecoderState Decoder(LanguageModel model)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_decoders.TryGetValue(model, out var state)) _decoders[model] = state = model.Lease();
        return state;
    }

    /// <summary>This lease's state of <paramref name="compressor"/>.</summary>
    public CompressorState Compressor(Compressor compressor)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_compressors.TryGetValue(compressor, out var state)) _compressors[compressor] = state = compressor.Lease();
        return state;
    }

    /// <summary>Time this lease spent inside ONNX Runtime's Run, over every graph it ran.</summary>
    public TimeSpan RunTime
    {
        get
        {
            long ticks = Vision.RunTicks;  // loops, not LINQ: the live session reads this every frame
            foreach (var d in _decoders.Values) ticks += d.RunTicks;
            foreach (var c in _compressors.Values) ticks += c.RunTicks;
            return System.Diagnostics.Stopwatch.GetElapsedTime(0, ticks);
        }
    }

    /// <summary>Frees every state this lease made.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var c in _compressors.Values) c.Dispose();
        foreach (var d in _decoders.Values) d.Dispose();
        Vision.Dispose();
    }
}
