// Renders docs/scaling_accuracy_flops.png: accuracy against FLOPs per frame (query cached) for each decoder
// of a set, with 95% intervals and the compute-optimal frontier, from `assistant eval --json` lines; with
// --compare, also accuracy against V for each decoder, QueCC beside the query-agnostic baseline.
//   dotnet run --project bench/Plots -- [--eval docs/data/world_eval.jsonl] [--models models/default] [--out docs/scaling_accuracy_flops.png]
//   dotnet run --project bench/Plots -- --eval docs/data/grid_eval.jsonl --sets .cache/grid/sets --out A.png --compare B.png
// --sets: a folder of sets (the scaling grid's); each eval line's decoder is looked up in the set its "set_name" names
// (lines written before eval --json had set_name carry the name in "models").
using System.Text.Json;
using Assistant.Engine;
using Assistant.Inference;

var cli = new Assistant.Bench.BenchArgs(args);
var root = Assistant.Bench.BenchArgs.RepoRoot();
var evalPath = cli.Get("--eval", Path.Combine(root, "docs", "data", "world_eval.jsonl"));
var manifest = Manifest.Read(cli.Get("--models", Path.Combine(root, "models", "default")));
var manifests = new Dictionary<string, Manifest> { [manifest.Name] = manifest };
if (cli.Has("--sets"))
    foreach (var dir in Directory.GetDirectories(cli.Get("--sets", "")).Order())
        if (File.Exists(Path.Combine(dir, "manifest.json")) && Manifest.Read(dir) is var m) manifests[m.Name] = m;
var output = cli.Get("--out", Path.Combine(root, "docs", "scaling_accuracy_flops.png"));

var points = File.ReadAllLines(evalPath).Where(l => l.Trim().Length > 0).Select(l =>
{
    var j = JsonDocument.Parse(l).RootElement;
    var set = manifests.TryGetValue((j.TryGetProperty("set_name", out var name) ? name : j.GetProperty("models")).GetString()!, out var named) ? named : manifest;
    var decoder = set.FindDecoder(j.GetProperty("decoder").GetString()!);
    int v = j.GetProperty("tokens").GetInt32();
    var o = j.GetProperty("overall");
    var comp = decoder.Compressors.First(c => c.Kind == j.GetProperty("compressor").GetString());
    // Per frame with the query cached: vision + compressor + visual prefill + one decode step (answer, stop).
    double flops = FlopsModel.Ask(set.Vision, decoder, comp.QueryAware, v, 12, 2).PerFrameCachedQuery;
    return (Decoder: decoder, Kind: comp.Kind, V: v, Flops: flops, Acc: o.GetProperty("accuracy").GetDouble(), Lo: o.GetProperty("lo95").GetDouble(), Hi: o.GetProperty("hi95").GetDouble());
}).ToList();

var all = points;
points = all.Where(p => p.Kind == "quecc").ToList();  // the law, the frontier and this plot are QueCC's
if (points.Count == 0) { Console.Error.WriteLine($"error: no QueCC lines in {evalPath}"); return 2; }
string title = cli.Has("--sets") ? "scaling grid" : manifest.Name;
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
plot.Title($"{title}: accuracy vs FLOPs per frame (query cached), QueCC, test split");
plot.XLabel("log10 FLOPs per frame (vision + QueCC + visual prefill + 1 decode step)");
plot.YLabel("accuracy, % (95% interval)");
plot.ShowLegend(ScottPlot.Alignment.LowerRight);
plot.SavePng(output, 900, 560);
Console.WriteLine($"wrote {output} ({points.Count} points)");

// QueCC against the query-agnostic baseline at each V: one colour per decoder, solid QueCC, dashed baseline,
// with 95% intervals, V on a log2 axis (the paper's comparison at V <= 4 is the question).
if (cli.Has("--compare"))
{
    var compareOut = cli.Get("--compare", "");
    var cmp = new ScottPlot.Plot();
    colour = 0;
    foreach (var group in all.GroupBy(p => p.Decoder.Name).OrderBy(g => g.First().Decoder.Params))
    {
        var color = palette.GetColor(colour++);
        foreach (var kind in group.GroupBy(p => p.Kind).OrderBy(k => k.Key == "quecc" ? 0 : 1))
        {
            var ps = kind.OrderBy(p => p.V).ToList();
            double shift = kind.Key == "quecc" ? -0.04 : 0.04;  // side by side, so the intervals do not hide each other
            var xs = ps.Select(p => Math.Log2(p.V) + shift).ToArray();
            var line = cmp.Add.Scatter(xs, ps.Select(p => 100 * p.Acc).ToArray(), color);
            line.LegendText = $"{group.Key}, {kind.Key}";
            if (kind.Key != "quecc") line.LinePattern = ScottPlot.LinePattern.Dashed;
            foreach (var (p, x) in ps.Zip(xs))
            {
                var bar = cmp.Add.Line(x, 100 * p.Lo, x, 100 * p.Hi);
                bar.Color = color;
                bar.LineWidth = 2;
            }
        }
    }
    cmp.Title($"{title}: QueCC (solid) vs query-agnostic baseline (dashed), test split");
    var vs = all.Select(p => p.V).Distinct().Order().ToArray();
    cmp.Axes.Bottom.SetTicks(vs.Select(v => Math.Log2(v)).ToArray(), vs.Select(v => v.ToString()).ToArray());
    cmp.XLabel("V, visual tokens (log scale)");
    cmp.YLabel("accuracy, % (95% interval)");
    cmp.ShowLegend(ScottPlot.Alignment.LowerRight);
    cmp.SavePng(compareOut, 900, 560);
    Console.WriteLine($"wrote {compareOut} ({all.Count} points)");
}
return 0;
