using Assistant.Capture;
using Assistant.Capture.World;
using Assistant.Inference;
using Assistant.Tests;

namespace Assistant.Engine.Tests;

/// <summary>A world set says when a picture is not the kind it knows, and how sure it is of each answer (issue 32, item 1).</summary>
public sealed class FamiliarityTests(TrainedFixture trained, PipelineFixture tiny, Xunit.Abstractions.ITestOutputHelper output)
    : IClassFixture<TrainedFixture>, IClassFixture<PipelineFixture>
{
    private static readonly AskConfig OneToken = new(Answer: new AnswerOptions(1));

    private async Task<StageTimings> Ask(ModelSet set, Frame frame, string question = "how many circles are there?")
    {
        var timings = new StageTimings();
        await foreach (var _ in new AskPipeline(set).AskAsync(frame, question, OneToken, timings)) { }
        return timings;
    }

    [Fact]
    public async Task HeldOutTestScenes_AreFamiliar_AtTheSetsSizeAndAt256()
    {
        int familiar = 0, n = 0;
        var scores = new List<double>();
        for (long seed = WorldDefinition.Splits["test"].Lo; n < 400; seed++, n++)
        {
            var frame = WorldScene.RenderFrame(WorldScene.Generate(seed), n % 2 == 0 ? 64 : 256);
            var f = (await Ask(trained.Models, frame)).Familiarity!;
            scores.Add(f.Score);
            if (f.Familiar) familiar++;
        }
        output.WriteLine($"{familiar} of {n} held-out test scenes familiar; scores median {scores.Order().ElementAt(n / 2):F2}, max {scores.Max():F2}");
        Assert.True(familiar >= 0.99 * n, $"{familiar} of {n} familiar; scores up to {scores.Max():F2}");
    }

    [Theory]
    [InlineData("ffmpeg's test card")]
    [InlineData("black")]
    [InlineData("noise")]
    [InlineData("ImageMagick's rose")]
    public async Task PicturesOfAnotherKind_AreFlagged(string which)
    {
        var path = Path.Combine(Path.GetTempPath(), $"assistant-ood-{Guid.NewGuid():N}.png");
        switch (which)
        {
            case "ffmpeg's test card": Tool.Run("ffmpeg", ["-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=640x480", "-frames:v", "1", path]); break;
            case "black": Tool.Run("convert", ["-size", "256x256", "xc:black", path]); break;
            case "noise": Tool.Run("convert", ["-size", "256x256", "xc:", "+noise", "Random", path]); break;
            default: Tool.Run("convert", ["rose:", path]); break;
        }
        var f = (await Ask(trained.Models, ImageFile.Load(path))).Familiarity!;
        output.WriteLine($"{which}: score {f.Score:F1}, threshold {f.Threshold:F1}");
        Assert.False(f.Familiar, $"{which}: score {f.Score:F2}, threshold {f.Threshold:F2}");
    }

    [Fact]
    public async Task EveryAnswerCarriesItsProbability_AndASetWithoutADomainIsNotChecked()
    {
        var frame = WorldScene.RenderFrame(WorldScene.Generate(WorldDefinition.Splits["test"].Lo), 64);
        var t = await Ask(trained.Models, frame);
        Assert.InRange(t.Confidence!.Value, 1e-9, 1.0);
        // Two tokens: the product of two probabilities, at most the first alone.
        var two = new StageTimings();
        await foreach (var _ in new AskPipeline(tiny.Models).AskAsync(frame, "how many circles are there?",
                           new AskConfig(Answer: new AnswerOptions(2, IgnoreStop: true, RepeatLimit: 0)), two)) { }
        var one = new StageTimings();
        await foreach (var _ in new AskPipeline(tiny.Models).AskAsync(frame, "how many circles are there?",
                           new AskConfig(Answer: new AnswerOptions(1, IgnoreStop: true, RepeatLimit: 0)), one)) { }
        Assert.True(two.Confidence <= one.Confidence, $"{two.Confidence} > {one.Confidence}");
        Assert.Null(one.Familiarity);  // the tiny set has no domain block
    }
}
