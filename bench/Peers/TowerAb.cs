using System.Diagnostics;
using Assistant.Capture;
using Assistant.Inference;
using Assistant.Shaders;
using Microsoft.ML.OnnxRuntime;

namespace Assistant.Bench.Peers;

/// <summary>
/// Two vision towers (a set's F32 graph and its int8 copy, say) on the same picture, each in a session made as the
/// engine makes it: run time per call, interleaved call by call after a warm-up, and the cosine of every output the
/// two graphs share (the features, or every layer where tools/tower_layers.py exposed them) to the first one's.
/// </summary>
internal static class TowerAb
{
    public sealed record OutputAgreement(string Name, double MinCosine, double MeanCosine, double MaxAbs, double Spread);

    public sealed record Result(string A, string B, string Image, int Reps, double AMs, double BMs, double AOverB,
        List<double> ARuns, List<double> BRuns, List<OutputAgreement> Outputs,
        Dictionary<string, double>? AKernelMsByOp = null, Dictionary<string, double>? BKernelMsByOp = null);

    /// <param name="a">The reference tower: a model set or an ONNX file.</param>
    /// <param name="b">The tower measured against it.</param>
    /// <param name="image">The picture (the set's golden picture when null).</param>
    /// <param name="profile">Also each tower's kernel time per call by ONNX operator (ONNX Runtime's profiler, in sessions
    /// of its own with as many threads as cores, three calls after the timed ones).</param>
    public static Result Run(string a, string b, string? image, int reps, bool profile = false)
    {
        var (aFile, spec) = Locate(a);
        var (bFile, _) = Locate(b);
        image ??= Path.Combine(Directory.Exists(a) ? a : Path.GetDirectoryName(a)!, "golden", "image.png");
        var frame = ImageFile.Load(image);
        var pixels = new float[3 * spec.ImageSize * spec.ImageSize];
        Preprocess.ResizeNormalize(frame.Rgb, frame.Width, frame.Height, spec.ImageSize, spec.Mean.ToArray(), spec.Std.ToArray(), pixels,
            centerCrop: spec.Crop == "center");
        var factory = new SessionFactory(SessionConfig.Default);
        using var first = factory.Create(aFile);
        using var second = factory.Create(bFile);
        var input = first.InputMetadata.Keys.Single();
        using var value = OrtValue.CreateTensorValueFromMemory(pixels, [1, 3, spec.ImageSize, spec.ImageSize]);
        var shared = first.OutputMetadata.Keys.Where(second.OutputMetadata.ContainsKey).ToArray();
        if (shared.Length == 0) throw new InvalidOperationException($"{a} and {b} share no output name");

        float[][] Outputs(InferenceSession s)
        {
            using var outs = s.Run(new RunOptions(), [input], [value], shared);
            return [.. outs.Select(o => o.GetTensorDataAsSpan<float>().ToArray())];
        }
        double Time(InferenceSession s)
        {
            var clock = Stopwatch.StartNew();
            using var outs = s.Run(new RunOptions(), [input], [value], shared);
            return clock.Elapsed.TotalMilliseconds;
        }

        var reference = Outputs(first);
        var measured = Outputs(second);
        var agreement = shared.Select((name, i) => Agreement(name, reference[i], measured[i], spec.Dim)).ToList();
        var (xs, ys) = (new List<double>(), new List<double>());
        for (int rep = 0; rep < reps; rep++)
        {
            Thread.Sleep(200);
            xs.Add(Time(first));
            Thread.Sleep(200);
            ys.Add(Time(second));
        }
        double am = Runs.Median(xs), bm = Runs.Median(ys);
        Dictionary<string, double>? Profile(string file)
        {
            if (!profile) return null;
            const int calls = 3;
            using var options = new SessionOptions { EnableProfiling = true, IntraOpNumThreads = Environment.ProcessorCount,
                ProfileOutputPathPrefix = Path.Combine(Path.GetTempPath(), $"tower-profile-{Guid.NewGuid():N}") };
            using var session = new InferenceSession(file, options);
            for (int i = 0; i < calls; i++)
                using (session.Run(new RunOptions(), [input], [value], shared)) { }
            return DecodeProfile.KernelTimes(session.EndProfiling()).ByOp.OrderByDescending(kv => kv.Value)
                .ToDictionary(kv => kv.Key, kv => kv.Value / calls);
        }
        return new Result(aFile, bFile, image, reps, am, bm, am / bm, xs, ys, agreement, Profile(aFile), Profile(bFile));
    }

    private static (string File, VisionSpec Spec) Locate(string setOrFile)
    {
        if (Directory.Exists(setOrFile))
        {
            var manifest = Manifest.Read(setOrFile);
            return (Path.Combine(setOrFile, manifest.Vision.File), manifest.Vision);
        }
        // A bare graph beside (or inside a folder beside) its set's manifest: the tower's size and normalisation from there.
        var dir = Path.GetDirectoryName(Path.GetFullPath(setOrFile))!;
        var set = File.Exists(Path.Combine(dir, "manifest.json")) ? dir : Path.GetDirectoryName(dir)!;
        return (setOrFile, Manifest.Read(set).Vision);
    }

    /// <summary>Cosine per row of <paramref name="width"/> values (a patch's feature vector), its minimum and mean,
    /// the largest absolute difference and the reference's range.</summary>
    private static OutputAgreement Agreement(string name, float[] reference, float[] other, int width)
    {
        if (reference.Length != other.Length) throw new InvalidOperationException($"output {name}: {reference.Length} values against {other.Length}");
        if (reference.Length % width != 0) width = reference.Length;
        double min = 1, sum = 0, maxAbs = 0;
        int rows = reference.Length / width;
        for (int r = 0; r < rows; r++)
        {
            double dot = 0, na = 0, nb = 0;
            for (int i = r * width; i < (r + 1) * width; i++)
            {
                dot += (double)reference[i] * other[i];
                na += (double)reference[i] * reference[i];
                nb += (double)other[i] * other[i];
                maxAbs = Math.Max(maxAbs, Math.Abs(reference[i] - other[i]));
            }
            double cos = na == 0 && nb == 0 ? 1 : dot / Math.Sqrt(na * nb);
            min = Math.Min(min, cos);
            sum += cos;
        }
        return new OutputAgreement(name, min, sum / rows, maxAbs, reference.Max() - reference.Min());
    }
}
