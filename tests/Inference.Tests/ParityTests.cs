using Assistant.Tests;

namespace Assistant.Inference.Tests;

/// <summary>Parity on the random-weight set.</summary>
public sealed class TinyParityTests(DefaultSet set) : ParityTests(set), IClassFixture<DefaultSet>;

/// <summary>Parity on the trained default set (whose decoders have QueCC only).</summary>
public sealed class TrainedParityTests(TrainedSet set) : ParityTests(set), IClassFixture<TrainedSet>;

/// <summary>The trained set through the GPU providers' binding path (inputs bound again before every run).</summary>
public sealed class ReboundParityTests(ReboundTrainedSet set) : ParityTests(set), IClassFixture<ReboundTrainedSet>;

/// <summary>Each exported graph, run by ONNX Runtime from C#, against PyTorch's outputs in golden.json.</summary>
public abstract class ParityTests(LoadedSet set)
{
    private const float Tolerance = 1e-4f;
    private readonly Golden _golden = set.Golden;

    [Fact]
    public void VisionEncoder_MatchesPyTorch()
    {
        using var vision = set.Models.Vision.Lease();
        _golden.PixelValues.CopyTo(vision.PixelBuffer);
        vision.Encode();
        Assert.True(Golden.MaxAbsDiff(vision.Features, _golden.Features) < Tolerance);
        Assert.True(Golden.MaxAbsDiff(vision.FeaturesMulti, _golden.FeaturesMulti) < Tolerance);
    }

    [Fact]
    public void VisionEncoder_EachEncodeReadsThePixelsWrittenSinceTheLast()
    {
        // A binding kept across runs must see its buffer's new values: on CUDA a host input copied once when bound
        // fed the first values forever (the first GPU run answered from the zeros the buffer held at binding).
        using var vision = set.Models.Vision.Lease();
        vision.PixelBuffer.Clear();
        vision.Encode();
        var fromZeros = vision.Features.ToArray();
        _golden.PixelValues.CopyTo(vision.PixelBuffer);
        vision.Encode();
        Assert.True(Golden.MaxAbsDiff(vision.Features, _golden.Features) < Tolerance);
        Assert.True(Golden.MaxAbsDiff(fromZeros, _golden.Features) > 100 * Tolerance);
    }

    [Fact]
    public void Tokenizer_EncodesTheGoldenQueryAsPythonDid()
    {
        var g = _golden.Decoder(set.Decoder.Spec.Name);
        var tok = set.Models.Tokenizer;
        int[] ids = [tok.SpecialId("<|im_start|>"), .. tok.Encode(_golden.Query)];
        Assert.Equal(Golden.Ints(g.GetProperty("query_ids")), ids);
    }

    [Fact]
    public void QueryPrefill_LastHiddenStateMatchesPyTorch()
    {
        using var lm = set.Decoder.Lease();
        var g = _golden.Decoder(lm.Spec.Name);
        var ids = Golden.Ints(g.GetProperty("query_ids"));
        var embeds = new float[ids.Length * lm.Spec.Dim];
        lm.Embed(ids, embeds);
        using var empty = lm.EmptyCache();
        using var cache = lm.Forward(empty, embeds, ids.Length);
        Assert.Equal(ids.Length, cache.Length);
        Assert.True(Golden.MaxAbsDiff(lm.LastHidden, Golden.Floats(g.GetProperty("query_embedding"))) < Tolerance);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(16)]
    [InlineData(64)]
    public void QueCC_EveryV_MatchesPyTorch(int tokens)
    {
        var lm = set.Decoder;
        var g = _golden.Decoder(lm.Spec.Name);
        using var compressor = lm.Compressor("quecc", tokens).Lease();
        compressor.Compress(_golden.Features, _golden.FeaturesMulti, set.Models.Vision.Spec.Patches, Golden.Floats(g.GetProperty("query_embedding")));
        var expected = Golden.Floats(g.GetProperty("visual_tokens").GetProperty(tokens.ToString()));
        Assert.Equal(tokens * lm.Spec.Dim, expected.Length);
        Assert.True(Golden.MaxAbsDiff(compressor.VisualTokens, expected) < Tolerance);
    }
}

/// <summary>Only the tiny set ships the query-agnostic baseline beside QueCC.</summary>
public sealed class CompressorQueryTests(DefaultSet set) : IClassFixture<DefaultSet>
{
    private readonly Golden _golden = set.Golden;

    [Fact]
    public void QueCC_DependsOnTheQuery_TokenPackerDoesNot()
    {
        var lm = set.Decoder;
        var patches = set.Models.Vision.Spec.Patches;
        var q1 = Enumerable.Range(0, lm.Spec.Dim).Select(i => MathF.Sin(i)).ToArray();
        var q2 = Enumerable.Range(0, lm.Spec.Dim).Select(i => MathF.Cos(i)).ToArray();
        float[] Run(string kind, float[] q)
        {
            using var c = lm.Compressor(kind, 4).Lease();
            c.Compress(_golden.Features, _golden.FeaturesMulti, patches, q);
            return c.VisualTokens.ToArray();
        }
        Assert.True(Golden.MaxAbsDiff(Run("quecc", q1), Run("quecc", q2)) > 1e-3f);
        Assert.Equal(Run("tokenpacker", q1), Run("tokenpacker", q2));
    }
}
