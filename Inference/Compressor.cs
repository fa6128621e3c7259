using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// One compressor graph at one V: features (1, P, Dv), features_multi (1, P, Dm) and, when query-aware,
/// query_embedding (1, D) -> visual_tokens (1, V, D). <see cref="VisualTokens"/> is overwritten by the next run.
/// </summary>
public sealed class Compressor : IDisposable
{
    private readonly InferenceSession _session;
    private readonly OrtValue _outValue;
    private readonly OrtIoBinding _binding;
    // The arrays the binding's inputs are made over; a call with other arrays binds again (a new query's embedding).
    private float[]? _boundFeatures, _boundMulti, _boundQuery;
    private readonly List<OrtValue> _inputs = [];
    private readonly RunOptions _run = new();

    internal Compressor(InferenceSession session, CompressorSpec spec, GraphSpec graph, int tokens, int dim)
    {
        _session = session;
        Spec = spec;
        Graph = graph;
        Tokens = tokens;
        Dim = dim;
        VisualTokens = new float[tokens * dim];
        _outValue = OrtValue.CreateTensorValueFromMemory(VisualTokens, [1, tokens, dim]);
        _binding = session.CreateIoBinding();
        _binding.BindOutput("visual_tokens", _outValue);
    }

    public CompressorSpec Spec { get; }
    public GraphSpec Graph { get; }

    /// <summary>V: visual tokens produced.</summary>
    public int Tokens { get; }

    /// <summary>D: the decoder width the tokens are projected into.</summary>
    public int Dim { get; }

    /// <summary>(V, D) row-major, valid until the next <see cref="Compress"/>.</summary>
    public float[] VisualTokens { get; }

    /// <summary>
    /// Runs the graph. Inputs are bound over the arrays themselves, kept pinned until arrays other than the
    /// last call's arrive (the vision encoder's buffers are the same every frame; a query brings a new embedding).
    /// </summary>
    public void Compress(float[] features, float[] featuresMulti, int patches, float[] queryEmbedding)
    {
        if (Spec.QueryAware && queryEmbedding.Length != Dim)
            throw new InferenceException($"query embedding has {queryEmbedding.Length} values, {Graph.File} expects {Dim}");
        if (!ReferenceEquals(features, _boundFeatures) || !ReferenceEquals(featuresMulti, _boundMulti)
            || (Spec.QueryAware && !ReferenceEquals(queryEmbedding, _boundQuery)))
            Bind(features, featuresMulti, patches, queryEmbedding);
        RunTicks += OrtCall.Run(_session, _run, _binding, Graph.File);
    }

    private void Bind(float[] features, float[] featuresMulti, int patches, float[] queryEmbedding)
    {
        _binding.ClearBoundInputs();
        foreach (var v in _inputs) v.Dispose();
        _inputs.Clear();
        _boundFeatures = _boundMulti = _boundQuery = null;
        _inputs.Add(OrtValue.CreateTensorValueFromMemory(features, [1, patches, features.Length / patches]));
        _inputs.Add(OrtValue.CreateTensorValueFromMemory(featuresMulti, [1, patches, featuresMulti.Length / patches]));
        _binding.BindInput("features", _inputs[0]);
        _binding.BindInput("features_multi", _inputs[1]);
        if (Spec.QueryAware)
        {
            _inputs.Add(OrtValue.CreateTensorValueFromMemory(queryEmbedding, [1, Dim]));
            _binding.BindInput("query_embedding", _inputs[2]);
        }
        (_boundFeatures, _boundMulti, _boundQuery) = (features, featuresMulti, queryEmbedding);
    }

    /// <summary>Stopwatch ticks spent inside ONNX Runtime's Run for this graph, over its life.</summary>
    public long RunTicks { get; private set; }

    public void Dispose()
    {
        _binding.Dispose();
        foreach (var v in _inputs) v.Dispose();
        _outValue.Dispose();
        _run.Dispose();
        _session.Dispose();
    }
}
