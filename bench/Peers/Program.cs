// The engine beside llama.cpp on the same random-weight LLaVA checkpoint (docs/PERFORMANCE.md, "Peers"):
//   dotnet run -c Release --project bench/Peers -- [--size tiny|0.5b] [--reps 5] [--tokens 16] [--json] [--work DIR] [--plot PNG]
// --plot draws time to first token against V for the last size measured (docs/peers_ttft.png); with --from REPORT.json
// it redraws from an earlier --json report instead of measuring. --profile-decode [--past 594] prints one decode step's
// kernel time by ONNX operator.
// Each size's checkpoint is made once into --work (tools/make_hf_checkpoint.py), imported for the engine
// (tools/import_hf.py) and written as GGUF for llama.cpp (tools/export_gguf.py). Runs are interleaved (ours and
// llama.cpp's alternate, rep by rep), the first rep of each is an untimed warm-up, and medians are reported.
using System.Diagnostics;
using System.Text.Json;
using Assistant.Bench.Peers;

var cli = new Assistant.Bench.BenchArgs(args);
var root = Assistant.Bench.BenchArgs.RepoRoot();
var work = cli.Get("--work", Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "assistant", "peers"));
int reps = cli.Int("--reps", 5), tokens = cli.Int("--tokens", 16);
if (reps < 2 || tokens < 2) { Console.Error.WriteLine("error: --reps and --tokens must be at least 2"); return 2; }
string[] sizes = cli.Has("--size") ? [cli.Get("--size", "tiny")] : ["tiny", "0.5b"];
var shapes = new Dictionary<string, string> { ["tiny"] = "tiny", ["0.5b"] = "clip336-qwen2-0.5b" };
foreach (var s in sizes)
    if (!shapes.ContainsKey(s)) { Console.Error.WriteLine($"error: --size is tiny or 0.5b, got '{s}'"); return 2; }

var json = new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
if (cli.Has("--from"))
{
    // Redraw the chart from an earlier --json report, without measuring again.
    using var doc = JsonDocument.Parse(File.ReadAllText(cli.Get("--from", "")));
    var size = sizes.Length == 1 ? sizes[0] : "0.5b";
    var saved = doc.RootElement.GetProperty(size).GetProperty("f32").GetProperty("runs").Deserialize<List<Row>>(json)!;
    Chart.Save(cli.Get("--plot", "peers_ttft.png"), size, saved);
    return 0;
}
if (cli.Has("--profile-decode"))
{
    var dirs = Checkpoints.Prepare(root, Path.Combine(work, sizes[^1]), shapes[sizes[^1]]);
    DecodeProfile.Print(dirs.Set, cli.Int("--past", 594), cli.Int("--steps", 10), Console.Out);
    return 0;
}
var report = new Dictionary<string, object>();
foreach (var size in sizes)
{
    var dirs = Checkpoints.Prepare(root, Path.Combine(work, size), shapes[size]);
    var rows = Runs.Measure(dirs, reps, tokens, Console.Error);
    var summary = Runs.Summarise(dirs, rows);
    report[size] = new Dictionary<string, object> { ["f32"] = new { runs = rows, goals = summary } };
    if (!cli.Has("--json")) Runs.Print(size, dirs, rows, summary, Console.Out);
    if (cli.Has("--plot")) Chart.Save(cli.Get("--plot", "peers_ttft.png"), size, rows);
}
report["machine"] = new { cores = Environment.ProcessorCount, os = System.Runtime.InteropServices.RuntimeInformation.OSDescription, when = DateTime.UtcNow };
if (cli.Has("--json"))
    Console.WriteLine(JsonSerializer.Serialize(report, json));
return 0;

namespace Assistant.Bench.Peers
{
    /// <summary>One size's folders: the checkpoint, the engine's set, the GGUF pair.</summary>
    internal sealed record Dirs(string Checkpoint, string Set, string Gguf)
    {
        public string TextGguf => Path.Combine(Gguf, "text.gguf");
        public string MmprojGguf => Path.Combine(Gguf, "mmproj.gguf");
        public string Image => Path.Combine(Set, "golden", "image.png");
    }

    internal static class Checkpoints
    {
        /// <summary>Makes (once) the checkpoint of <paramref name="shape"/>, its set and its GGUF files under <paramref name="dir"/>.</summary>
        public static Dirs Prepare(string root, string dir, string shape)
        {
            var d = new Dirs(Path.Combine(dir, "hf"), Path.Combine(dir, "set"), Path.Combine(dir, "gguf"));
            if (!Directory.Exists(d.Checkpoint)) Python(root, "make_hf_checkpoint.py", ["--out", d.Checkpoint, "--shape", shape]);
            if (!Directory.Exists(d.Set)) Python(root, "import_hf.py", [d.Checkpoint, "--out", d.Set]);
            if (!File.Exists(d.MmprojGguf)) Python(root, "export_gguf.py", [d.Checkpoint, "--out", d.Gguf]);
            return d;
        }

