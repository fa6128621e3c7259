using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// One compressor graph at one V: features (1, P, Dv), features_multi (1, P, Dm) and, when query-aware,
/// query_embedding (1, D) -> visual_tokens (1, V, D). Shared by every user of the set; the output buffer and
/// bindings of a run belong to a <see cref="CompressorState"/> from <see cref="Lease"/>. Its session is opened
/// when it is first leased (or by <see cref="SharedGraph.Open"/>): a set lists a graph per kind and V, and a
/// process usually runs one or two of them.
/// </summary>
public sealed class Compressor : SharedGraph
{
    internal Compressor(Func<InferenceSession> open, CompressorSpec spec, GraphSpec graph, int tokens, int dim, bool copiesInputs)
        : base(open, copiesInputs)
    {
        Spec = spec;
        Graph = graph;
        Tokens = tokens;
        Dim = dim;
    }

    /// <summary>The manifest's entry for this compressor kind.</summary>
    public CompressorSpec Spec { get; }

    /// <summary>The graph of this V.</summary>
    public GraphSpec Graph { get; }

    /// <summary>V: visual tokens produced.</summary>
    public int Tokens { get; }

    /// <summary>D: the decoder width the tokens are projected into.</summary>
    public int Dim { get; }

    /// <summary>An output buffer and binding of this caller's own; valid until disposed (before this compressor is).</summary>
    public CompressorState Lease() => new(this, Session, NewBinding());
}

/// <summary>
/// One caller's run state of a <see cref="Compressor"/>: <see cref="VisualTokens"/> is overwritten by this state's
/// next <see cref="Compress"/> only. One thread at a time.
/// </summary>
public sealed class CompressorState : IDisposable
{
    private readonly Compressor _compressor;
    private readonly InferenceSession _session;
    private readonly OrtValue _outValue;
    private readonly Binding _binding;
    // The arrays the binding's inputs are made over; a call with other arrays binds again (a new query's embedding).
    private float[]? _boundFeatures, _boundMulti, _boundQuery;
    private readonly List<OrtValue> _inputs = [];
    private readonly RunOptions _run = new();

    internal CompressorState(Compressor compressor, InferenceSession session, Binding binding)
    {
        _compressor = compressor;
        _session = session;
        VisualTokens = new float[compressor.Tokens * compressor.Dim];
        _outValue = OrtValue.CreateTensorValueFromMemory(VisualTokens, [1, compressor.Tokens, compressor.Dim]);
        _binding = binding;
        _binding.BindOutput("visual_tokens", _outValue);
    }

    /// <summary>The compressor this state runs.</summary>
    public Compressor Compressor => _compressor;

    /// <summary>(V, D) row-major, valid until this state's next <see cref="Compress"/>.</summary>
    public float[] VisualTokens { get; }

    /// <summary>Stopwatch ticks this state spent inside ONNX Runtime's Run.</summary>
    public long RunTicks { get; private set; }

    /// <summary>
    /// Runs the graph. Inputs are bound over the arrays themselves, kept pinned until arrays other than the
    /// last call's arrive (a vision state's buffers are the same every frame; a query brings a new embedding),
    /// so the arrays must stay unchanged in size while this state may still run on them.
    /// </summary>
    public void Compress(float[] features, float[] featuresMulti, int patches, float[] queryEmbedding)
    {
        var c = _compressor;
        if (c.Spec.QueryAware && queryEmbedding.Length != c.Dim)
            throw new InferenceException($"query embedding has {queryEmbedding.Length} values, {c.Graph.File} expects {c.Dim}");
        if (!ReferenceEquals(features, _boundFeatures) || !ReferenceEquals(featuresMulti, _boundMulti)
            || (c.Spec.QueryAware && !ReferenceEquals(queryEmbedding, _boundQuery)))
            Bind(features, featuresMulti, patches, queryEmbedding);
        long ticks = OrtCall.Run(_session, _run, _binding, c.Graph.File);
        RunTicks += ticks;
        c.AddRunTicks(ticks);
    }

    private void Bind(float[] features, float[] featuresMulti, int patches, float[] queryEmbedding)
    {
        _binding.ClearBoundInputs();
        foreach (var v in _inputs) v.Dispose();
        _inputs.Clear();
        _boundFeatures = _boundMulti = _boundQuery = null;
        _inputs.Add(OrtValue.CreateTensorValueFromMemory(features, [1, patches, features.Length / patches]));
        _binding.BindInput("features", _inputs[0]);
        if (featuresMulti.Length > 0)  // an imported set's graphs take no multi-layer features
        {
            _inputs.Add(OrtValue.CreateTensorValueFromMemory(featuresMulti, [1, patches, featuresMulti.Length / patches]));
            _binding.BindInput("features_multi", _inputs[^1]);
        }
        if (_compressor.Spec.QueryAware)
        {
            _inputs.Add(OrtValue.CreateTensorValueFromMemory(queryEmbedding, [1, _compressor.Dim]));
            _binding.BindInput("query_embedding", _inputs[^1]);
        }
        (_boundFeatures, _boundMulti, _boundQuery) = (features, featuresMulti, queryEmbedding);
    }

    /// <summary>Frees the binding and the tensors over the caller's arrays.</summary>
    public void Dispose()
    {
        _binding.Dispose();
        foreach (var v in _inputs) v.Dispose();
        _outValue.Dispose();
        _run.Dispose();
    }
}
