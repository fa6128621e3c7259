// The engine beside llama.cpp and ONNX Runtime GenAI on the same random-weight LLaVA checkpoint (docs/PERFORMANCE.md, "Peers"):
//   dotnet run -c Release --project bench/Peers -- [--size tiny|0.5b] [--precisions f32,q8,q4] [--reps 5] [--tokens 16] [--json] [--work DIR] [--plot PNG]
// --precisions runs each precision (default f32): q8/q4 are the engine's import --quant against llama.cpp's Q8_0/Q4_0
// of the same F32 GGUF (its own quantizer), with each runtime's logits on a fixed prompt set against its own F32.
// GenAI runs the set's own text decoder (tools/genai_model.py): no vision, the same number of prompt positions.
// --plot draws time to first token against V for the last size measured (docs/peers_ttft.png); with --from REPORT.json
// it redraws from an earlier --json report instead of measuring. --profile-decode [SET] [--past 594] prints one decode step's
// kernel time by ONNX operator. --agreement REFERENCE_SET OTHER_SET prints how far OTHER_SET's next-token logits are
// from REFERENCE_SET's on the prompt set (a trained set and its tools/quantize.py copy, say). --overhead [--reps N]
// times the engine's full-token decode against bare ONNX Runtime calls on the same graphs (bench/Peers/BareOrt.cs);
// --ab SET_A SET_B [--context 600] times two sets' decoder graphs that way, interleaved. --tower-ab A B [--image PNG] [--profile]
// times two vision towers (each a set or an ONNX file) on one picture, interleaved, and gives the cosine of every
// output they share to A's (an int8 tower against its F32 one: tools/quantize.py, tools/tower_layers.py), and with --profile the kernel time by operator.
// --engine-ab SET_A SET_B [--configs full:576,pool:4] [--tokens N] [--question TEXT] [--b-planned|--b-unplanned] times two sets
// through the engine's whole frame, interleaved (a decoder whose cache is written in place against one that appends to it, say;
// or one set twice, B with ONNX Runtime's memory pattern forced on or off for its text graphs).
// --genai-ab SET GENAI_DIR [--tokens N] [--own-arenas] [--profile] times the engine's full-token decode against GenAI on the same
// decoder (GENAI_DIR: tools/genai_model.py of SET), interleaved, with the share of the engine's decode spent inside ONNX Runtime
// runs; --profile prints both decode steps' kernel time by operator instead.
// --memory SET [--own-arenas] [--planned|--unplanned] [--question TEXT] loads SET alone and prints the process's resident growth after the load, a full-token
// answer and a pool V = 4 answer (one set a process: run it once per variant, alternating, to compare).
// Each size's checkpoint is made once into --work (tools/make_hf_checkpoint.py), imported for the engine
// (tools/import_hf.py) and written as GGUF for llama.cpp (tools/export_gguf.py). Runs are interleaved (ours and
// llama.cpp's alternate, rep by rep), the first rep of each is an untimed warm-up, and medians are reported.
using System.Diagnostics;
using System.Text.Json;
using Assistant.Bench;
using Assistant.Bench.Peers;
using Assistant.Inference;

var cli = new Assistant.Bench.BenchArgs(args);
var root = Assistant.Bench.BenchArgs.RepoRoot();
var work = cli.Get("--work", Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "assistant", "peers"));
int reps = cli.Int("--reps", 5), tokens = cli.Int("--tokens", 16);
if (reps < 2 || tokens < 2) { Console.Error.WriteLine("error: --reps and --tokens must be at least 2"); return 2; }
string[] sizes = cli.Has("--size") ? [cli.Get("--size", "tiny")] : ["tiny", "0.5b"];
var shapes = new Dictionary<string, string> { ["tiny"] = "tiny", ["0.5b"] = "clip336-qwen2-0.5b" };
foreach (var s in sizes)
    if (!shapes.ContainsKey(s)) { Console.Error.WriteLine($"error: --size is tiny or 0.5b, got '{s}'"); return 2; }
