using System.Diagnostics;
using System.Text.Json;
using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>
/// Measured speed of this machine and execution provider for one model set: the vision encoder and each
/// compressor graph per run, and per decoder a line ms = overhead + ms_per_mflop x MFLOP fitted to runs of
/// several lengths (small models are dominated by the per-run overhead, large ones by the FLOPs).
/// </summary>
public sealed record Calibration(string Set, string Provider, string Machine, DateTime MeasuredUtc, double VisionMs,
    IReadOnlyDictionary<string, double> CompressorMs, IReadOnlyDictionary<string, DecoderSpeed> Decoders)
{
    public static string CompressorKey(string decoder, string kind, int tokens) => $"{decoder}|{kind}|{tokens}";
}

/// <summary>Decoder latency model: overhead per run plus time per MFLOP of the run.</summary>
public sealed record DecoderSpeed(double OverheadMs, double MsPerMflop)
{
    public double Ms(double flops) => OverheadMs + MsPerMflop * flops / 1e6;
}

/// <summary>One candidate configuration with its predicted cost and accuracy.</summary>
public sealed record PlanCandidate(string Decoder, string Compressor, int Tokens, double PredictedAccuracy, AskFlops Flops,
    IReadOnlyDictionary<string, double> StageMs)
{
    public double TotalMs => StageMs.Values.Sum();
}

/// <summary>The planner's answer: the best configuration within the budget (or none), and the runner-up.</summary>
public sealed record Plan(double BudgetMs, bool Fits, PlanCandidate Choice, PlanCandidate? RunnerUp, IReadOnlyList<PlanCandidate> All);

/// <summary>What one plan is for: the latency budget per answer, the query's length, whether its KV cache is reused.</summary>
public sealed record PlanRequest(double LatencyMs, int QueryTokens = 12, bool CachedQuery = false, int AnswerTokens = 2, string Compressor = "quecc");

/// <summary>
/// Picks the (decoder, V) with the best accuracy predicted by the set's scaling law whose latency, predicted
/// from the FLOPs model and the machine's calibration, fits the budget. The live engine calls the same code.
/// </summary>
public static class Planner
{
    /// <summary>The law shipped in the manifest; sets without one cannot be planned for.</summary>
    public static LawParameters Law(Manifest manifest)
    {
        if (manifest.ScalingLaw is not { ValueKind: JsonValueKind.Object } law)
            throw new EngineException($"model set '{manifest.Name}' ships no scaling law: the planner needs one (manifest.json scaling_law)");
        double Get(string name) => law.TryGetProperty(name, out var v) && v.TryGetDouble(out var x) ? x
            : throw new EngineException($"manifest.json scaling_law has no number '{name}'");
        return new LawParameters(Get("a"), Get("alpha"), Get("beta"), Get("d"));
    }

    public static Plan Choose(Manifest manifest, LawParameters law, Calibration calibration, PlanRequest request)
    {
        if (!(request.LatencyMs > 0)) throw new EngineException($"--latency-ms must be positive, got {request.LatencyMs}");
        if (request.QueryTokens is < 0 or > 4096) throw new EngineException($"--query-tokens must be in 0..4096, got {request.QueryTokens}");
        var all = new List<PlanCandidate>();
        foreach (var d in manifest.Decoders)
        {
            if (!calibration.Decoders.TryGetValue(d.Name, out var speed))
                throw new EngineException($"calibration has no figures for decoder {d.Name}: recalibrate (--recalibrate)");
            foreach (var c in d.Compressors.Where(c => c.Kind == request.Compressor))
                foreach (int v in c.Tokens)
                {
                    var flops = FlopsModel.Ask(manifest.Vision, d, c.QueryAware, v, request.QueryTokens, request.AnswerTokens);
                    var key = Calibration.CompressorKey(d.Name, c.Kind, v);
                    if (!calibration.CompressorMs.TryGetValue(key, out var compressorMs))
                        throw new EngineException($"calibration has no figure for {key}: recalibrate (--recalibrate)");
                    double decodeMs = 0;
                    for (int i = 1; i < request.AnswerTokens; i++)
                        decodeMs += speed.Ms(FlopsModel.DecoderRun(d, 1, request.QueryTokens + v + 2 + i - 1));
                    var stages = new Dictionary<string, double>
                    {
                        ["vision"] = calibration.VisionMs,
                        ["query_prefill"] = request.CachedQuery ? 0 : speed.Ms(flops.QueryPrefill),
                        ["quecc"] = compressorMs,
                        ["visual_prefill"] = speed.Ms(flops.VisualPrefill),
                        ["decode"] = decodeMs,
                    };
                    all.Add(new PlanCandidate(d.Name, c.Kind, v, law.Accuracy(d.Params / 1e9, v), flops, stages));
                }
        }
        if (all.Count == 0) throw new EngineException($"model set '{manifest.Name}' has no '{request.Compressor}' compressor to plan with");
        // Best predicted accuracy first; ties go to the cheaper configuration.
        var fitting = all.Where(c => c.TotalMs <= request.LatencyMs).OrderByDescending(c => c.PredictedAccuracy).ThenBy(c => c.TotalMs).ToList();
        if (fitting.Count > 0)
            return new Plan(request.LatencyMs, true, fitting[0], fitting.Count > 1 ? fitting[1] : null, all);
        var cheapest = all.OrderBy(c => c.TotalMs).ToList();
        return new Plan(request.LatencyMs, false, cheapest[0], cheapest.Count > 1 ? cheapest[1] : null, all);
    }
}

