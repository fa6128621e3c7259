using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// What a graph shares with every user of its set: the session (ONNX Runtime lets several threads run one
/// session, each with bindings of its own) and the Run time summed over every lease's runs. A graph's mutable
/// state lives in the state objects its subclass leases out. Owns the session.
/// </summary>
public abstract class SharedGraph(InferenceSession session, bool copiesInputs) : IDisposable
{
    private long _runTicks;

    internal InferenceSession Session { get; } = session;

    /// <summary>A new binding on this graph's session (see <see cref="Binding"/> for why the provider matters).</summary>
    internal Binding NewBinding() => new(Session, copiesInputs);

    /// <summary>Stopwatch ticks spent inside ONNX Runtime's Run for this graph, over its life, summed over every lease.</summary>
    public long RunTicks => Interlocked.Read(ref _runTicks);

    internal void AddRunTicks(long ticks) => Interlocked.Add(ref _runTicks, ticks);

    /// <summary>Frees the session; leases must be disposed first.</summary>
    public void Dispose() => Session.Dispose();
}
