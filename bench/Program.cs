// Decoder benchmarks, printed as ratios measured in one run (this machine is shared and noisy; absolute
// milliseconds are reported for context only). Usage:
//   dotnet run -c Release --project bench -- [--models DIR] [--ep cpu] [--reps N] [--json]
//   dotnet run -c Release --project bench -- --soak-minutes 10 [--session]   (memory and handles over a long run:
//       the frame pipeline, or with --session the whole live session with its per-frame statistics)
//   dotnet run -c Release --project bench -- --frame-ttft SET [--against SET_B] [--configs pool:4,full:576] [--image PNG] [--ep cuda] [--reps 10] [--tokens 16] [--json]
//       (an imported set: changed and unchanged frame to first token and decode tokens/s at full and V = 1, 4, 16;
//       --against times a second set in the same run, interleaved, with the ratios of its medians to the first's)
//   dotnet run -c Release --project bench -- --preprocess [--ep cuda] [--reps 50]
//       (a frame's preparation: the C# kernels against their ONNX graphs, Inference/FrameKernels.cs)
//   dotnet run -c Release --project bench -- --profile-decode SET [--past 594] [--steps 10] [--ep cuda]
//       (one decode step's time by ONNX operator and execution provider)
using System.Diagnostics;
using System.Text.Json;
using Assistant.Engine;
using Assistant.Inference;

var cli = new Assistant.Bench.BenchArgs(args);
if (cli.Has("--frame-ttft")) return FrameTtft(cli);
if (cli.Has("--preprocess")) return PreprocessTimes(cli);
if (cli.Has("--profile-decode"))
{
    // One decode step's time by ONNX operator and provider, on a set's decoder graph (bench/Common/DecodeProfile.cs).
    Assistant.Bench.DecodeProfile.Print(cli.Get("--profile-decode", ""), cli.Int("--past", 594), cli.Int("--steps", 10), Console.Out,
        cuda: cli.Get("--ep", "cpu") == "cuda");
    return 0;
}
var modelsDir = cli.Get("--models", Path.Combine(Assistant.Bench.BenchArgs.RepoRoot(), "models", "default"));
var ep = ExecutionProviders.Parse(cli.Get("--ep", "cpu"));
int reps = cli.Int("--reps", 30);
bool json = cli.Has("--json");

using var set = ModelSet.Load(modelsDir, new SessionFactory(new SessionConfig(ep)));
var model = set.Decoder(set.Manifest.Default.Decoder);
using var lm = model.Lease();  // the decoder benchmarks' own state; lifetime: the run
int d = lm.Spec.Dim;
var rng = new Random(1);
float[] RandomEmbeds(int n) => Enumerable.Range(0, n * d).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();

// Median of `reps` timed runs after 3 untimed warm-ups (first runs pay ONNX Runtime's lazy initialisation).
double Median(Action body) => Calibrator.MedianMs(body, 3, reps);

var results = new List<Dictionary<string, object>>();

// Soak (--soak-minutes M, world-trained sets): the frame loop on the moving world with a new question every
// 50 frames for M minutes; after one minute of warm-up, managed heap (after a full GC), resident memory and
// open file descriptors are sampled each minute (managed: live bytes after a full compacting collection). Prints the samples and the growth from first to last.
if (cli.Has("--soak-minutes") && cli.Has("--session"))
    return await Assistant.Bench.SessionSoak.RunAsync(modelsDir, cli.Get("--ep", "cpu"), cli.Double("--soak-minutes", 10));