var precisions = cli.Get("--precisions", "f32").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
if (precisions.Length == 0 || precisions.Any(p => p is not ("f32" or "q8" or "q4")))
{
    Console.Error.WriteLine($"error: --precisions is a comma-separated list of f32, q8, q4, got '{cli.Get("--precisions", "")}'");
    return 2;
}

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
// The two model sets that follow OPTION (--agreement, --ab), or null after a one-line error.
(string, string)? TwoSets(string option)
{
    var after = args.SkipWhile(x => x != option).Skip(1).Take(2).ToArray();
    if (after.Length == 2 && !after.Any(x => x.StartsWith("--"))) return (after[0], after[1]);
    Console.Error.WriteLine($"error: {option} takes two model sets: SET_A SET_B");
    return null;
}
// ONNX Runtime's memory pattern forced on (PREFIXplanned) or off (PREFIXunplanned) for the text graphs; null: the provider's.
bool? Planned(string prefix) => cli.Has(prefix + "planned") ? true : cli.Has(prefix + "unplanned") ? false : null;
if (cli.Has("--agreement"))
{
    if (TwoSets("--agreement") is not ({ } reference, { } other)) return 2;
    var set = PromptSet.Make(reference);
    Console.WriteLine(JsonSerializer.Serialize(LogitAgreement.Of(PromptSet.Ours(reference, set), PromptSet.Ours(other, set)), json));
    return 0;
}
if (cli.Has("--ab"))
{
    // Two sets' decoder graphs (say, imported with --attention fused and plain) by bare ONNX Runtime calls,
    // interleaved rep by rep at the same context: their decode tokens/s and the ratio.
    if (TwoSets("--ab") is not ({ } a, { } b)) return 2;
    int context = cli.Int("--context", 600);
    using var first = new BareOrt(a, context, PromptSet.Ids(a));
    using var second = new BareOrt(b, context, PromptSet.Ids(b));
    var (aRuns, bRuns) = Runs.InterleaveSamples(reps, () => first.Run(tokens), () => second.Run(tokens));
    double Med(List<Sample> runs, Func<Sample, double> f) => Runs.Median(runs.Select(f));
    Console.WriteLine(JsonSerializer.Serialize(new { a, b, context, reps,
        a_decode_tok_s = Med(aRuns, s => s.DecodeTokS), b_decode_tok_s = Med(bRuns, s => s.DecodeTokS),
        a_over_b = Med(aRuns, s => s.DecodeTokS) / Med(bRuns, s => s.DecodeTokS),
        // the prompt's prefill (context positions) is each run's time to its first token
        a_prefill_ms = Med(aRuns, s => s.TtftMs), b_prefill_ms = Med(bRuns, s => s.TtftMs),
        prefill_a_over_b = Med(aRuns, s => s.TtftMs) / Med(bRuns, s => s.TtftMs),
        a_runs = aRuns.Select(s => s.DecodeTokS), b_runs = bRuns.Select(s => s.DecodeTokS) }, json));
    return 0;
}
if (cli.Has("--engine-ab"))
{
    // Two sets through the engine's own frame (query cached, tower, compressor, visual prefill, greedy decode), at
    // every compressor and V both offer (or --configs), interleaved rep by rep, the first rep a warm-up: what a graph
    // change (say, the cache written in place) buys the engine, not bare ONNX Runtime calls.
    if (TwoSets("--engine-ab") is not ({ } a, { } b)) return 2;
    var question = cli.Get("--question", Prompt.Question);  // a world set knows only its world's words
    using var first = new FrameLatency(a, Path.Combine(a, "golden", "image.png"), question, new SessionConfig(ExecutionProvider.Cpu));
    using var second = new FrameLatency(b, Path.Combine(b, "golden", "image.png"), question,
        new SessionConfig(ExecutionProvider.Cpu) { PlannedMemory = Planned("--b-") });
    var configs = cli.Has("--configs")
        ? cli.Get("--configs", "").Split(',').Select(c => c.Split(':')).Select(p => (Kind: p[0], V: p.Length > 1 ? int.Parse(p[1]) : 0)).ToList()
        : first.Configs().Intersect(second.Configs()).ToList();
    var rows = new List<object>();
    foreach (var (kind, v) in configs)
    {
        var (aRuns, bRuns) = Runs.InterleaveSamples(reps, () => Ours.Of(first.Run(kind, v, tokens)), () => Ours.Of(second.Run(kind, v, tokens)));
        double Med(List<Sample> runs, Func<Sample, double> f) => Runs.Median(runs.Select(f));
        rows.Add(new { kind, v, a_decode_tok_s = Med(aRuns, s => s.DecodeTokS), b_decode_tok_s = Med(bRuns, s => s.DecodeTokS),
            decode_a_over_b = Med(aRuns, s => s.DecodeTokS) / Med(bRuns, s => s.DecodeTokS),
            a_prefill_ms = Med(aRuns, s => s.PrefillMs), b_prefill_ms = Med(bRuns, s => s.PrefillMs),
            a_ttft_ms = Med(aRuns, s => s.TtftMs), b_ttft_ms = Med(bRuns, s => s.TtftMs),
            a_static_ttft_ms = Med(aRuns, s => s.StaticTtftMs), b_static_ttft_ms = Med(bRuns, s => s.StaticTtftMs),
            a_runs = aRuns.Select(s => s.DecodeTokS), b_runs = bRuns.Select(s => s.DecodeTokS) });
    }
    Console.WriteLine(JsonSerializer.Serialize(new { a, b, reps, tokens, configs = rows }, json));
    return 0;
}
if (cli.Has("--genai-ab"))
{
    // The engine's full-token frame against GenAI on the same set's decoder (GENAI_DIR: tools/genai_model.py of SET),
    // its prompt as long as the engine's context, interleaved rep by rep, the first rep a warm-up: the decode gap alone.
    if (TwoSets("--genai-ab") is not ({ } set, { } genaiDir)) return 2;
    using var ours = new FrameLatency(set, Path.Combine(set, "golden", "image.png"), Prompt.Question,
        new SessionConfig(ExecutionProvider.Cpu) { SharedCpuArena = !cli.Has("--own-arenas") });
    var (kind, v) = ours.Configs()[0];
    var first = ours.Run(kind, v, tokens);
    using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(set, "golden", "golden.json")));
    int context = golden.RootElement.GetProperty("prefix_ids").GetArrayLength() + first.PrefillPositions;
    if (cli.Has("--profile"))
    {
        var (byOp, runMs, steps) = GenAi.ProfileDecode(genaiDir, context, PromptSet.Ids(set), tokens);
        Console.WriteLine($"GenAI decode step at context {context}: median {runMs:F1} ms a run (profiled), kernels {byOp.Values.Sum():F1} ms, over {steps} steps");
        foreach (var (op, ms) in byOp.OrderByDescending(x => x.Value).Take(12)) Console.WriteLine($"  {op,-24} {ms,8:F2} ms/step");
        Assistant.Bench.DecodeProfile.Print(set, context - 1, steps, Console.Out);
        return 0;
    }
    using var genai = new GenAi(genaiDir, context, PromptSet.Ids(set));
    genai.Run(tokens);
    var shares = new List<double>();
    var (oursTokS, genaiTokS) = Runs.Interleave(reps, () => { var s = ours.Run(kind, v, tokens); shares.Add(s.DecodeRunShare); return Ours.Of(s); }, () => genai.Run(tokens));
    Console.WriteLine(JsonSerializer.Serialize(new { set, genai = genaiDir, context, reps, tokens, ours_decode_in_ort_runs = Runs.Median(shares),
        ours_decode_tok_s = Runs.Median(oursTokS), genai_decode_tok_s = Runs.Median(genaiTokS),
        ours_over_genai = Runs.Median(oursTokS) / Runs.Median(genaiTokS), ours_runs = oursTokS, genai_runs = genaiTokS }, json));
    return 0;
}
if (cli.Has("--memory"))
{
    var set = args.SkipWhile(x => x != "--memory").Skip(1).FirstOrDefault();
    if (set is null || set.StartsWith("--")) { Console.Error.WriteLine("error: --memory takes a model set"); return 2; }
    var config = new SessionConfig(ExecutionProvider.Cpu) { SharedCpuArena = !cli.Has("--own-arenas"), PlannedMemory = Planned("--") };
    double before = Runs.RssMb();
    using var frames = new FrameLatency(set, Path.Combine(set, "golden", "image.png"), cli.Get("--question", Prompt.Question), config);
    double loaded = Runs.RssMb();
    var (fullKind, fullV) = frames.Configs()[0];
    frames.Run(fullKind, fullV, tokens);
    double full = Runs.RssMb();
    frames.Run("pool", 4, tokens);
    double pool = Runs.RssMb();
    // Then warm timings, so that a variant that saves memory is seen not to cost time (medians of 3).
    var fullRuns = new List<FrameSample>();
    var poolRuns = new List<FrameSample>();
    for (int rep = 0; rep < 3; rep++)
    {
        fullRuns.Add(frames.Run(fullKind, fullV, tokens));
        poolRuns.Add(frames.Run("pool", 4, tokens));
    }
    var growth = new { set, shared_cpu_arena = config.SharedCpuArena, planned_memory = config.PlannedMemory?.ToString() ?? "provider default", load_mb = loaded - before, after_full_mb = full - before,
        after_pool4_mb = pool - before, after_timed_mb = Runs.RssMb() - before, managed_mb = GC.GetTotalMemory(false) / 1048576.0,
        full_ttft_ms = Runs.Median(fullRuns.Select(r => r.TtftMs)), full_decode_tok_s = Runs.Median(fullRuns.Select(r => r.DecodeTokS)),
        pool4_ttft_ms = Runs.Median(poolRuns.Select(r => r.TtftMs)), pool4_decode_tok_s = Runs.Median(poolRuns.Select(r => r.DecodeTokS)) };
    Console.WriteLine(JsonSerializer.Serialize(growth, json));
    return 0;
}
if (cli.Has("--tower-ab"))
{
    if (TwoSets("--tower-ab") is not ({ } a, { } b)) return 2;
    var result = TowerAb.Run(a, b, cli.Has("--image") ? cli.Get("--image", "") : null, reps, cli.Has("--profile"));
    if (cli.Has("--json")) Console.WriteLine(JsonSerializer.Serialize(result, json));
    else
    {
        Console.WriteLine($"tower A {result.AMs:F2} ms, B {result.BMs:F2} ms (medians of {reps}, interleaved): A / B = {result.AOverB:F2}");
        foreach (var o in result.Outputs)
            Console.WriteLine($"  {o.Name}: cosine to A min {o.MinCosine:F5} mean {o.MeanCosine:F5}; max |diff| {o.MaxAbs:G3} (A's range {o.Spread:G3})");
        foreach (var (label, ops) in new[] { ("A", result.AKernelMsByOp), ("B", result.BKernelMsByOp) })
            if (ops is not null)
                Console.WriteLine($"  {label} kernel ms per call: {string.Join(", ", ops.Take(10).Select(kv => $"{kv.Key} {kv.Value:F1}"))}");
    }
    return 0;
}
if (cli.Has("--overhead"))
{
    // The engine's full-token decode against bare ONNX Runtime calls on the same graphs at the same context,
    // interleaved rep by rep (the first rep a warm-up): overhead = bare tokens/s over the engine's.
    var dirs = Checkpoints.Prepare(root, Path.Combine(work, sizes[^1]), shapes[sizes[^1]], precisions[0]);
    using var ours = new Ours(dirs);
    var (kind, v) = ours.Configs()[0];
    var first = ours.Run(kind, v, tokens);
    using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(dirs.Set, "golden", "golden.json")));
    int context = golden.RootElement.GetProperty("prefix_ids").GetArrayLength() + first.PrefillPositions;
    using var bare = new BareOrt(dirs.Set, context, PromptSet.Ids(dirs.Set));
    bare.Run(tokens);
    var (oursTokS, bareTokS) = Runs.Interleave(reps, () => ours.Run(kind, v, tokens), () => bare.Run(tokens));
    var result = new { size = sizes[^1], precision = precisions[0], context, reps, ours_decode_tok_s = Runs.Median(oursTokS), bare_ort_decode_tok_s = Runs.Median(bareTokS),
        overhead = Runs.Median(bareTokS) / Runs.Median(oursTokS), ours_runs = oursTokS, bare_runs = bareTokS };
    Console.WriteLine(JsonSerializer.Serialize(result, json));
    return 0;
}
if (cli.Has("--profile-decode"))
{
    // A set named after the option, or the bench's own checkpoint at --size and the first of --precisions.
    var named = args.SkipWhile(x => x != "--profile-decode").Skip(1).Take(1).Where(x => !x.StartsWith("--")).ToArray();
    var set = named.Length == 1 ? named[0] : Checkpoints.Prepare(root, Path.Combine(work, sizes[^1]), shapes[sizes[^1]], precisions[0]).Set;
    Assistant.Bench.DecodeProfile.Print(set, cli.Int("--past", 594), cli.Int("--steps", 10), Console.Out);
    return 0;
}
// GenAI's native library releases its globals when this handle goes (it warns of leaks at exit otherwise).
using var oga = new Microsoft.ML.OnnxRuntimeGenAI.OgaHandle();
var report = new Dictionary<string, object>();
int measured = 0;
foreach (var size in sizes)
{
    var bySize = new Dictionary<string, object>();
    report[size] = bySize;
    Dictionary<string, List<float[]>>? f32Logits = null;
    IReadOnlyList<int[]>? prompts = null;
    foreach (var precision in precisions.OrderBy(p => p == "f32" ? 0 : 1))
    {
        var dirs = Checkpoints.Prepare(root, Path.Combine(work, size), shapes[size], precision);
        var (rows, memory) = Runs.Measure(dirs, reps, tokens, Console.Error);
        var summary = Runs.Summarise(dirs, rows);
        // Logits on the fixed prompt set: each runtime's quantized weights against its own F32 weights, and at F32
        // the two runtimes against each other (the independent check, on text only).
        prompts ??= PromptSet.Make(dirs.Set);
        var f32 = Checkpoints.Prepare(root, Path.Combine(work, size), shapes[size], "f32");
        f32Logits ??= new()
        {
            ["ours"] = PromptSet.Ours(f32.Set, prompts),
            ["llama.cpp"] = PromptSet.LlamaCpp(f32.TextGguf, prompts),
            ["genai"] = GenAi.Logits(f32.GenAi, prompts),
        };
        var agreement = precision == "f32"
            ? new Dictionary<string, LogitAgreement>
            {
                ["ours_vs_llamacpp"] = LogitAgreement.Of(f32Logits["llama.cpp"], f32Logits["ours"]),
                ["ours_vs_genai"] = LogitAgreement.Of(f32Logits["genai"], f32Logits["ours"]),
            }
            : new Dictionary<string, LogitAgreement>
            {
                ["ours"] = LogitAgreement.Of(f32Logits["ours"], PromptSet.Ours(dirs.Set, prompts)),
                ["llama.cpp"] = LogitAgreement.Of(f32Logits["llama.cpp"], PromptSet.LlamaCpp(dirs.TextGguf, prompts)),
                ["genai"] = LogitAgreement.Of(f32Logits["genai"], GenAi.Logits(dirs.GenAi, prompts)),
            };
        if (precision == "q4") summary["q4_top1_agreement_ours"] = agreement["ours"].Top1;
        var files = new Dictionary<string, double>
        {
            ["ours_mb"] = dirs.SetGraphBytes / 1e6, ["llama_cpp_mb"] = dirs.GgufBytes / 1e6, ["genai_mb"] = dirs.GenAiBytes / 1e6,
        };
        // Memory is the growth of this process's resident set, so it holds only for the first set a process loads
        // (freed pages are reused by the next one): run one precision per process for it (docs/PERFORMANCE.md).
        string? memoryNote = null;
        if (measured++ > 0)
        {
            memory.Clear();
            memoryNote = $"not measured: {precision} was not the first set this process loaded; run --precisions {precision} alone for it";
            Console.Error.WriteLine($"peers: {memoryNote}");
        }
        bySize[precision] = new { runs = rows, goals = summary, memory, memory_note = memoryNote, agreement, files };
        if (!cli.Has("--json")) Runs.Print($"{size} {precision}", dirs, rows, summary, memory, agreement, files, Console.Out);
        if (cli.Has("--plot") && precision == "f32") Chart.Save(cli.Get("--plot", "peers_ttft.png"), size, rows);
    }
}
report["machine"] = new { cores = Environment.ProcessorCount, os = System.Runtime.InteropServices.RuntimeInformation.OSDescription, when = DateTime.UtcNow };
if (cli.Has("--json"))
    Console.WriteLine(JsonSerializer.Serialize(report, json));
