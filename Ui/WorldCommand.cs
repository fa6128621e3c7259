using System.CommandLine;
using System.Text.Json;
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
            var path = Cli.OutputFile(parse.GetValue(output), "--out", ".png");
            var scene = WorldScenes.Render(parse.GetValue(seed), parse.GetValue(size), parse.GetValue(questions));
            scene.Picture.SavePng(path);
            var jsonPath = Path.ChangeExtension(path, ".json");
            File.WriteAllText(jsonPath, JsonSerializer.Serialize(new
            {
                seed = scene.Seed,
                split = scene.Split,
                size = scene.Picture.Width,
                objects = scene.Objects.Select(o => new { shape = o.Shape, color = o.Color, size = o.Size, x = o.X, y = o.Y }),
                questions = scene.Questions.Select(q => new { family = q.Family, question = q.Text, answer = q.Answer }),
            }, new JsonSerializerOptions { WriteIndented = true }));
            stdout.WriteLine($"wrote {path} ({scene.Picture.Width}x{scene.Picture.Height}, {scene.Objects.Count} objects, {scene.Split} split) and {jsonPath}");
            foreach (var q in scene.Questions)
                stdout.WriteLine($"  [{q.Family}] {q.Text} -> {q.Answer}");
            return 0;
        });
        return new Command("world", "The synthetic shapes world the default models were trained on.") { render };
    }
}
