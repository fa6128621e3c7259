using Assistant.Capture.World;

namespace Assistant.Engine.Tests;

/// <summary>An evaluation asks every scene through one frame pipeline (one lease), and answers as one-shot asks do.</summary>
public sealed class WorldEvaluationTests(TrainedFixture fixture) : IClassFixture<TrainedFixture>
{
    [Fact]
    public async Task ThirtyScenes_TakeOneLease_AndAnswerAsOneShotAsksDo()
    {
        var pipeline = new AskPipeline(fixture.Models);
        long leases = fixture.Models.LeasesTaken;
        var report = await new WorldEvaluation(pipeline).RunAsync(new AskConfig(), "val", 30, null);
        Assert.Equal(1, fixture.Models.LeasesTaken - leases);  // before: one per scene
        Assert.Equal(30, report.Items.Count);
        var config = new AskConfig(Answer: AnswerOptions.Default with { MaxTokens = 4, Temperature = 0 });
        foreach (var item in report.Items)
        {
            var frame = WorldScene.RenderFrame(WorldScene.Generate(item.Seed), fixture.Models.Manifest.World!.ImageSize);
            var answer = new System.Text.StringBuilder();
            await foreach (var t in pipeline.AskAsync(frame, item.Question, config, new StageTimings()))
                answer.Append(t.Text);
            Assert.Equal(answer.ToString().Trim().ToLowerInvariant(), item.Answer);
        }
        Assert.True(report.Overall.Correct > 15, report.Overall.ToString());  // the trained set, not chance
    }
}
