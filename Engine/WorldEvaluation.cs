using Assistant.Capture.World;
using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>Correct out of total, with a 95% Wilson score interval (sound at small n and near 0 or 1).</summary>
public sealed record Accuracy(int Correct, int Total)
{
    /// <summary>Correct over total (0 when empty).</summary>
    public double Value => Total == 0 ? 0 : (double)Correct / Total;

    /// <summary>The Wilson score 95% interval.</summary>
    public (double Lo, double Hi) Interval95
    {
        get
        {
            if (Total == 0) return (0, 1);
            const double z = 1.959964;
            double n = Total, p = Value, z2 = z * z;
            double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
            double half = z * Math.Sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n);
            return (Math.Max(0, centre - half), Math.Min(1, centre + half));
        }
    }

    /// <summary>"97.6% [96.5, 98.3] (1171/1200)".</summary>
    public override string ToString() => $"{100 * Value:F1}% [{100 * Interval95.Lo:F1}, {100 * Interval95.Hi:F1}] ({Correct}/{Total})";
}

/// <summary>One evaluated question.</summary>
public sealed record EvalItem(long Seed, string Family, string Question, string Truth, string Answer)
{
    /// <summary>The answer equals the truth.</summary>
    public bool Correct => Answer == Truth;
}

/// <summary>What an evaluation run scored.</summary>
/// <param name="Split">The split the seeds came from.</param>
/// <param name="SeedStart">The first scene seed.</param>
/// <param name="Count">Scenes asked about.</param>
/// <param name="Overall">Accuracy over every question.</param>
/// <param name="ByFamily">Accuracy per question family.</param>
/// <param name="Items">Every question with its answer.</param>
public sealed record EvalReport(string Split, long SeedStart, int Count, Accuracy Overall, IReadOnlyDictionary<string, Accuracy> ByFamily, IReadOnlyList<EvalItem> Items);

/// <summary>
/// Runs the full C# engine path (render, preprocess, vision, query prefill, compressor, visual prefill,
/// greedy decode) on world scenes and scores the answers against the world's truth.
/// </summary>
public sealed class WorldEvaluation(AskPipeline pipeline)
{
    /// <param name="renderSize">Side of the rendered scene; the preprocessor resizes it to the model's input
    /// (default: the model's own size, as in training).</param>
    /// <param name="config">The configuration (at most 4 greedy tokens an answer).</param>
    /// <param name="split">train, val or test.</param>
    /// <param name="count">Scenes, one question each.</param>
    /// <param name="seedStart">The first seed (default: the split's first).</param>
    /// <param name="progress">Told the scenes done.</param>
    /// <param name="cancellation">Stops between scenes.</param>
    public async Task<EvalReport> RunAsync(AskConfig config, string split, int count, long? seedStart, IProgress<int>? progress = null,
        CancellationToken cancellation = default, int? renderSize = null)
    {
        var world = pipeline.Models.Manifest.World
            ?? throw new EngineException($"model set '{pipeline.Models.Manifest.Name}' was not trained on the world: eval needs a world-trained set");
        if (!WorldDefinition.Splits.TryGetValue(split, out var range))
            throw new EngineException($"unknown split '{split}': use {string.Join(", ", WorldDefinition.Splits.Keys)}");
        long start = seedStart ?? range.Lo;
        if (count < 1) throw new EngineException($"--n must be at least 1, got {count}");
        if (renderSize is < 16 or > 4096) throw new EngineException($"--render-size must be in 16..4096, got {renderSize}");
        if (start < range.Lo || start + count > range.Hi)
            throw new EngineException($"seeds {start}..{start + count - 1} are outside the {split} split [{range.Lo}, {range.Hi})");

        var items = new List<EvalItem>(count);
        config = config with { Answer = (config.Answer ?? AnswerOptions.Default) with { MaxTokens = 4, Temperature = 0 } };
        pipeline.Resolve(config);  // an unknown decoder or V fails before any model runs
        // One frame pipeline, so one lease, for every scene (before: one per scene): each scene is a new picture, and a
        // question asked again reuses its prefix.
        using var loop = new FramePipeline(pipeline.Models);
        for (int i = 0; i < count; i++)
        {
            cancellation.ThrowIfCancellationRequested();
            long seed = start + i;
            var objs = WorldScene.Generate(seed);
            var question = WorldQuestions.Generate(seed, 1)[0];
            var frame = WorldScene.RenderFrame(objs, renderSize ?? world.ImageSize);
            var answer = new System.Text.StringBuilder();
            loop.NewPicture();
            loop.SetQuery(question.Text);
            await foreach (var t in loop.AnswerAsync(frame, config, new StageTimings(), new FrameStats(), cancellation))
                answer.Append(t.Text);
            items.Add(new EvalItem(seed, question.Family, question.Text, question.Answer(objs), answer.ToString().Trim().ToLowerInvariant()));
            progress?.Report(i + 1);
        }
        static Accuracy Score(IEnumerable<EvalItem> xs) { var l = xs.ToList(); return new Accuracy(l.Count(x => x.Correct), l.Count); }
        var byFamily = WorldDefinition.Families.ToDictionary(f => f, f => Score(items.Where(x => x.Family == f)));
        return new EvalReport(split, start, count, Score(items), byFamily, items);
    }
}
