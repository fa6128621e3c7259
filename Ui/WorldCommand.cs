using System.CommandLine;
using System.Text.Json;
using Assistant.Capture;
using Assistant.Capture.World;
using Assistant.Engine;

namespace Assistant.Ui;

/// <summary><c>assistant world render</c>: one scene of the synthetic world as a PNG, with its questions and answers beside it.</summary>
internal static class WorldCommand
{
    public static Command Create(TextWriter stdout)
    {
        var seed = new Option<long>("--seed") { Description = "scene seed (test split: 2000000..2009999)", Required = true };
        var output = new Option<string>("--out") { Description = "PNG to write; its questions go to the same name with .json", Required = true };
        var size = new Option<int>("--size") { Description = "side in pixels (the models see 64)", DefaultValueFactory = _ => 256 };
        var questions = new Option<int>("--questions") { Description = "questions to generate", DefaultValueFactory = _ => 6 };
        var render = new Command("render", "Render a world scene to PNG and write its questions and true answers as JSON beside it.") { seed, output, size, questions };
        render.SetAction(parse =>
        {
            long s = parse.GetValue(seed);
            int side = parse.GetValue(size), count = parse.GetValue(questions);
            if (s < 0) throw new EngineException($"--seed must be >= 0, got {s}");
            if (side is < 16 or > 4096) throw new EngineException($"--size must be in 16..4096, got {side}");
            if (count is < 0 or > 64) throw new EngineException($"--questions must be in 0..64, got {count}");
            var path = parse.GetValue(output)!;
            var objs = WorldScene.Generate(s);
            PngFile.Write(WorldScene.RenderFrame(objs, side), path);
            var qs = WorldQuestions.Generate(s, count);
            var split = WorldDefinition.Splits.FirstOrDefault(kv => s >= kv.Value.Lo && s < kv.Value.Hi).Key ?? "none";
            var jsonPath = Path.ChangeExtension(path, ".json");
            File.WriteAllText(jsonPath, JsonSerializer.Serialize(new
            {
                seed = s,
                split,
                size = side,
                objects = objs.Select(o => new { shape = o.Shape, color = o.Color, size = o.Size, x = o.X, y = o.Y }),
                questions = qs.Select(q => new { family = q.Family, question = q.Text, answer = q.Answer(objs) }),
            }, new JsonSerializerOptions { WriteIndented = true }));
            stdout.WriteLine($"wrote {path} ({side}x{side}, {objs.Count} objects, {split} split) and {jsonPath}");
            foreach (var q in qs)
                stdout.WriteLine($"  [{q.Family}] {q.Text} -> {q.Answer(objs)}");
            return 0;
        });
        return new Command("world", "The synthetic shapes world the default models were trained on.") { render };
    }
}
