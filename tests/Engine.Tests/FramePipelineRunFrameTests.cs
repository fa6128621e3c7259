using Assistant.Capture;
using Assistant.Capture.World;
using Assistant.Inference;
using Assistant.Tests;

namespace Assistant.Engine.Tests;

/// <summary>
/// Answers decoded across frames within a per-frame token budget, on the random-weight set (its answers run
/// to the length limit, which makes multi-frame answers easy to see).
/// </summary>
public sealed class FramePipelineRunFrameTests(PipelineFixture fixture) : IClassFixture<PipelineFixture>
{
    private static readonly AskConfig TenTokens = new(Tokens: 4, Answer: new AnswerOptions(10, IgnoreStop: true, RepeatLimit: 0));
    private static Frame Still() => ImageFile.Load(Golden.Tiny.ImagePath);
    private static Frame Moving(long f) => new WorldSource(7, 0.02).Render(f, 64);

    private async Task<List<int>> OneShot(Frame frame, string query)
    {
        var ids = new List<int>();
        await foreach (var t in new AskPipeline(fixture.Models).AskAsync(frame, query, TenTokens, new StageTimings()))
            ids.Add(t.Id);
        return ids;
    }

    [Fact]
    public async Task Snapshot_SpreadsAnAnswerOverFrames_AndEqualsTheOneShotAnswer()
    {
        using var loop = new FramePipeline(fixture.Models);
        loop.SetQuery("what color is the circle?");
        var steps = Enumerable.Range(0, 4).Select(_ => loop.RunFrame(Still(), TenTokens, 3, AnswerMode.Snapshot, new StageTimings(), new FrameStats())).ToList();
        Assert.Equal([3, 3, 3, 1], steps.Select(s => s.NewTokenIds.Count));
        Assert.Equal([false, false, false, true], steps.Select(s => s.AnswerDone));
        Assert.Equal([true, false, false, false], steps.Select(s => s.AnswerRestarted));
        Assert.Equal(await OneShot(Still(), "what color is the circle?"), steps.SelectMany(s => s.NewTokenIds));
        // The next frame starts a new answer.
        Assert.True(loop.RunFrame(Still(), TenTokens, 3, AnswerMode.Snapshot, new StageTimings(), new FrameStats()).AnswerRestarted);
    }

    [Fact]
    public void Snapshot_FinishesDespiteAChangingScene_LiveRestartsOnEveryChange()
    {
        using var snapshot = new FramePipeline(fixture.Models);
        snapshot.SetQuery("how many squares?");
        var s = Enumerable.Range(0, 4).Select(f => snapshot.RunFrame(Moving(f), TenTokens, 3, AnswerMode.Snapshot, new StageTimings(), new FrameStats())).ToList();
        Assert.True(s[^1].AnswerDone);
        Assert.Equal(0, s[^1].AnswerStartedAt);

        using var live = new FramePipeline(fixture.Models);
        live.SetQuery("how many squares?");
        var l = Enumerable.Range(0, 4).Select(f => live.RunFrame(Moving(f), TenTokens, 3, AnswerMode.Live, new StageTimings(), new FrameStats())).ToList();
        Assert.All(l, step => Assert.True(step.AnswerRestarted));  // every frame is a new picture
        Assert.All(l, step => Assert.False(step.AnswerDone));
        Assert.Equal(3, l[^1].AnswerStartedAt);
    }

    [Fact]
    public void ANewQuery_CancelsTheAnswerInFlight()
    {
        using var loop = new FramePipeline(fixture.Models);
        loop.SetQuery("what color is the circle?");
        var first = loop.RunFrame(Still(), TenTokens, 3, AnswerMode.Snapshot, new StageTimings(), new FrameStats());
        loop.SetQuery("is there a star?");
        var second = loop.RunFrame(Still(), TenTokens, 3, AnswerMode.Snapshot, new StageTimings(), new FrameStats());
        Assert.False(first.AnswerDone);
        Assert.True(second.AnswerRestarted);
        Assert.Equal(1, second.AnswerStartedAt);
        Assert.Equal(2, loop.Counters.QueryPrefills);
    }

    [Fact]
    public void ABudgetBelowOneToken_IsAnError()
    {
        using var loop = new FramePipeline(fixture.Models);
        loop.SetQuery("what color is the circle?");
        Assert.Throws<EngineException>(() => loop.RunFrame(Still(), TenTokens, 0, AnswerMode.Live, new StageTimings(), new FrameStats()));
    }
}