return 0;

namespace Assistant.Bench.Peers
{
    /// <summary>One size's folders at one precision: the checkpoint, the engine's set, the GGUF pair.</summary>
    internal sealed record Dirs(string Checkpoint, string Gguf, string Precision)
    {
        /// <summary>The engine's set: the F32 import, or the one imported with --quant.</summary>
        public string Set => Path.Combine(Path.GetDirectoryName(Checkpoint)!, Precision == "f32" ? "set" : $"set-{Precision}");

        /// <summary>llama.cpp's text model: the F32 GGUF, or llama.cpp's own Q8_0/Q4_0 of it.</summary>
        public string TextGguf => Path.Combine(Gguf, Precision == "f32" ? "text.gguf" : $"text-{Precision}_0.gguf");

        /// <summary>llama.cpp's vision tower and projector: F32, or its matrices in Q8_0/Q4_0 blocks written by
        /// tools/export_gguf.py --mmproj-quant (LLamaSharp exposes no mmproj quantizer), as the engine's tower is.</summary>
        public string MmprojGguf => Path.Combine(Gguf, Precision == "f32" ? "mmproj.gguf" : $"mmproj-{Precision}_0.gguf");

        /// <summary>GenAI's model folder: the set's embed and decoder graphs joined (tools/genai_model.py).</summary>
        public string GenAi => Path.Combine(Path.GetDirectoryName(Checkpoint)!, Precision == "f32" ? "genai" : $"genai-{Precision}");

