using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// One state's token embeddings: ids -> (T, D) embeddings, from the model's mapped table where it has one
/// (<see cref="EmbeddingTable"/>), else by runs of the embedding graph. A single id (every decode step) lands in
/// <see cref="One"/>, which the decode step binds as its input directly; with the graph, through a binding made once.
/// Owned by one <see cref="DecoderState"/>.
/// </summary>
internal sealed class TokenEmbedder : IDisposable
{
    private static readonly string[] InputNames = [DecoderContract.InputIds], OutputNames = [DecoderContract.InputsEmbeds];
    private readonly LanguageModel _model;
    private readonly RunOptions _run = new();
    private readonly long[] _oneId = new long[1];
    private readonly OrtValue _oneIdValue;
    private readonly Binding? _oneBinding;  // null when the model reads a mapped table
    private long[] _ids = new long[64];

    public TokenEmbedder(LanguageModel model)
    {
        _model = model;
        One = GC.AllocateArray<float>(model.Spec.Dim, pinned: true);  // pinned: the step binding reads it in place
        _oneIdValue = OrtValue.CreateTensorValueFromMemory(_oneId, [1, 1]);
        OneValue = OrtValue.CreateTensorValueFromMemory(One, [1, 1, model.Spec.Dim]);
        if (model.EmbedSession is { } session)
        {
            _oneBinding = new Binding(session, model.CopiesInputs);
            _oneBinding.BindInput(InputNames[0], _oneIdValue);
            _oneBinding.BindOutput(OutputNames[0], OneValue);
        }
    }

    /// <summary>The last single id's embedding (D floats); valid until the next <see cref="EmbedOne"/>.</summary>
    public float[] One { get; }

    /// <summary><see cref="One"/> as a (1, 1, D) tensor, for binding.</summary>
    public OrtValue OneValue { get; }

    /// <summary>Ticks inside ONNX Runtime's Run.</summary>
    public long RunTicks { get; private set; }

    /// <summary>Embeds one id into <see cref="One"/>; no allocation.</summary>
    public void EmbedOne(int id)
    {
        if (_model.EmbedTable is { } table)
        {
            table.Row(id, One);
            return;
        }
        _oneId[0] = id;
        Count(OrtCall.Run(_model.EmbedSession!, _run, _oneBinding!, _model.Spec.Embed.File));
    }

    /// <summary>Embeds token ids into <paramref name="destination"/> (ids.Length x D floats).</summary>
    public void Embed(ReadOnlySpan<int> ids, Span<float> destination)
    {
        int t = ids.Length, d = _model.Spec.Dim;
        PromptRuns++;
        if (destination.Length < t * d)
            throw new ArgumentException($"destination holds {destination.Length} floats, {t * d} needed", nameof(destination));
        if (t == 1)
        {
            EmbedOne(ids[0]);
            One.CopyTo(destination);
            return;
        }
        if (_model.EmbedTable is { } table)
        {
            for (int i = 0; i < t; i++) table.Row(ids[i], destination.Slice(i * d, d));
            return;
        }
        if (_ids.Length < t) _ids = new long[Math.Max(t, 2 * _ids.Length)];
        for (int i = 0; i < t; i++) _ids[i] = ids[i];
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _ids.AsMemory(0, t), [1, t]);
        using var output = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [1, t, d]);
        Count(OrtCall.Run(_model.EmbedSession!, _run, InputNames, [input], OutputNames, [output], _model.Spec.Embed.File));
        output.GetTensorDataAsSpan<float>().CopyTo(destination);
    }

    /// <summary>Calls of <see cref="Embed"/>: prompt text embedded, not decode steps (a test counts an answer restart's).</summary>
    public long PromptRuns { get; private set; }

    private void Count(long ticks)
    {
        RunTicks += ticks;
        _model.AddRunTicks(ticks);
    }

    public void Dispose()
    {
        _oneBinding?.Dispose();
        _oneIdValue.Dispose();
        OneValue.Dispose();
        _run.Dispose();
    }
}
