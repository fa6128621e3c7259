using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// One compressor graph at one V: features (1, P, Dv), features_multi (1, P, Dm) and, when query-aware,
/// query_embedding (1, D) -> visual_tokens (1, V, D). <see cref="VisualTokens"/> is overwritten by the next run.
/// </summary>
public sealed class Compressor : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private static readonly string[] OutputNames = ["visual_tokens"];
    private readonly OrtValue _outValue;
    private readonly RunOptions _run = new();

    internal Compressor(InferenceSession session, CompressorSpec spec, GraphSpec graph, int tokens, int dim)
    {
        _session = session;
        Spec = spec;
        Graph = graph;
        Tokens = tokens;
        Dim = dim;
        _inputNames = spec.QueryAware ? ["features", "features_multi", "query_embedding"] : ["features", "features_multi"];
        VisualTokens = new float[tokens * dim];
        _outValue = OrtValue.CreateTensorValueFromMemory(VisualTokens, [1, tokens, dim]);
    }

    public CompressorSpec Spec { get; }
    public GraphSpec Graph { get; }

    /// <summary>V: visual tokens produced.</summary>
    public int Tokens { get; }

    /// <summary>D: the decoder width the tokens are projected into.</summary>
    public int Dim { get; }

    /// <summary>(V, D) row-major, valid until the next <see cref="Compress"/>.</summary>
    public float[] VisualTokens { get; }

    /// <summary>Runs the graph. The arrays are pinned for the call only.</summary>
    public void Compress(float[] features, float[] featuresMulti, int patches, float[] queryEmbedding)
    {
        using var f = OrtValue.CreateTensorValueFromMemory(features, [1, patches, features.Length / patches]);
        using var fm = OrtValue.CreateTensorValueFromMemory(featuresMulti, [1, patches, featuresMulti.Length / patches]);
        if (Spec.QueryAware)
        {
            if (queryEmbedding.Length != Dim)
                throw new InferenceException($"query embedding has {queryEmbedding.Length} values, {Graph.File} expects {Dim}");
            using var q = OrtValue.CreateTensorValueFromMemory(queryEmbedding, [1, Dim]);
            RunTicks += OrtCall.Run(_session, _run, _inputNames, [f, fm, q], OutputNames, [_outValue], Graph.File);
        }
        else
        {
            RunTicks += OrtCall.Run(_session, _run, _inputNames, [f, fm], OutputNames, [_outValue], Graph.File);
        }
    }

    /// <summary>Stopwatch ticks spent inside ONNX Runtime's Run for this graph, over its life.</summary>
    public long RunTicks { get; private set; }

    public void Dispose()
    {
        _outValue.Dispose();
        _run.Dispose();
        _session.Dispose();
    }
}
