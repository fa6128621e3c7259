using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// The vision graph: normalised pixels (1, 3, S, S) -> features (1, P, Dv) and features_multi (1, P, Dm).
/// Holds only what every user shares (the session, which ONNX Runtime lets several threads run at once, and
/// the spec); the buffers a run reads and writes belong to a <see cref="VisionState"/> from <see cref="Lease"/>.
/// </summary>
public sealed class VisionEncoder : SharedGraph
{
    internal VisionEncoder(InferenceSession session, VisionSpec spec, bool copiesInputs) : base(session, copiesInputs) => Spec = spec;

    /// <summary>What the manifest says of this graph.</summary>
    public VisionSpec Spec { get; }

    /// <summary>
    /// New pixel and feature buffers of this caller's own, bound to the graph once. The state is valid until it
    /// is disposed or this encoder is; nothing another lease does touches it.
    /// </summary>
    public VisionState Lease() => new(this, Session, NewBinding());
}

/// <summary>
/// One caller's buffers for the vision graph, bound once: the caller writes <see cref="PixelBuffer"/>, calls
/// <see cref="Encode"/>, and reads <see cref="Features"/> and <see cref="FeaturesMulti"/>, which the next Encode
/// of this state overwrites. One thread at a time.
/// </summary>
public sealed class VisionState : IDisposable
{
    private readonly VisionEncoder _encoder;
    private readonly InferenceSession _session;
    private readonly Binding _binding;
    private readonly float[] _pixels;
    private readonly OrtValue _pixelsValue, _featuresValue;
    private readonly OrtValue? _multiValue;
    private readonly RunOptions _run = new();

    internal VisionState(VisionEncoder encoder, InferenceSession session, Binding binding)
    {
        _encoder = encoder;
        _session = session;
        var spec = encoder.Spec;
        int s = spec.ImageSize, p = spec.Patches;
        _pixels = new float[3 * s * s];
        Features = new float[p * spec.Dim];
        FeaturesMulti = new float[p * spec.MultiDim];
        _pixelsValue = OrtValue.CreateTensorValueFromMemory(_pixels, [1, 3, s, s]);
        _featuresValue = OrtValue.CreateTensorValueFromMemory(Features, [1, p, spec.Dim]);
        _binding = binding;
        _binding.BindInput("pixel_values", _pixelsValue);
        _binding.BindOutput("features", _featuresValue);
        if (spec.MultiDim > 0)  // imported sets have no multi-layer features
        {
            _multiValue = OrtValue.CreateTensorValueFromMemory(FeaturesMulti, [1, p, spec.MultiDim]);
            _binding.BindOutput("features_multi", _multiValue);
        }
    }

    /// <summary>The encoder's spec.</summary>
    public VisionSpec Spec => _encoder.Spec;

    /// <summary>Where the caller writes normalised CHW pixels before <see cref="Encode"/>; valid for the state's life.</summary>
    public Span<float> PixelBuffer => _pixels;

    /// <summary>The pixel buffer's array, for the frame kernels' graph to write into.</summary>
    internal float[] PixelArray => _pixels;

    /// <summary>(P, Dv) row-major, valid until this state's next Encode.</summary>
    public float[] Features { get; }

    /// <summary>(P, Dm) row-major, valid until this state's next Encode; empty when the set has no multi-layer features.</summary>
    public float[] FeaturesMulti { get; }

    /// <summary>Stopwatch ticks this state spent inside ONNX Runtime's Run.</summary>
    public long RunTicks { get; private set; }

    /// <summary>Runs the graph on <see cref="PixelBuffer"/>, writing into the feature buffers (no allocation of tensors).</summary>
    public void Encode()
    {
        long ticks = OrtCall.Run(_session, _run, _binding, _encoder.Spec.File);
        RunTicks += ticks;
        _encoder.AddRunTicks(ticks);
    }

    /// <summary>Frees the binding and the tensors over the buffers.</summary>
    public void Dispose()
    {
        _binding.Dispose();
        _pixelsValue.Dispose();
        _featuresValue.Dispose();
        _multiValue?.Dispose();
        _run.Dispose();
    }
}
