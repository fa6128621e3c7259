using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// The one place a Run's native failure becomes an <see cref="InferenceException"/>; returns the Stopwatch
/// ticks the bare <c>Run</c> took, so components can report their pure ONNX Runtime time (the engine
/// overhead benchmark divides the loop's time by it).
/// </summary>
internal static class OrtCall
{
    /// <summary>Runs a graph whose inputs and outputs are bound already: on the CPU nothing is looked up or allocated per call.</summary>
    public static long Run(InferenceSession session, RunOptions run, Binding binding, string file)
    {
        try
        {
            var native = binding.ForRun();  // inputs bound again first where the provider copies them (Binding)
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            session.RunWithBinding(run, native);
            return System.Diagnostics.Stopwatch.GetTimestamp() - start;
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException($"{file} failed: {SessionFactory.FirstLine(e.Message)}", exitCode: 1, inner: e);
        }
    }

    /// <summary>Runs a graph on tensors made for this call, writing into <paramref name="outputs"/>.</summary>
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
