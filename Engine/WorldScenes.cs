using Assistant.Capture.World;

namespace Assistant.Engine;

/// <summary>One object of a world scene, in canvas units (0..1).</summary>
public sealed record SceneObject(string Shape, string Color, string Size, double X, double Y);

/// <summary>A question about a scene, its family and its true answer.</summary>
public sealed record SceneQuestion(string Family, string Text, string Answer);

/// <summary>A rendered world scene: the picture, the split its seed belongs to, its objects and questions.</summary>
public sealed record RenderedScene(long Seed, string Split, FramePicture Picture, IReadOnlyList<SceneObject> Objects, IReadOnlyList<SceneQuestion> Questions);

/// <summary>The synthetic world's scenes for <c>assistant world render</c>.</summary>
public static class WorldScenes
{
    /// <summary>Scene <paramref name="seed"/> at <paramref name="side"/> pixels, with <paramref name="questions"/> questions and their answers.</summary>
    public static RenderedScene Render(long seed, int side, int questions)
    {
        if (seed < 0) throw new EngineException($"--seed must be >= 0, got {seed}");
        if (side is < 16 or > 4096) throw new EngineException($"--size must be in 16..4096, got {side}");
        if (questions is < 0 or > 64) throw new EngineException($"--questions must be in 0..64, got {questions}");
        var objs = WorldScene.Generate(seed);
        var split = WorldDefinition.Splits.FirstOrDefault(kv => seed >= kv.Value.Lo && seed < kv.Value.Hi).Key ?? "none";
        return new RenderedScene(seed, split, new FramePicture(WorldScene.RenderFrame(objs, side)),
            objs.Select(o => new SceneObject(o.Shape, o.Color, o.Size, o.X, o.Y)).ToList(),
            WorldQuestions.Generate(seed, questions).Select(q => new SceneQuestion(q.Family, q.Text, q.Answer(objs))).ToList());
    }
}