/// <summary>
/// Measures a set on this machine (a few seconds) and caches the result per set, execution provider and
/// machine under the user's cache folder; <c>--recalibrate</c> measures again.
/// </summary>
public static class Calibrator
{
    private const int Warmup = 3, Reps = 15;

    /// <param name="cacheRoot">Where calibrations live; default $ASSISTANT_CACHE, else the user's local application data.</param>
    public static string CachePath(ModelSet set, string? cacheRoot = null)
    {
        var root = cacheRoot ?? Environment.GetEnvironmentVariable("ASSISTANT_CACHE")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "assistant");
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(set.Directory, "manifest.json")).Ticks;
        var name = $"{Sanitize(set.Manifest.Name)}-{set.Provider.ToString().ToLowerInvariant()}-{Sanitize(Environment.MachineName)}-{stamp}.json";
        return Path.Combine(root, "calibration", name);
    }

    private static string Sanitize(string s) => string.Concat(s.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '_'));

    /// <summary>The cached calibration, or a fresh measurement (written to the cache) when absent or asked for.</summary>
    public static (Calibration Calibration, bool Measured) Load(ModelSet set, bool refresh, string? cacheRoot = null)
    {
        var path = CachePath(set, cacheRoot);
        if (!refresh && File.Exists(path))
        {
            try
            {
                var cached = JsonSerializer.Deserialize<Calibration>(File.ReadAllText(path));
                if (cached is not null) return (cached, false);
            }
            catch (JsonException)
            {
                // A damaged cache file is measured again and overwritten below.
            }
        }
        var fresh = Measure(set);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, JsonSerializer.Serialize(fresh));
        return (fresh, true);
    }

    /// <summary>Median of <paramref name="reps"/> timed runs after <paramref name="warmup"/> untimed ones (first runs pay lazy initialisation).</summary>
    public static double MedianMs(Action body, int warmup = Warmup, int reps = Reps)
    {
        for (int i = 0; i < warmup; i++) body();
        var ms = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            long t = Stopwatch.GetTimestamp();
            body();
            ms[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }
        Array.Sort(ms);
        return ms[reps / 2];
    }

    public static Calibration Measure(ModelSet set)
    {
        var rng = new Random(7);
        var vision = set.Vision;
        for (int i = 0; i < vision.PixelBuffer.Length; i++) vision.PixelBuffer[i] = (float)rng.NextDouble();
        double visionMs = MedianMs(vision.Encode);

        var compressorMs = new Dictionary<string, double>();
        var decoders = new Dictionary<string, DecoderSpeed>();
        foreach (var lm in set.Decoders)
        {
            var query = Enumerable.Range(0, lm.Spec.Dim).Select(_ => (float)rng.NextDouble()).ToArray();
            foreach (var c in lm.Compressors)
                compressorMs[Calibration.CompressorKey(lm.Spec.Name, c.Spec.Kind, c.Tokens)] =
                    MedianMs(() => c.Compress(vision.Features, vision.FeaturesMulti, vision.Spec.Patches, query));

            // Decoder: runs of 1..66 new positions on a 16-position past, the way the engine makes them (prefills
            // into the step buffers, a decode step on its binding made once); least-squares line in MFLOP.
            int maxLen = 66;
            var embeds = Enumerable.Range(0, maxLen * lm.Spec.Dim).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
            using var empty = lm.EmptyCache();
            using var past = lm.Forward(empty, embeds, 16);
            var xs = new List<double> { FlopsModel.DecoderRun(lm.Spec, 1, 16) / 1e6 };
            var ys = new List<double> { DecodeStepMs(lm, past, embeds) };
            foreach (int t in new[] { 6, 18, 66 })
            {
                xs.Add(FlopsModel.DecoderRun(lm.Spec, t, 16) / 1e6);
                ys.Add(MedianMs(() => { using var s = lm.BeginDecode(past, embeds, t, 0); }));
            }
            double mx = xs.Average(), my = ys.Average();
            double slope = xs.Zip(ys).Sum(p => (p.First - mx) * (p.Second - my)) / xs.Sum(x => (x - mx) * (x - mx));
            slope = Math.Max(slope, 0);
            decoders[lm.Spec.Name] = new DecoderSpeed(Math.Max(my - slope * mx, 0), slope);
        }
        return new Calibration(set.Manifest.Name, set.Provider.ToString().ToLowerInvariant(), Environment.MachineName, DateTime.UtcNow,
            visionMs, compressorMs, decoders);
    }

    /// <summary>Median decode step after one position on <paramref name="past"/>, on bindings a first pass made (the steady state).</summary>
    private static double DecodeStepMs(LanguageModel lm, KvCache past, float[] embeds)
    {
        const int steps = 40;
        using (var warm = lm.BeginDecode(past, embeds, 1, steps))
            for (int i = 0; i < steps; i++) warm.Append(7);
        using var sequence = lm.BeginDecode(past, embeds, 1, Warmup + Reps);
        for (int i = 0; i < Warmup; i++) sequence.Append(7);
        var ms = new double[Reps];
        for (int i = 0; i < Reps; i++)
        {
            long t = Stopwatch.GetTimestamp();
            sequence.Append(7);
            ms[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }
        Array.Sort(ms);
        return ms[Reps / 2];
    }
}
