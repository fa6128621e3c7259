using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// What a graph shares with every user of its set: the session (ONNX Runtime lets several threads run one
/// session, each with bindings of its own) and the Run time summed over every lease's runs. A graph's mutable
/// state lives in the state objects its subclass leases out. Owns the session, which is either given open or
/// opened on first use (a compressor the set lists but this process never runs costs no memory); a failed
/// open throws the same <see cref="InferenceException"/> to every later use.
/// </summary>
public abstract class SharedGraph : IDisposable
{
    private readonly Lazy<InferenceSession> _session;
    private readonly bool _copiesInputs;
    private long _runTicks;

    /// <summary>A graph whose session is already open.</summary>
    protected SharedGraph(InferenceSession session, bool copiesInputs)
    {
        _session = new(session);
        _copiesInputs = copiesInputs;
    }

    /// <summary>A graph opened by <paramref name="open"/> when it is first used, once, whichever thread gets there first.</summary>
    protected SharedGraph(Func<InferenceSession> open, bool copiesInputs)
    {
        _session = new(open, LazyThreadSafetyMode.ExecutionAndPublication);
        _copiesInputs = copiesInputs;
    }

    internal InferenceSession Session => _session.Value;

    /// <summary>Whether the session has been opened (a lazily opened graph before its first use has not).</summary>
    public bool IsOpen => _session.IsValueCreated;

    /// <summary>Opens the session now if it is not open yet (to validate it, or to take the cost before a frame does).</summary>
    public void Open() => _ = _session.Value;

    /// <summary>A new binding on this graph's session (see <see cref="Binding"/> for why the provider matters).</summary>
    internal Binding NewBinding() => new(Session, _copiesInputs);

    /// <summary>Stopwatch ticks spent inside ONNX Runtime's Run for this graph, over its life, summed over every lease.</summary>
    public long RunTicks => Interlocked.Read(ref _runTicks);

    internal void AddRunTicks(long ticks) => Interlocked.Add(ref _runTicks, ticks);

    /// <summary>Frees the session if it was opened; leases must be disposed first.</summary>
    public void Dispose()
    {
        if (_session.IsValueCreated) _session.Value.Dispose();
    }
}