        private static void Python(string root, string script, string[] args)
        {
            Console.Error.WriteLine($"peers: tools/{script} {string.Join(' ', args)}");
            var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true };
            psi.ArgumentList.Add(Path.Combine(root, "tools", script));
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi) ?? throw new InvalidOperationException("python3 did not start");
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"tools/{script} failed ({p.ExitCode})");
        }
    }

    /// <summary>One runtime and configuration, as medians over the timed reps.</summary>
    internal sealed record Row(string Runtime, string Config, int VisualTokens, double TtftMs, double StaticTtftMs, double VisionMs,
        double PrefillMs, double PrefillTokS, double DecodeTokS, double PeakRssMb);

    internal static class Runs
    {
        private const int Pause = 200;  // ms

        public static List<Row> Measure(Dirs d, int reps, int tokens, TextWriter log)
        {
            using var ours = new Ours(d);
            using var llama = new LlamaCpp(d);
            var configs = ours.Configs();
            var samples = new Dictionary<string, List<Sample>>();
            for (int rep = 0; rep < reps + 1; rep++)  // rep 0: warm-up, not kept
            {
                log.WriteLine($"peers: rep {rep}/{reps}");
                // A pause before each run: both runtimes' worker threads spin for a while after their work, and one
                // runtime's spinning threads would otherwise slow the other's next run on these two cores.
                Thread.Sleep(Pause);
                var l = llama.Run(tokens);
                if (rep > 0) Add("llama.cpp|full", l);
                foreach (var (kind, v) in configs)
                {
                    Thread.Sleep(Pause);
                    var o = ours.Run(kind, v, tokens);
                    if (rep > 0) Add($"ours|{kind}|{v}", o);
                }
            }
            var rows = new List<Row>();
            foreach (var (key, list) in samples)
            {
                var parts = key.Split('|');
                double M(Func<Sample, double> f) => Median(list.Select(f));
                rows.Add(new Row(parts[0], parts[1], list[0].VisualTokens, M(s => s.TtftMs), M(s => s.StaticTtftMs), M(s => s.VisionMs),
                    M(s => s.PrefillMs), M(s => s.PrefillPositions / (s.PrefillMs / 1000)), M(s => s.DecodeTokS), list.Max(s => s.RssMb)));
            }
            return rows;

            void Add(string key, Sample s)
            {
                if (!samples.TryGetValue(key, out var list)) samples[key] = list = [];
                list.Add(s);
            }
        }

        /// <summary>The issue's goals, each as measured.</summary>
        public static Dictionary<string, object> Summarise(Dirs d, List<Row> rows)
        {
            var llama = rows.Single(r => r.Runtime == "llama.cpp");
            var full = rows.Single(r => r.Runtime == "ours" && r.Config == "full");
            var four = rows.Where(r => r.Runtime == "ours" && r.VisualTokens == 4).OrderBy(r => r.TtftMs).First();
            var m = Assistant.Inference.Manifest.Read(d.Set);
            var dec = m.Decoders[0];
            var fullFlops = Assistant.Engine.FlopsModel.Ask(m, dec, dec.Compressors.Single(c => c.Kind == "full"), m.Vision.Patches, 18, 2);
            var fourFlops = Assistant.Engine.FlopsModel.Ask(m, dec, dec.Compressors.Single(c => c.Kind == four.Config), 4, 18, 2);
            double PerFrame(Assistant.Engine.AskFlops f) => f.Vision + f.Compressor + f.VisualPrefill;
            double predicted = PerFrame(fullFlops) / PerFrame(fourFlops);
            double measured = llama.TtftMs / four.TtftMs;
            return new Dictionary<string, object>
            {
                ["decode_vs_llamacpp"] = full.DecodeTokS / llama.DecodeTokS,
                ["ttft_v4_vs_llamacpp_full"] = measured,
                ["ttft_ratio_predicted_by_flops"] = predicted,
                ["ttft_share_of_prediction"] = measured / predicted,
                ["decoder_share_llamacpp_over_ours_v4"] = llama.PrefillMs / four.PrefillMs,
                ["static_frame_llamacpp_over_ours_v4"] = llama.TtftMs / four.StaticTtftMs,
                ["vision_ours_over_llamacpp"] = full.VisionMs / llama.VisionMs,
            };
        }

        public static void Print(string size, Dirs d, List<Row> rows, Dictionary<string, object> goals, TextWriter o)
        {
            o.WriteLine($"== {size}: {d.Checkpoint} (F32; medians; ms)");
            o.WriteLine($"{"runtime",-10} {"config",-8} {"V",5} {"ttft",9} {"static",9} {"vision",9} {"prefill",9} {"prefill t/s",12} {"decode t/s",11} {"rss MB",8}");
            foreach (var r in rows)
                o.WriteLine($"{r.Runtime,-10} {r.Config,-8} {r.VisualTokens,5} {r.TtftMs,9:F1} {r.StaticTtftMs,9:F1} {r.VisionMs,9:F1} {r.PrefillMs,9:F1} {r.PrefillTokS,12:F0} {r.DecodeTokS,11:F1} {r.PeakRssMb,8:F0}");
            foreach (var (k, v) in goals) o.WriteLine($"  {k}: {v:F3}");
        }

        private static double Median(IEnumerable<double> xs)
        {
            var a = xs.Order().ToArray();
            return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
        }

        /// <summary>This process's resident memory now (VmRSS), in MB.</summary>
        public static double RssMb()
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmRSS:")) return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
            return 0;
        }
    }

    /// <summary>One timed answer: frame to first token (a new picture), the same on an unchanged picture, stages, decode speed.</summary>
    internal sealed record Sample(int VisualTokens, double TtftMs, double StaticTtftMs, double VisionMs, double PrefillMs, int PrefillPositions,
        double DecodeTokS, double RssMb);
}