        public string Image => Path.Combine(Set, "golden", "image.png");

        public long SetGraphBytes => Directory.EnumerateFiles(Set, "*.onnx*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

        public long GgufBytes => new FileInfo(TextGguf).Length + new FileInfo(MmprojGguf).Length;

        public long GenAiBytes => Directory.EnumerateFiles(GenAi).Sum(f => new FileInfo(f).Length);
    }

    internal static class Checkpoints
    {
        /// <summary>Makes (once) the checkpoint of <paramref name="shape"/>, its set and its GGUF files under <paramref name="dir"/>.</summary>
        public static Dirs Prepare(string root, string dir, string shape, string precision)
        {
            var d = new Dirs(Path.Combine(dir, "hf"), Path.Combine(dir, "gguf"), precision);
            if (!Directory.Exists(d.Checkpoint)) Python(root, "make_hf_checkpoint.py", ["--out", d.Checkpoint, "--shape", shape]);
            if (!Directory.Exists(d.Set))
                Python(root, "import_hf.py", [d.Checkpoint, "--out", d.Set, .. precision == "f32" ? Array.Empty<string>() : ["--quant", precision]]);
            if (!File.Exists(Path.Combine(d.Gguf, "text.gguf"))) Python(root, "export_gguf.py", [d.Checkpoint, "--out", d.Gguf]);
            if (precision != "f32" && !File.Exists(d.MmprojGguf))
                Python(root, "export_gguf.py", [d.Checkpoint, "--out", d.Gguf, "--mmproj-quant", $"{precision}_0"]);
            if (!Directory.Exists(d.GenAi)) Python(root, "genai_model.py", [d.Set, "--out", d.GenAi]);
            if (!File.Exists(d.TextGguf))
            {
                // llama.cpp's own quantizer, as `llama-quantize text.gguf text-q4_0.gguf q4_0` would (output tensor included).
                Console.Error.WriteLine($"peers: llama.cpp quantize {precision}_0 -> {d.TextGguf}");
                var partial = d.TextGguf + ".partial";
                LLama.Native.NativeApi.llama_max_devices();  // loads llama.cpp's native library (the quantizer's import does not)
                var type = precision == "q8" ? LLama.Native.LLamaFtype.MOSTLY_Q8_0 : LLama.Native.LLamaFtype.MOSTLY_Q4_0;
                if (!LLama.LLamaQuantizer.Quantize(Path.Combine(d.Gguf, "text.gguf"), partial, type, Environment.ProcessorCount, true, true))
                    throw new InvalidOperationException($"llama.cpp could not quantize to {precision}_0");
                File.Move(partial, d.TextGguf);
            }
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

        public static (List<Row> Rows, Dictionary<string, double> Memory) Measure(Dirs d, int reps, int tokens, TextWriter log)
        {
            // Each runtime's own memory: the growth of this process's resident set over its load and one untimed
            // full-token answer (ours first, then llama.cpp, then GenAI on top), as the pages a runtime touches stay resident.
            double before = RssMb();
            using var ours = new Ours(d);
            var (fullKind, fullV) = ours.Configs()[0];
            ours.Run(fullKind, fullV, tokens);
            double afterOurs = RssMb();
            using var llama = new LlamaCpp(d);
            var first = llama.Run(tokens);
            double afterLlama = RssMb();
            using var genai = new GenAi(d, first.PrefillPositions, PromptSet.Ids(d.Set));
            genai.Run(tokens);
            double afterGenAi = RssMb();
            var memory = new Dictionary<string, double>
            {
                ["ours_mb"] = afterOurs - before, ["llama_cpp_mb"] = afterLlama - afterOurs, ["genai_mb"] = afterGenAi - afterLlama,
            };
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
                Thread.Sleep(Pause);
                var g = genai.Run(tokens);
                if (rep > 0) Add("genai|decoder", g);
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
            return (rows, memory);

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
            var genai = rows.Single(r => r.Runtime == "genai");
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
                ["decode_vs_genai"] = full.DecodeTokS / genai.DecodeTokS,
                ["prefill_tok_s_vs_genai"] = full.PrefillTokS / genai.PrefillTokS,
                ["ttft_v4_vs_llamacpp_full"] = measured,
                ["ttft_ratio_predicted_by_flops"] = predicted,
                ["ttft_share_of_prediction"] = measured / predicted,
                ["decoder_share_llamacpp_over_ours_v4"] = llama.PrefillMs / four.PrefillMs,
                ["static_frame_llamacpp_over_ours_v4"] = llama.TtftMs / four.StaticTtftMs,
                ["vision_ours_over_llamacpp"] = full.VisionMs / llama.VisionMs,
            };
        }