if (cli.Has("--soak-minutes"))
{
    double minutes = cli.Double("--soak-minutes", 10);
    if (set.Manifest.World is not { } soakWorld) throw new InvalidOperationException("the soak needs a world-trained set");
    var world = new Assistant.Capture.World.WorldSource(2_000_700, 0.004);
    using var loop = new Assistant.Engine.FramePipeline(set);
    var soakConfig = new AskConfig(Answer: new AnswerOptions(8));
    var samples = new List<Assistant.Bench.MemorySample>();
    var clock = Stopwatch.StartNew();
    long frames = 0;
    double nextSample = Math.Min(1.0, minutes);
    while (clock.Elapsed.TotalMinutes < minutes)
    {
        if (frames % 50 == 0)
        {
            var objs = world.ObjectsAt(frames);
            var q = Assistant.Capture.World.WorldQuestions.For(objs, Assistant.Capture.World.WorldQuestions.QuestionSeed(2_000_700, (int)(frames / 50)))
                    ?? Assistant.Capture.World.WorldQuestions.For(objs, Assistant.Capture.World.WorldQuestions.QuestionSeed(2_000_700, (int)(frames / 50)), "count")!;
            loop.SetQuery(q.Text);
        }
        loop.RunFrame(world.Render(frames, soakWorld.ImageSize), soakConfig, 8, AnswerMode.Live, new StageTimings(), new FrameStats(), CancellationToken.None);
        frames++;
        if (clock.Elapsed.TotalMinutes >= nextSample)
        {
            samples.Add(Assistant.Bench.MemorySample.Take(clock.Elapsed.TotalMinutes, frames));  // live bytes after a full compacting collection
            Console.WriteLine(samples[^1]);
            nextSample += 1.0;
        }
    }
    var first = samples[0];
    var last = samples[^1];
    Console.WriteLine($"soak: {frames} frames in {minutes:G} min ({frames / clock.Elapsed.TotalSeconds:F1} fps); from minute {first.Minute:F0} to {last.Minute:F0}: " +
                      $"managed {(last.Managed - first.Managed) / 1024:+#;-#;0} KiB, resident {(last.Resident - first.Resident) / (1024 * 1024):+#;-#;0} MiB, fds {last.Fds - first.Fds:+#;-#;0}");
    return 0;
}

// (1) One decode step with the KV cache against recomputing the whole sequence, at several context lengths.
foreach (int context in new[] { 16, 64, 256 })
{
    using var empty = lm.EmptyCache();
    var prefixEmbeds = RandomEmbeds(context);
    using var prefix = lm.Forward(empty, prefixEmbeds, context);
    var one = RandomEmbeds(1);
    double cached = Median(() => { using var c = lm.Forward(prefix, one, 1); });
    var all = RandomEmbeds(context + 1);
    double full = Median(() => { using var e = lm.EmptyCache(); using var c = lm.Forward(e, all, context + 1); });
    results.Add(new() { ["bench"] = "decode_step", ["context"] = context, ["cached_ms"] = cached, ["recompute_ms"] = full, ["recompute_over_cached"] = full / cached });
}

// (2) Visual prefill on a cached query: the full token count against V = 1 (the paper's Q = 0 case).
{
    var tokens = model.Compressors.Where(c => c.Spec.Kind == set.Manifest.Default.Compressor).Select(c => c.Tokens).ToArray();
    int vmin = tokens.Min(), vmax = tokens.Max();
    using var empty = lm.EmptyCache();
    using var query = lm.Forward(empty, RandomEmbeds(12), 12);
    var small = RandomEmbeds(vmin + 2);
    var large = RandomEmbeds(vmax + 2);
    double tSmall = Median(() => { using var c = lm.Forward(query, small, vmin + 2); });
    double tLarge = Median(() => { using var c = lm.Forward(query, large, vmax + 2); });
    results.Add(new() { ["bench"] = "visual_prefill", ["v_small"] = vmin, ["v_large"] = vmax, ["small_ms"] = tSmall, ["large_ms"] = tLarge, ["large_over_small"] = tLarge / tSmall });
}

// (3) Managed bytes allocated per decode step (embed + forward into the model's step buffers), steady state;
// and per answer token (the step, greedy sampling, the stop check and the token's text) through AnswerDecoder.
{
    using var empty = lm.EmptyCache();
    using var prefix = lm.Forward(empty, RandomEmbeds(16), 16);
    const int steps = 100;
    using (var warm = lm.BeginDecode(prefix, steps))  // makes the tensors and bindings for these lengths
        for (int i = 0; i < steps; i++) warm.Append(7);
    using var sequence = lm.BeginDecode(prefix, steps);
    sequence.Append(7);  // the first step binds the caller's prefix, once per answer
    long before = GC.GetAllocatedBytesForCurrentThread();
    for (int i = 1; i < steps; i++) sequence.Append(7);
    long perStep = (GC.GetAllocatedBytesForCurrentThread() - before) / (steps - 1);

    var options = new GenerationOptions(steps, StopTokens: [], RepeatLimit: 0);
    using var answer = new AnswerDecoder(lm, set.Tokenizer, prefix, options);
    answer.TryNext(out _);  // its step binds the prefix
    long beforeTokens = GC.GetAllocatedBytesForCurrentThread();
    int tokens = 0;
    while (answer.TryNext(out _)) tokens++;
    long perToken = tokens > 0 ? (GC.GetAllocatedBytesForCurrentThread() - beforeTokens) / tokens : 0;
    results.Add(new() { ["bench"] = "managed_bytes_per_decode_step", ["bytes"] = perStep, ["bytes_per_answer_token"] = perToken, ["tokens"] = tokens });
}

