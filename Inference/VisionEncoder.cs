using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// The vision graph: normalised pixels (1, 3, S, S) -> features (1, P, Dv) and features_multi (1, P, Dm).
/// Owns its session and output buffers; <see cref="Features"/> and <see cref="FeaturesMulti"/> are
/// overwritten by the next <see cref="Encode"/>.
/// </summary>
public sealed class VisionEncoder : IDisposable
{
    private readonly InferenceSession _session;
    private readonly OrtIoBinding _binding;
    private readonly float[] _pixels;
    private readonly OrtValue _pixelsValue, _featuresValue, _multiValue;
    private readonly RunOptions _run = new();

    internal VisionEncoder(InferenceSession session, VisionSpec spec)
    {
        _session = session;
        Spec = spec;
        int s = spec.ImageSize, p = spec.Patches;
        _pixels = new float[3 * s * s];
        Features = new float[p * spec.Dim];
        FeaturesMulti = new float[p * spec.MultiDim];
        _pixelsValue = OrtValue.CreateTensorValueFromMemory(_pixels, [1, 3, s, s]);
        _featuresValue = OrtValue.CreateTensorValueFromMemory(Features, [1, p, spec.Dim]);
        _multiValue = OrtValue.CreateTensorValueFromMemory(FeaturesMulti, [1, p, spec.MultiDim]);
        _binding = session.CreateIoBinding();
        _binding.BindInput("pixel_values", _pixelsValue);
        _binding.BindOutput("features", _featuresValue);
        _binding.BindOutput("features_multi", _multiValue);
    }

    public VisionSpec Spec { get; }

    /// <summary>Where the caller writes normalised CHW pixels before <see cref="Encode"/>.</summary>
    public Span<float> PixelBuffer => _pixels;

    /// <summary>(P, Dv) row-major, valid until the next Encode.</summary>
    public float[] Features { get; }

    /// <summary>(P, Dm) row-major, valid until the next Encode.</summary>
    public float[] FeaturesMulti { get; }

    /// <summary>Runs the graph on <see cref="PixelBuffer"/>, writing into the feature buffers (no allocation of tensors).</summary>
    public void Encode() => RunTicks += OrtCall.Run(_session, _run, _binding, Spec.File);

    /// <summary>Stopwatch ticks spent inside ONNX Runtime's Run for this graph, over its life.</summary>
    public long RunTicks { get; private set; }

    public void Dispose()
    {
        _binding.Dispose();
        _pixelsValue.Dispose();
        _featuresValue.Dispose();
        _multiValue.Dispose();
        _run.Dispose();
        _session.Dispose();
    }
}

/// <summary>
/// The one place a Run's native failure becomes an <see cref="InferenceException"/>; returns the Stopwatch
/// ticks the bare <c>Run</c> took, so components can report their pure ONNX Runtime time (the engine
/// overhead benchmark divides the loop's time by it).
/// </summary>
internal static class OrtCall
{
    /// <summary>Runs a graph whose inputs and outputs are bound already: nothing is looked up or allocated per call.</summary>
    public static long Run(InferenceSession session, RunOptions run, OrtIoBinding binding, string file)
    {
        try
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            session.RunWithBinding(run, binding);
            return System.Diagnostics.Stopwatch.GetTimestamp() - start;
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException($"{file} failed: {SessionFactory.FirstLine(e.Message)}", exitCode: 1, inner: e);
        }
    }

    public static long Run(InferenceSession session, RunOptions run, string[] inputNames, OrtValue[] inputs,
        string[] outputNames, OrtValue[] outputs, string file)
    {
        try
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            session.Run(run, inputNames, inputs, outputNames, outputs);
            return System.Diagnostics.Stopwatch.GetTimestamp() - start;
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException($"{file} failed: {SessionFactory.FirstLine(e.Message)}", exitCode: 1, inner: e);
        }
    }

    /// <summary>The same, for graphs whose output shapes vary per call: ONNX Runtime allocates the outputs, the caller disposes them.</summary>
    public static IDisposableReadOnlyCollection<OrtValue> Run(InferenceSession session, RunOptions run, string[] inputNames, OrtValue[] inputs,
        string[] outputNames, string file)
    {
        try
        {
            return session.Run(run, inputNames, inputs, outputNames);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException($"{file} failed: {SessionFactory.FirstLine(e.Message)}", exitCode: 1, inner: e);
        }
    }
}
