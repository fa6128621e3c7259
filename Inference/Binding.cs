using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// An ONNX Runtime I/O binding whose inputs stay true to their buffers on every provider. ONNX Runtime copies an
/// input that is not in the provider's memory at the moment it is bound (IOBinding::BindInput copies it across
/// devices), not when the session runs. On the CPU the bound tensor is the caller's buffer itself, so a binding made
/// once sees every later write to that buffer; on CUDA or DirectML it would feed, run after run, the values the
/// buffer held when it was bound (the first GPU run answered from all-zero pixels). So where the provider copies,
/// every input is bound again just before each run: a host buffer is copied anew, and an input already in the
/// device's memory (a KV cache there) is taken as it is. On the CPU nothing is redone and nothing is allocated.
/// Lifetime: owns the native binding; the bound values stay their owners'.
/// </summary>
internal sealed class Binding : IDisposable
{
    private readonly OrtIoBinding _native;
    private readonly List<(string Name, OrtValue Value)>? _inputs;  // null where bound inputs are not copied (the CPU)

    /// <param name="session">The session the binding runs.</param>
    /// <param name="copiesInputs">Whether the session's provider copies host inputs when they are bound
    /// (<see cref="ProviderSettings.CopiesInputsAtBind"/>).</param>
    public Binding(InferenceSession session, bool copiesInputs)
    {
        _native = session.CreateIoBinding();
        _inputs = copiesInputs ? [] : null;
    }

    /// <summary>Whether inputs are bound again before each run.</summary>
    public bool RebindsInputs => _inputs is not null;

    public void BindInput(string name, OrtValue value)
    {
        _native.BindInput(name, value);
        if (_inputs is null) return;
        int i = _inputs.FindIndex(x => x.Name == name);
        if (i >= 0) _inputs[i] = (name, value);
        else _inputs.Add((name, value));
    }

    public void BindOutput(string name, OrtValue value) => _native.BindOutput(name, value);

    public void BindOutputToDevice(string name, OrtMemoryInfo memory) => _native.BindOutputToDevice(name, memory);

    public void ClearBoundInputs()
    {
        _native.ClearBoundInputs();
        _inputs?.Clear();
    }

    public void ClearBoundOutputs() => _native.ClearBoundOutputs();

    /// <summary>The outputs of the last run (ONNX Runtime's own allocations among them); the caller disposes them.</summary>
    public IDisposableReadOnlyCollection<OrtValue> GetOutputValues() => _native.GetOutputValues();

    /// <summary>The native binding, its inputs bound again first where the provider copies them; only <see cref="OrtCall"/> runs it.</summary>
    internal OrtIoBinding ForRun()
    {
        if (_inputs is not null)
            foreach (var (name, value) in _inputs) _native.BindInput(name, value);
        return _native;
    }

    public void Dispose() => _native.Dispose();
}
