using Assistant.Capture;
using Assistant.Inference;
using Assistant.Tests;

namespace Assistant.Engine.Tests;

public sealed class PipelineFixture : IDisposable
{
    public PipelineFixture() => Models = ModelSet.Load(Repo.TinyModels, new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)));
    public ModelSet Models { get; }
    public void Dispose() => Models.Dispose();
}

/// <summary>The whole C# ask path (image file -> preprocess -> ... -> tokens) against PyTorch's reference.</summary>
public sealed class AskPipelineTests(PipelineFixture fixture) : IClassFixture<PipelineFixture>
{
    private readonly Golden _golden = Golden.Tiny;

    private AskConfig GoldenConfig(int maxNew, out string decoder)
    {
        decoder = fixture.Models.Manifest.Default.Decoder;
        int tokens = _golden.Decoder(decoder).GetProperty("tokens").GetInt32();
        return new AskConfig(decoder, "quecc", tokens, new AnswerOptions(maxNew, IgnoreStop: true, RepeatLimit: 0));
    }

    private async Task<List<AnswerToken>> Ask(AskConfig config, StageTimings timings)
    {
        var pipeline = new AskPipeline(fixture.Models);
        var frame = ImageFile.Load(_golden.ImagePath);
        var tokens = new List<AnswerToken>();
        await foreach (var t in pipeline.AskAsync(frame, _golden.Query, config, timings))
            tokens.Add(t);
        return tokens;
    }

    [Fact]
    public async Task PrefillLogits_MatchPyTorchWithin1e4()
    {
        var config = GoldenConfig(1, out var decoder);
        using var pipeline = new FramePipeline(fixture.Models);
        pipeline.SetQuery(_golden.Query);
        await foreach (var _ in pipeline.AnswerAsync(ImageFile.Load(_golden.ImagePath), config, new StageTimings(), new FrameStats())) { }
        // With one token asked for, no step runs after the visual prefill: the pipeline's last logits are the prefill's.
        var expected = Golden.Floats(_golden.Decoder(decoder).GetProperty("prefill_logits"));
        Assert.True(Golden.MaxAbsDiff(pipeline.LastLogits(config), expected) < 1e-4f);
    }

    [Fact]
    public async Task GreedyEightTokens_MatchPyTorchTokenForToken()
    {
        var config = GoldenConfig(8, out var decoder);
        var tokens = await Ask(config, new StageTimings());
        Assert.Equal(Golden.Ints(_golden.Decoder(decoder).GetProperty("greedy_tokens")), tokens.Select(t => t.Id));
    }

    [Fact]
    public async Task Timings_CoverEveryStage()
    {
        var timings = new StageTimings();
        var tokens = await Ask(GoldenConfig(5, out _), timings);
        Assert.Equal(5, timings.DecodedTokens);
        Assert.Equal(4 + 2, timings.VisualPositions);
        Assert.True(timings.QueryTokens > 1);
        foreach (var stage in Enum.GetValues<Stage>())
            Assert.True(timings[stage] > 0, $"{stage} was not timed");
        Assert.Contains("visual_prefill", timings.ToString());
        Assert.Equal(5, tokens.Count);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   \t ")]
    public async Task EmptyQuery_IsRejectedBeforeAnyModelRuns(string query)
    {
        var pipeline = new AskPipeline(fixture.Models);
        var frame = ImageFile.Load(_golden.ImagePath);
        var runTime = fixture.Models.RunTime;  // every graph's Run time, over every lease
        await Assert.ThrowsAsync<EngineException>(async () =>
        {
            await foreach (var _ in pipeline.AskAsync(frame, query, AskConfig.Default, new StageTimings())) { }
        });
        Assert.Equal(runTime, fixture.Models.RunTime);
    }

    [Fact]
    public void AbsurdlyLongQuery_IsRejected() =>
        Assert.Throws<EngineException>(() => AskPipeline.ValidateQuery(new string('a', AskConfig.MaxQueryChars + 1)));
    [Fact]
    public void AnotherCompressorWithoutTokens_TakesItsOwnVNearestTheDefault()
    {
        // Before, the default compressor's V was applied to any other: "--tokens 16 is not offered by pool".
        Assert.Equal(4, AskConfig.Nearest([1, 4], 16));
        Assert.Equal(16, AskConfig.Nearest([1, 4, 16, 64], 16));
        Assert.Equal(576, AskConfig.Nearest([576], 4));
        Assert.Equal(2, AskConfig.Nearest([2, 8], 4));  // as near by ratio: the smaller
        var m = fixture.Models.Manifest;
        var other = m.FindDecoder(m.Default.Decoder).Compressors.First(c => c.Kind != m.Default.Compressor);
        var choice = new AskConfig(Compressor: other.Kind).Choice(fixture.Models);
        Assert.Equal(AskConfig.Nearest(other.Tokens, m.Default.Tokens), choice.Tokens);
        Assert.Contains(choice.Tokens, other.Tokens);
    }
}