// (4) The frame loop on the moving world (world-trained sets only): query-KV reuse, and the scene-change gate.
if (set.Manifest.World is not null)
{
    var worldQuestion = Assistant.Capture.World.WorldQuestions.Generate(2_000_500, 1, "count")[0].Text;
    // Two tokens every frame whatever the answer (one decode step): the same ONNX Runtime work as before the word limit.
    var answer = new AskConfig(Answer: new AnswerOptions(2, IgnoreStop: true, RepeatLimit: 0));
    async Task<double> PerFrameMs(double speed, bool reuseQuery, int frames, Assistant.Engine.FramePipeline? shared = null)
    {
        var world = new Assistant.Capture.World.WorldSource(2_000_500, speed);
        var loop = shared ?? new Assistant.Engine.FramePipeline(set);
        loop.SetQuery(worldQuestion);
        var ms = new List<double>();
        for (int f = 0; f < frames + 3; f++)
        {
            var frame = world.Render(f, set.Manifest.World.ImageSize);
            long t = Stopwatch.GetTimestamp();
            var l = reuseQuery ? loop : new Assistant.Engine.FramePipeline(set);
            l.SetQuery(worldQuestion);
            await foreach (var _ in l.AnswerAsync(frame, answer, new StageTimings(), new FrameStats())) { }
            if (!reuseQuery) l.Dispose();
            if (f >= 3) ms.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);  // first 3 frames are warm-up
        }
        if (shared is null) loop.Dispose();
        ms.Sort();
        return ms[ms.Count / 2];
    }
    // Fast motion makes every frame new, so both runs encode every frame; only the query prefill differs.
    double reuse = await PerFrameMs(0.02, true, reps * 4);
    double fresh = await PerFrameMs(0.02, false, reps * 4);
    results.Add(new() { ["bench"] = "frame_with_query_kv_reuse", ["reuse_ms"] = reuse, ["no_reuse_ms"] = fresh, ["no_reuse_over_reuse"] = fresh / reuse });
    // Engine overhead: wall time per frame against (1) the summed stage times of the same frames (a stage is
    // the component call: the ONNX Runtime run plus binding its inputs and outputs) and (2) the time spent
    // inside ONNX Runtime's Run alone, as the components count it. Moving scene, query cached. Measured on the
    // live loop's path (FrameLoop.Step, what `assistant live` runs: 2 tokens per frame, live mode) and on the
    // one-shot streaming path (AnswerAsync, what `assistant ask` runs, which yields to the scheduler per token).
    foreach (var path in new[] { "live_step", "ask_stream" })
    {
        var world = new Assistant.Capture.World.WorldSource(2_000_501, 0.004);
        using var loop = new Assistant.Engine.FramePipeline(set);
        loop.SetQuery(worldQuestion);
        double wall = 0, stages = 0, bare = 0, preprocess = 0;
        for (int f = 0; f < reps * 8 + 3; f++)
        {
            var frame = world.Render(f, set.Manifest.World.ImageSize);
            var timings = new StageTimings();
            var runBefore = loop.RunTime;
            long t = Stopwatch.GetTimestamp();
            if (path == "live_step") loop.RunFrame(frame, answer, 2, AnswerMode.Live, timings, new FrameStats());
            else await foreach (var _ in loop.AnswerAsync(frame, answer, timings, new FrameStats())) { }
            double frameMs = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
            if (f < 3) continue;  // warm-up
            wall += frameMs;
            stages += timings.TotalMs;
            preprocess += timings[Stage.Preprocess];
            bare += (loop.RunTime - runBefore).TotalMilliseconds;
        }
        int n = reps * 8;
        results.Add(new() { ["bench"] = "engine_overhead", ["path"] = path, ["frames"] = n, ["loop_ms_per_frame"] = wall / n, ["stages_ms_per_frame"] = stages / n,
            ["bare_run_ms_per_frame"] = bare / n, ["preprocess_ms_per_frame"] = preprocess / n, ["loop_over_stages"] = wall / stages, ["loop_over_bare_runs"] = wall / bare });
    }
    // The real session loop (LiveSession, what `assistant live` runs) on the same moving world, 2 tokens per
    // frame: wall time from the end of the 3rd frame (warm-up) to the end of the last, over the time inside
    // ONNX Runtime's Run on those frames, as each frame report gives it; and the same less the source's time
    // (rendering the world frame), which the live_step path above does outside its timing. The answers are the
    // live_step path's (two tokens every frame), so the ratio differs by the session's own work. No observer but this one.
    {
        using var loaded = LoadedModels.Load(modelsDir, cli.Get("--ep", "cpu"));
        var options = LiveSessionOptions.Default with
        {
            Source = "world:2000501", Query = worldQuestion, Frames = reps * 8 + 3, TokensPerFrame = 2,
            Answer = answer.Answer!,  // the same two tokens a frame as live_step: the same ONNX Runtime work
        };
        using var session = LiveSession.Open(loaded, options);
        var timer = new Assistant.Bench.SessionTimer(warmup: 3);
        session.Observe(timer);
        await session.RunAsync();
        results.Add(new() { ["bench"] = "engine_overhead", ["path"] = "live_session", ["frames"] = timer.Frames, ["loop_ms_per_frame"] = timer.WallMs / timer.Frames,
            ["bare_run_ms_per_frame"] = timer.RunMs / timer.Frames, ["source_ms_per_frame"] = timer.AcquireMs / timer.Frames,
            ["loop_over_bare_runs"] = timer.WallMs / timer.RunMs, ["loop_less_source_over_bare_runs"] = (timer.WallMs - timer.AcquireMs) / timer.RunMs });
    }
    foreach (var speed in new[] { 0.0, 0.004 })
    {
        using var loop = new Assistant.Engine.FramePipeline(set);
        await PerFrameMs(speed, true, 97, loop);  // 100 frames in all
        results.Add(new() { ["bench"] = "vision_runs_per_100_frames", ["speed"] = speed, ["runs"] = loop.Counters.VisionRuns });
    }
}

