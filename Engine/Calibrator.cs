using System.Diagnostics;
using System.Text.Json;
using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>
/// Measures a set on this machine (a few seconds) and caches the result per set, execution provider and
/// machine under the user's cache folder; <c>--recalibrate</c> measures again.
/// </summary>
public static class Calibrator
{
    private const int Warmup = 3, Reps = 15;

    /// <param name="cacheRoot">Where calibrations live; default $ASSISTANT_CACHE, else the user's local application data.</param>
    /// <param name="set">The set the calibration is for (its name, provider and manifest's time stamp key the file).</param>
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
    public static (Calibration Calibration, bool Measured) Load(ModelSet set, bool refresh, string? cacheRoot = null, Action<string>? progress = null)
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
        var fresh = Measure(set, progress);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, JsonSerializer.Serialize(fresh));
        return (fresh, true);
    }

    /// <summary>Median of <paramref name="reps"/> timed runs after <paramref name="warmup"/> untimed ones (first runs pay lazy initialisation).</summary>
    /// <remarks>The one median-timing helper: the decode-step timing below and the benchmarks use it too.</remarks>
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

    /// <summary>
    /// Times every graph of <paramref name="set"/> on a lease of its own, so a pipeline running on the same
    /// set keeps its buffers (features, visual tokens, step buffers) as they were.
    /// </summary>
    public static Calibration Measure(ModelSet set, Action<string>? progress = null)
    {
        using var lease = set.Lease();  // lifetime: this measurement
        var clock = Stopwatch.StartNew();
        var rng = new Random(7);
        var vision = lease.Vision;
        for (int i = 0; i < vision.PixelBuffer.Length; i++) vision.PixelBuffer[i] = (float)rng.NextDouble();
        double visionMs = MedianMs(vision.Encode);
        if (progress is not null)
        {
            // The rest, from the FLOPs still to time at the vision encoder's speed: honest to a factor of about two (a
            // decoder step runs slower per FLOP than the encoder's large MatMuls), and said before the long part.
            double msPerFlop = visionMs / Math.Max(FlopsModel.Vision(set.Manifest.Vision), 1);
            double left = set.Decoders.Sum(m => (Warmup + Reps) * (new[] { 1, 6, 18, 66 }.Sum(t => FlopsModel.DecoderRun(m.Spec, t, 16)) + 40 * FlopsModel.DecoderRun(m.Spec, 1, 16)));
            progress($"calibrating this machine: the vision encoder takes {visionMs:F1} ms a run; {set.Decoders.Count} decoder(s) and their compressors next, " +
                     $"about {Duration(msPerFlop * left / 1000)} more (estimated from their FLOPs)");
        }

        var compressorMs = new Dictionary<string, double>();
        var decoders = new Dictionary<string, DecoderSpeed>();
        foreach (var model in set.Decoders)
        {
            var lm = lease.Decoder(model);
            var query = Enumerable.Range(0, lm.Spec.Dim).Select(_ => (float)rng.NextDouble()).ToArray();
            foreach (var c in model.Compressors)
                compressorMs[Calibration.CompressorKey(lm.Spec.Name, c.Spec.Kind, c.Tokens)] =
                    MedianMs(() => lease.Compressor(c).Compress(vision.Features, vision.FeaturesMulti, vision.Spec.Patches, query));

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
            progress?.Invoke($"calibrating this machine: decoder {lm.Spec.Name} timed ({decoders.Count}/{set.Decoders.Count}), {Duration(clock.Elapsed.TotalSeconds)} so far");
        }
        return new Calibration(set.Manifest.Name, set.Provider.ToString().ToLowerInvariant(), Environment.MachineName, DateTime.UtcNow,
            visionMs, compressorMs, decoders);
    }

    private static string Duration(double seconds) => seconds < 90 ? $"{seconds:F0} s" : $"{seconds / 60:F1} min";

    /// <summary>Median decode step after one position on <paramref name="past"/>, on bindings a first pass made (the steady state).</summary>
    private static double DecodeStepMs(DecoderState lm, KvCache past, float[] embeds)
    {
        const int steps = 40;
        using (var warm = lm.BeginDecode(past, embeds, 1, steps))
            for (int i = 0; i < steps; i++) warm.Append(7);
        using var sequence = lm.BeginDecode(past, embeds, 1, Warmup + Reps);
        return MedianMs(() => sequence.Append(7));
    }
}