        public static void Print(string title, Dirs d, List<Row> rows, Dictionary<string, object> goals, Dictionary<string, double> memory,
            Dictionary<string, LogitAgreement> agreement, Dictionary<string, double> files, TextWriter o)
        {
            o.WriteLine($"== {title}: {d.Checkpoint} (medians; ms)");
            o.WriteLine($"{"runtime",-10} {"config",-8} {"V",5} {"ttft",9} {"static",9} {"vision",9} {"prefill",9} {"prefill t/s",12} {"decode t/s",11} {"rss MB",8}");
            foreach (var r in rows)
                o.WriteLine($"{r.Runtime,-10} {r.Config,-8} {r.VisualTokens,5} {r.TtftMs,9:F1} {r.StaticTtftMs,9:F1} {r.VisionMs,9:F1} {r.PrefillMs,9:F1} {r.PrefillTokS,12:F0} {r.DecodeTokS,11:F1} {r.PeakRssMb,8:F0}");
            foreach (var (k, v) in goals) o.WriteLine($"  {k}: {v:F3}");
            foreach (var (k, v) in memory) o.WriteLine($"  resident {k}: {v:F0}");
            foreach (var (k, v) in files) o.WriteLine($"  files {k}: {v:F0}");
            foreach (var (k, a) in agreement)
                o.WriteLine($"  logits {k}: top-1 {a.Top1:P1} of {a.Prompts}, max |diff| {a.MaxAbs:G3} (mean per prompt {a.MeanMaxAbs:G3}; F32 range {a.Spread:G3})");
        }