var config = new Dictionary<string, object>
{
    ["models"] = set.Directory, ["set_name"] = set.Manifest.Name, ["decoder"] = lm.Spec.Name, ["ep"] = set.Provider.ToString().ToLowerInvariant(),
    ["reps"] = reps, ["machine"] = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}", ["date"] = DateTime.UtcNow.ToString("u"),
};
if (json)
{
    Console.WriteLine(JsonSerializer.Serialize(new { config, results }));
    return 0;
}
Console.WriteLine($"config: {string.Join(", ", config.Select(kv => $"{kv.Key}={kv.Value}"))}");
foreach (var r in results)
    Console.WriteLine(string.Join("  ", r.Select(kv => kv.Value is double x ? $"{kv.Key}={x:F3}" : $"{kv.Key}={kv.Value}")));
return 0;

// --frame-ttft SET: the frame loop's latency on an imported set, as the live loop meets it (bench/Common/FrameLatency.cs),
// for each compressor configuration: medians over --reps runs after one untimed warm-up, configurations interleaved
// rep by rep so that a slow patch of the machine falls on all of them.
static int FrameTtft(Assistant.Bench.BenchArgs cli)
{
    var setDir = cli.Get("--frame-ttft", "");
    var image = cli.Get("--image", Path.Combine(setDir, "golden", "image.png"));
    int reps = cli.Int("--reps", 10), tokens = cli.Int("--tokens", 16);
    if (reps < 1 || tokens < 2) { Console.Error.WriteLine("error: --reps must be at least 1 and --tokens at least 2"); return 2; }
    var clock = Stopwatch.StartNew();
    var sessions = SessionConfig.FromOption(cli.Get("--ep", "cpu"));
    var dirs = cli.Has("--against") ? new[] { setDir, cli.Get("--against", "") } : [setDir];
    var sets = new List<Assistant.Bench.FrameLatency>();
    try
    {
        foreach (var dir in dirs) sets.Add(new Assistant.Bench.FrameLatency(dir, image, "What is in this picture?", sessions));
        double loadMs = clock.Elapsed.TotalMilliseconds;
        if (sets.FirstOrDefault(f => !f.IsChatSet) is { } plain) { Console.Error.WriteLine($"error: --frame-ttft takes imported sets (ones with the full compressor): {dirs[sets.IndexOf(plain)]}"); return 2; }
        var configs = sets[0].Configs();
        if (cli.Has("--configs"))
        {
            var wanted = cli.Get("--configs", "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            configs = [.. configs.Where(c => wanted.Contains($"{c.Kind}:{c.V}"))];
            if (configs.Count == 0) { Console.Error.WriteLine($"error: --configs names none of this set's: {string.Join(", ", sets[0].Configs().Select(c => $"{c.Kind}:{c.V}"))}"); return 2; }
        }
        var samples = configs.SelectMany(c => Enumerable.Range(0, sets.Count).Select(i => (i, c))).ToDictionary(k => k, _ => new List<Assistant.Bench.FrameSample>());
        for (int rep = 0; rep <= reps; rep++)  // rep 0: warm-up (first runs pay ONNX Runtime's and the provider's lazy set-up)
            foreach (var c in configs)
                for (int i = 0; i < sets.Count; i++)
                {
                    var s = sets[i].Run(c.Kind, c.V, tokens);
                    if (rep > 0) samples[(i, c)].Add(s);
                }
        static double Median(IEnumerable<double> xs) { var a = xs.Order().ToArray(); return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2; }
        var rows = samples.Select(kv =>
        {
            var list = kv.Value;
            return new Dictionary<string, object>
            {
                ["set"] = dirs[kv.Key.i], ["compressor"] = kv.Key.c.Kind, ["v"] = kv.Key.c.V, ["ttft_ms"] = Median(list.Select(x => x.TtftMs)),
                ["static_ttft_ms"] = Median(list.Select(x => x.StaticTtftMs)), ["vision_ms"] = Median(list.Select(x => x.VisionMs)),
                ["prefill_ms"] = Median(list.Select(x => x.PrefillMs)), ["prefill_positions"] = list[0].PrefillPositions,
                ["decode_tok_s"] = Median(list.Select(x => x.DecodeTokS)),
            };
        }).ToList();
        // With --against: each configuration's first-set median over the second's (above 1: the second is faster).
        var ratios = sets.Count < 2 ? [] : configs.Select(c =>
        {
            var (a, b) = (rows.First(r => (string)r["set"] == dirs[0] && (string)r["compressor"] == c.Kind && (int)r["v"] == c.V),
                          rows.First(r => (string)r["set"] == dirs[1] && (string)r["compressor"] == c.Kind && (int)r["v"] == c.V));
            return new Dictionary<string, object>
            {
                ["compressor"] = c.Kind, ["v"] = c.V, ["ttft_first_over_second"] = (double)a["ttft_ms"] / (double)b["ttft_ms"],
                ["vision_first_over_second"] = (double)a["vision_ms"] / (double)b["vision_ms"],
                ["prefill_first_over_second"] = (double)a["prefill_ms"] / (double)b["prefill_ms"],
                ["decode_second_over_first"] = (double)b["decode_tok_s"] / (double)a["decode_tok_s"],
            };
        }).ToList();
        var config = new Dictionary<string, object>
        {
            ["sets"] = dirs.Select(Path.GetFullPath).ToArray(), ["ep"] = sets[0].Provider.ToString().ToLowerInvariant(), ["reps"] = reps, ["tokens"] = tokens,
            ["load_ms"] = loadMs, ["machine"] = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}", ["date"] = DateTime.UtcNow.ToString("u"),
        };
        if (cli.Has("--json")) { Console.WriteLine(JsonSerializer.Serialize(new { config, rows, ratios })); return 0; }
        Console.WriteLine($"config: {string.Join(", ", config.Select(kv => $"{kv.Key}={(kv.Value is string[] a ? string.Join(" ", a) : kv.Value)}"))}");
        Console.WriteLine($"{"set",-4} {"compressor",-10} {"V",5} {"ttft ms",9} {"static ms",9} {"vision ms",9} {"prefill ms",10} {"positions",9} {"decode tok/s",12}");
        foreach (var r in rows)
            Console.WriteLine($"{Array.IndexOf(dirs, (string)r["set"]),-4} {r["compressor"],-10} {r["v"],5} {(double)r["ttft_ms"],9:F2} {(double)r["static_ttft_ms"],9:F2} {(double)r["vision_ms"],9:F2} " +
                              $"{(double)r["prefill_ms"],10:F2} {r["prefill_positions"],9} {(double)r["decode_tok_s"],12:F1}");
        foreach (var r in ratios)
            Console.WriteLine($"{r["compressor"]} V={r["v"]}: set 0 over set 1: ttft {(double)r["ttft_first_over_second"]:F2}x, vision {(double)r["vision_first_over_second"]:F2}x, " +
                              $"prefill {(double)r["prefill_first_over_second"]:F2}x; decode set 1 over set 0 {(double)r["decode_second_over_first"]:F2}x");
        return 0;
    }
    finally
    {
        foreach (var f in sets) f.Dispose();
    }
}


