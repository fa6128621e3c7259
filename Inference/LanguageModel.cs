using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// A decoder and its token embeddings (the embedding graph, or its table mapped from the set's file), with the
/// compressors trained for it.
/// Holds only what every user shares: the sessions (ONNX Runtime lets several threads run one session), the
/// spec and the compressors. Everything a run writes (logits, step buffers, bindings) belongs to a
/// <see cref="DecoderState"/> from <see cref="Lease"/>, so two users of one model cannot disturb each other.
/// </summary>
public sealed class LanguageModel : IDisposable
{
    private readonly Dictionary<(string Kind, int Tokens), Compressor> _compressors;
    private long _runTicks;

    internal LanguageModel(DecoderSpec spec, InferenceSession decoder, InferenceSession? embed, EmbeddingTable? table, OrtMemoryInfo kvMemory,
        Dictionary<(string, int), Compressor> compressors, bool copiesInputs)
    {
        if ((embed is null) == (table is null)) throw new ArgumentException("a language model embeds through its graph or its table, one of the two");
        CopiesInputs = copiesInputs;
        Spec = spec;
        DecoderSession = decoder;
        EmbedSession = embed;
        EmbedTable = table;
        KvMemory = kvMemory;
        _compressors = compressors;
    }

    /// <summary>What the manifest says of this decoder.</summary>
    public DecoderSpec Spec { get; }

    internal InferenceSession DecoderSession { get; }
    /// <summary>The embedding graph's session; null when <see cref="EmbedTable"/> is read instead.</summary>
    internal InferenceSession? EmbedSession { get; }

    /// <summary>The mapped embedding table; null when the embedding graph runs.</summary>
    internal EmbeddingTable? EmbedTable { get; }

    /// <summary>Whether the sessions' provider copies host inputs when they are bound (see <see cref="Binding"/>).</summary>
    internal bool CopiesInputs { get; }

    /// <summary>Where the keys and values live: host memory, or the CUDA device's.</summary>
    internal OrtMemoryInfo KvMemory { get; }

    /// <summary>Compressors available for this decoder, ordered by kind then V.</summary>
    public IEnumerable<Compressor> Compressors => _compressors.Values.OrderBy(c => c.Spec.Kind).ThenBy(c => c.Tokens);

    /// <summary>The compressor of <paramref name="kind"/> at V = <paramref name="tokens"/>; a clear error naming what there is otherwise.</summary>
    public Compressor Compressor(string kind, int tokens)
    {
        if (_compressors.TryGetValue((kind, tokens), out var c)) return c;
        var kinds = _compressors.Keys.Select(k => k.Kind).Distinct().ToArray();
        if (!kinds.Contains(kind))
            throw new InferenceException($"decoder {Spec.Name} has no compressor '{kind}' (it has: {string.Join(", ", kinds)})");
        var offered = _compressors.Keys.Where(k => k.Kind == kind).Select(k => k.Tokens).Order();
        throw new InferenceException($"--tokens {tokens} is not offered by {kind} for {Spec.Name}: choose one of {string.Join(", ", offered)}");
    }

    /// <summary>Stopwatch ticks spent inside ONNX Runtime's Run for the decoder, embedding and compressor graphs, over their life, summed over every lease.</summary>
    public long RunTicks => Interlocked.Read(ref _runTicks) + _compressors.Values.Sum(c => c.RunTicks);

    /// <summary>
    /// A run state of this caller's own (logits, hidden state, step buffers, bindings). Valid until it is
    /// disposed, which must happen before this model is; the caches and sequences it makes say their own lifetimes.
    /// </summary>
    public DecoderState Lease() => new(this);

    internal void AddRunTicks(long ticks) => Interlocked.Add(ref _runTicks, ticks);

    /// <summary>Frees the sessions and the compressors; leases must be disposed first.</summary>
    public void Dispose()
    {
        foreach (var c in _compressors.Values) c.Dispose();
        DecoderSession.Dispose();
        EmbedSession?.Dispose();
        EmbedTable?.Dispose();
    }
}
