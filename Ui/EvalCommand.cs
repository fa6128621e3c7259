using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Assistant.Engine;

namespace Assistant.Ui;

/// <summary><c>assistant eval</c>: accuracy of the C# engine on held-out world scenes, overall and per family, with 95% intervals.</summary>
internal static class EvalCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var models = new Option<string?>("--models") { Description = "model set folder (default: models/default)" };
        var tokens = new Option<int?>("--tokens") { Description = "visual tokens V (default from the manifest)" };
        var decoder = new Option<string?>("--decoder") { Description = "decoder name (default from the manifest)" };
        var compressor = new Option<string?>("--compressor") { Description = "the set's compressor kind: quecc or tokenpacker (world sets), full, pool or query (imported sets), and quecc or tokenpacker on an imported set after `models distill`; default from the manifest" };
        var split = new Option<string>("--split") { Description = "train, val or test", DefaultValueFactory = _ => "test" };
        var n = new Option<int>("--n") { Description = "questions (one per scene)", DefaultValueFactory = _ => 600 };
        var seedStart = new Option<long?>("--seed-start") { Description = "first scene seed (default: the split's first)" };
        var renderSize = new Option<int?>("--render-size") { Description = "render scenes at this side and let the preprocessor resize (default: the model's input size)" };
        var ep = Cli.EpOption();
        var json = Cli.JsonOption();
        var command = new Command("eval", "Score the engine on world scenes: accuracy overall and per question family, with 95% confidence intervals.")
        {
            models, tokens, decoder, compressor, split, n, seedStart, renderSize, ep, json,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            using var set = Cli.LoadModels(parse.GetValue(models), parse.GetValue(ep)!, stderr);
            var pipeline = new AskPipeline(set);
            var config = new AskConfig(parse.GetValue(decoder), parse.GetValue(compressor), parse.GetValue(tokens));
            var resolved = pipeline.Resolve(config);
            int count = parse.GetValue(n);
            bool showProgress = !Console.IsErrorRedirected && ReferenceEquals(stderr, Console.Error);
            var progress = new Progress<int>(done =>
            {
                if (showProgress && (done % 10 == 0 || done == count))
                    stderr.Write($"\reval {done}/{count} [{new string('#', 30 * done / count),-30}]");
            });
            var clock = Stopwatch.StartNew();
            var report = await new WorldEvaluation(pipeline).RunAsync(config, parse.GetValue(split)!, count, parse.GetValue(seedStart), progress, cancellation, parse.GetValue(renderSize));
            if (showProgress) stderr.WriteLine();
            double seconds = clock.Elapsed.TotalSeconds;
            static object Acc(Accuracy a) => new { accuracy = Math.Round(a.Value, 4), lo95 = Math.Round(a.Interval95.Lo, 4), hi95 = Math.Round(a.Interval95.Hi, 4), correct = a.Correct, total = a.Total };
            if (parse.GetValue(json))
            {
                stdout.WriteLine(JsonSerializer.Serialize(new
                {
                    models = set.Directory,
                    set_name = set.Name,
                    decoder = resolved.Decoder,
                    compressor = resolved.Compressor,
                    tokens = resolved.Tokens,
                    ep = set.Provider,
                    split = report.Split,
                    seed_start = report.SeedStart,
                    n = report.Count,
                    render_size = parse.GetValue(renderSize) ?? set.WorldImageSize,
                    overall = Acc(report.Overall),
                    families = report.ByFamily.ToDictionary(kv => kv.Key, kv => Acc(kv.Value)),
                    seconds = Math.Round(seconds, 2),
                }));
                return 0;
            }
            stdout.WriteLine($"model set '{set.Name}': {resolved.Decoder} + {resolved.Compressor} V={resolved.Tokens} on {set.Provider}; " +
                             $"split {report.Split}, seeds {report.SeedStart}..{report.SeedStart + report.Count - 1}, {seconds:F1} s");
            stdout.WriteLine($"  {"overall",-10} {report.Overall}");
            foreach (var (family, acc) in report.ByFamily)
                stdout.WriteLine($"  {family,-10} {acc}");
            return 0;
        });
        return command;
    }
}