// --preprocess: one frame's preparation for the tower, the C# kernels (Shaders/) against their ONNX graphs on the
// provider (Inference/FrameKernels), interleaved rep by rep; frames of camera and screen sizes, towers of 64 (the
// default set), 336 (CLIP-L/14) and 384 px (SigLIP); and the 16 x 16 scene-change thumbnail.
static int PreprocessTimes(Assistant.Bench.BenchArgs cli)
{
    int reps = cli.Int("--reps", 50);
    var ep = cli.Get("--ep", "cpu");
    using var set = ModelSet.Load(cli.Get("--models", Path.Combine(Assistant.Bench.BenchArgs.RepoRoot(), "models", "default")),
        new SessionFactory(SessionConfig.FromOption(ep) with { FrameGraphs = true }));
    using var kernels = set.LoadFrameKernels(Assistant.Shaders.FrameGraphs.PreprocessGraph, Assistant.Shaders.FrameGraphs.ThumbnailGraph)!;
    float[] mean = [0.481f, 0.458f, 0.408f], std = [0.269f, 0.261f, 0.276f];
    var rng = new Random(5);
    var rows = new List<Dictionary<string, object>>();
    foreach (var (w, h) in new[] { (640, 480), (1280, 720), (1920, 1080) })
    {
        var rgb = new byte[w * h * 3];
        rng.NextBytes(rgb);
        foreach (int size in new[] { 64, 336, 384 })
        {
            var dst = new float[3 * size * size];
            var region = Assistant.Shaders.FrameGraphs.Region(w, h, centerCrop: true);
            var (kernelMs, graphMs) = Interleaved(reps,
                () => Assistant.Shaders.Preprocess.ResizeNormalize(rgb, w, h, size, mean, std, dst, centerCrop: true),
                () => kernels.Preprocess(rgb, w, h, region, mean, std, dst, size));
            rows.Add(new() { ["what"] = "preprocess", ["frame"] = $"{w}x{h}", ["size"] = size, ["kernel_ms"] = kernelMs, ["graph_ms"] = graphMs, ["graph_over_kernel"] = graphMs / kernelMs });
        }
        var thumb = new float[16 * 16 * 3];
        var (k, g) = Interleaved(reps, () => Assistant.Shaders.SceneChange.Thumbnail(rgb, w, h, 16, thumb), () => kernels.Thumbnail(rgb, w, h, 16, thumb));
        rows.Add(new() { ["what"] = "thumbnail", ["frame"] = $"{w}x{h}", ["size"] = 16, ["kernel_ms"] = k, ["graph_ms"] = g, ["graph_over_kernel"] = g / k });
    }
    var config = new Dictionary<string, object> { ["ep"] = set.Provider.ToString().ToLowerInvariant(), ["reps"] = reps,
        ["machine"] = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}", ["date"] = DateTime.UtcNow.ToString("u") };
    if (cli.Has("--json")) { Console.WriteLine(JsonSerializer.Serialize(new { config, rows })); return 0; }
    Console.WriteLine($"config: {string.Join(", ", config.Select(kv => $"{kv.Key}={kv.Value}"))}");
    foreach (var r in rows)
        Console.WriteLine($"{r["what"],-10} {r["frame"],-9} -> {r["size"],3}: kernel {(double)r["kernel_ms"],7:F3} ms  graph {(double)r["graph_ms"],7:F3} ms  graph/kernel {(double)r["graph_over_kernel"],5:F2}");
    return 0;

    // Medians of the two bodies' times, alternating, after 3 warm-ups of each.
    static (double A, double B) Interleaved(int reps, Action a, Action b)
    {
        for (int i = 0; i < 3; i++) { a(); b(); }
        var ta = new double[reps];
        var tb = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            long t = Stopwatch.GetTimestamp();
            a();
            ta[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
            t = Stopwatch.GetTimestamp();
            b();
            tb[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }
        Array.Sort(ta);
        Array.Sort(tb);
        return (ta[reps / 2], tb[reps / 2]);
    }
}
