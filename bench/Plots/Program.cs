// Renders docs/scaling_accuracy_flops.png: accuracy against FLOPs per frame (query cached) for each decoder
// of a set, with 95% intervals and the compute-optimal frontier, from `assistant eval --json` lines.
//   dotnet run --project bench/Plots -- [--eval docs/data/world_eval.jsonl] [--models models/default] [--out docs/scaling_accuracy_flops.png]
using System.Text.Json;
using Assistant.Engine;
using Assistant.Inference;

var cli = new Assistant.Bench.BenchArgs(args);
var root = Assistant.Bench.BenchArgs.RepoRoot();
var evalPath = cli.Get("--eval", Path.Combine(root, "docs", "data", "world_eval.jsonl"));
var manifest = Manifest.Read(cli.Get("--models", Path.Combine(root, "models", "default")));
var output = cli.Get("--out", Path.Combine(root, "docs", "scaling_accuracy_flops.png"));

var points = File.ReadAllLines(evalPath).Where(l => l.Trim().Length > 0).Select(l =>
{
    var j = JsonDocument.Parse(l).RootElement;
    var decoder = manifest.FindDecoder(j.GetProperty("decoder").GetString()!);
    int v = j.GetProperty("tokens").GetInt32();
    var o = j.GetProperty("overall");
    var comp = decoder.Compressors.First(c => c.Kind == j.GetProperty("compressor").GetString());
    // Per frame with the query cached: vision + compressor + visual prefill + one decode step (answer, stop).
    double flops = FlopsModel.Ask(manifest.Vision, decoder, comp.QueryAware, v, 12, 2).PerFrameCachedQuery;
    return (Decoder: decoder, V: v, Flops: flops, Acc: o.GetProperty("accuracy").GetDouble(), Lo: o.GetProperty("lo95").GetDouble(), Hi: o.GetProperty("hi95").GetDouble());
}).ToList();

var plot = new ScottPlot.Plot();
var palette = new ScottPlot.Palettes.Category10();
int colour = 0;
foreach (var group in points.GroupBy(p => p.Decoder.Name).OrderBy(g => g.First().Decoder.Params))
{
    var ps = group.OrderBy(p => p.Flops).ToList();
    var xs = ps.Select(p => Math.Log10(p.Flops)).ToArray();
    var color = palette.GetColor(colour++);
    var line = plot.Add.Scatter(xs, ps.Select(p => 100 * p.Acc).ToArray(), color);
    line.LegendText = $"{group.Key} ({group.First().Decoder.Params / 1e6:F2}M params)";
    foreach (var p in ps)  // the 95% interval as a vertical bar (Wilson intervals are not symmetric)
    {
        var bar = plot.Add.Line(Math.Log10(p.Flops), 100 * p.Lo, Math.Log10(p.Flops), 100 * p.Hi);
        bar.Color = color;
        bar.LineWidth = 2;
    }
    foreach (var p in ps)
    {
        var label = plot.Add.Text($"V={p.V}", Math.Log10(p.Flops), 100 * p.Acc);
        label.LabelFontColor = color;
        label.LabelFontSize = 11;
        label.OffsetY = -6;
        label.OffsetX = 6;
    }
}
// Compute-optimal frontier: the best accuracy reachable at or below each FLOPs level.
var frontier = new List<(double X, double Y)>();
double best = double.NegativeInfinity;
foreach (var p in points.OrderBy(p => p.Flops))
    if (p.Acc > best)
    {
        best = p.Acc;
        frontier.Add((Math.Log10(p.Flops), 100 * p.Acc));
    }
var f = plot.Add.ScatterLine(frontier.Select(q => q.X).ToArray(), frontier.Select(q => q.Y).ToArray(), ScottPlot.Colors.Black);
f.LinePattern = ScottPlot.LinePattern.Dashed;
f.LegendText = "compute-optimal frontier";
plot.Title($"{manifest.Name}: accuracy vs FLOPs per frame (query cached), QueCC, test split");
plot.XLabel("log10 FLOPs per frame (vision + QueCC + visual prefill + 1 decode step)");
plot.YLabel("accuracy, % (95% interval)");
plot.ShowLegend(ScottPlot.Alignment.LowerRight);
plot.SavePng(output, 900, 560);
Console.WriteLine($"wrote {output} ({points.Count} points)");
return 0;