        /// <summary>
        /// <paramref name="a"/> and <paramref name="b"/> alternately, a pause before each, for a warm-up rep and
        /// <paramref name="reps"/> kept ones: each one's decode tokens/s per kept rep.
        /// </summary>
        public static (List<double> A, List<double> B) Interleave(int reps, Func<Sample> a, Func<Sample> b)
        {
            var (xs, ys) = InterleaveSamples(reps, a, b);
            return ([.. xs.Select(x => x.DecodeTokS)], [.. ys.Select(y => y.DecodeTokS)]);
        }

        /// <summary>As above, each kept rep's whole sample.</summary>
        public static (List<Sample> A, List<Sample> B) InterleaveSamples(int reps, Func<Sample> a, Func<Sample> b)
        {
            var (xs, ys) = (new List<Sample>(), new List<Sample>());
            for (int rep = 0; rep <= reps; rep++)
            {
                Thread.Sleep(Pause);
                var x = a();
                Thread.Sleep(Pause);
                var y = b();
                if (rep == 0) continue;
                xs.Add(x);
                ys.Add(y);
            }
            return (xs, ys);
        }

        public static double Median(IEnumerable<double> xs)
        {
            var a = xs.Order().ToArray();
            return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
        }

        /// <summary>This process's resident memory now (VmRSS), in MB.</summary>
        public static double RssMb()
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmRSS:")) return double.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;  // "VmRSS:\t8123456 kB"
            return 0;
        }
    }

    /// <summary>One timed answer: frame to first token (a new picture), the same on an unchanged picture, stages, decode speed.</summary>
    internal sealed record Sample(int VisualTokens, double TtftMs, double StaticTtftMs, double VisionMs, double PrefillMs, int PrefillPositions,
        double DecodeTokS, double RssMb);
}
