using Assistant.Capture.World;
using Assistant.Inference;
using Assistant.Tests;

namespace Assistant.Engine.Tests;

public sealed class TrainedFixture : IDisposable
{
    public TrainedFixture() => Models = ModelSet.Load(Repo.TrainedModels, new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)));
    public ModelSet Models { get; }
    public void Dispose() => Models.Dispose();
}

/// <summary>The frame loop on the live world source, where the truth of every frame is known.</summary>
public sealed class FramePipelineTests(TrainedFixture fixture) : IClassFixture<TrainedFixture>
{
    private static readonly AskConfig Config = new(Answer: new AnswerOptions(4));

    private static async Task<(string Answer, FrameStats Stats)> Step(FramePipeline loop, Capture.Frame frame)
    {
        var stats = new FrameStats();
        var text = new System.Text.StringBuilder();
        await foreach (var t in loop.AnswerAsync(frame, Config, new StageTimings(), stats))
            text.Append(t.Text);
        return (text.ToString().Trim(), stats);
    }

    [Fact]
    public async Task StaticScene_EncodesOnce_PrefillsTheQueryOnce_AndKeepsAnswering()
    {
        var world = new WorldSource(2_000_300, speed: 0);
        var question = WorldQuestions.Generate(2_000_300, 1, "count")[0];
        using var loop = new FramePipeline(fixture.Models);
        loop.SetQuery(question.Text);
        var answers = new List<string>();
        for (int f = 0; f < 120; f++)
            answers.Add((await Step(loop, world.Render(f, 64))).Answer);
        Assert.Equal(new LoopCounters(120, 1, 1, 1, 1), loop.Counters);  // a world set's text before the image is its query
        Assert.Single(answers.Distinct());
        Assert.Equal(world.Truth(question, 0), answers[0]);
    }

    [Fact]
    public async Task CachedFrames_GiveExactlyTheFreshAnswer()
    {
        // Frame 2 of a static scene is served entirely from caches; its logits must equal a fresh one-shot ask.
        var world = new WorldSource(2_000_301, speed: 0);
        var question = WorldQuestions.Generate(2_000_301, 1, "attribute")[0];
        using var loop = new FramePipeline(fixture.Models);
        loop.SetQuery(question.Text);
        var single = Config with { Answer = new AnswerOptions(1) };
        await foreach (var _ in loop.AnswerAsync(world.Render(0, 64), single, new StageTimings(), new FrameStats())) { }
        var stats = new FrameStats();
        await foreach (var _ in loop.AnswerAsync(world.Render(1, 64), single, new StageTimings(), stats)) { }
        var cached = loop.LastLogits(single).ToArray();
        Assert.False(stats.VisionRan || stats.QueryPrefilled || stats.CompressorRan);
        using var fresh = new FramePipeline(fixture.Models);
        fresh.SetQuery(question.Text);
        await foreach (var _ in fresh.AnswerAsync(world.Render(1, 64), single, new StageTimings(), new FrameStats())) { }
        Assert.Equal(fresh.LastLogits(single), cached);
    }

    [Fact]
    public async Task MovingScene_ReencodesChangedFrames_AndPrefillsEachQueryOnce()
    {
        var world = new WorldSource(2_000_302, speed: 0.01);
        var questions = Enumerable.Range(0, 4).Select(i => WorldQuestions.For(world.ObjectsAt(50 * i), WorldQuestions.QuestionSeed(2_000_302, i), "count")!).ToList();
        using var loop = new FramePipeline(fixture.Models);
        for (int f = 0; f < 200; f++)
        {
            if (f % 50 == 0) loop.SetQuery(questions[f / 50].Text);
            await Step(loop, world.Render(f, 64));
        }
        var c = loop.Counters;
        Assert.Equal(200, c.Frames);
        int changes = questions.Where((q, i) => i == 0 || q.Text != questions[i - 1].Text).Count();
        Assert.Equal(changes, c.QueryPrefills);  // a query asked again straight after itself keeps its cache
        Assert.InRange(c.VisionRuns, 60, 200);  // moving objects change most thumbnails
        Assert.InRange(c.CompressorRuns, c.VisionRuns, c.VisionRuns + c.QueryPrefills);
    }

    [Fact]
    public async Task LiveAnswers_OnEveryFamily_FollowTheMovingTruth()
    {
        // 300 frames, a new question every 50, one per family (docs/WORLD.md: the default answers 77-100% of
        // each on still test scenes).
        string[] families = ["attribute", "count", "spatial", "nearest", "exists", "compare"];
        var world = new WorldSource(2_000_303, speed: 0.004);
        using var loop = new FramePipeline(fixture.Models);
        int correct = 0, frames = 0;
        WorldQuestion? q = null;
        for (int f = 0; f < 300; f++)
        {
            if (f % 50 == 0)
            {
                q = WorldQuestions.For(world.ObjectsAt(f), WorldQuestions.QuestionSeed(2_000_303, f / 50), families[f / 50 % families.Length])!;
                loop.SetQuery(q.Text);
            }
            var (answer, _) = await Step(loop, world.Render(f, 64));
            frames++;
            if (answer == world.Truth(q!, f)) correct++;
        }
        Assert.True(correct >= 0.85 * frames, $"{correct}/{frames} frames answered correctly");
    }

    [Fact]
    public async Task NoQuery_IsAnError()
    {
        using var loop = new FramePipeline(fixture.Models);
        await Assert.ThrowsAsync<EngineException>(async () =>
        {
            await foreach (var _ in loop.AnswerAsync(new WorldSource(1).Render(0, 64), Config, new StageTimings(), new FrameStats())) { }
        });
    }
}
