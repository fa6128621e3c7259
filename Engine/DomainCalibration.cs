using Assistant.Capture;
using Assistant.Capture.World;
using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>What a calibration measured: the manifest's new <c>domain</c> and the held-out scenes' score spread.</summary>
/// <param name="Mean">Per-channel mean of the averaged features.</param>
/// <param name="Std">Per-channel standard deviation.</param>
/// <param name="Threshold">Scores above it are unfamiliar.</param>
/// <param name="Scenes">Held-out scenes measured.</param>
/// <param name="Quantile">The share of them the threshold's base quantile keeps.</param>
/// <param name="P50">The scenes' median score.</param>
/// <param name="P99">Their 99th percentile.</param>
/// <param name="Max">Their largest.</param>
public sealed record DomainCalibrationResult(IReadOnlyList<float> Mean, IReadOnlyList<float> Std, double Threshold, int Scenes, double Quantile,
    double P50, double P99, double Max);

/// <summary>
/// Measures what a world set's scenes look like to its own encoder (<see cref="DomainSpec"/>): held-out scenes of the
/// validation split, half rendered at the set's own size and half at 256 px (what `world render` and the live world
/// write), each encoded and its features averaged; the mean and deviation per channel; then each scene's score and the
/// threshold: <see cref="Margin"/> times the <see cref="BaseQuantile"/> quantile of those scores, so that nearly every
/// scene of the kind passes while a photograph, a test card or a flat picture, far off in feature space, does not.
/// </summary>
public static class DomainCalibration
{
    /// <summary>The quantile of the held-out scores the threshold starts from.</summary>
    public const double BaseQuantile = 0.999;

    /// <summary>How far above that quantile the threshold sits.</summary>
    public const double Margin = 2.0;

    /// <summary>Measures <paramref name="scenes"/> held-out scenes on <paramref name="set"/>; <paramref name="progress"/> is told after each.</summary>
    public static DomainCalibrationResult Measure(LoadedModels set, int scenes, Action<int, int>? progress = null)
    {
        var models = set.Set;
        if (models.Manifest.World is not { } world) throw new EngineException($"'{set.Name}' is not a world-trained set: only world sets are domain-checked");
        if (scenes is < 100 or > 100_000) throw new EngineException($"--scenes must be in 100..100000, got {scenes}");
        var spec = models.Manifest.Vision;
        int dim = spec.Dim;
        var pooled = new float[scenes][];
        using (var gate = new SceneGate(models, 0))
        using (var lease = models.Lease())
        {
            long seed = WorldDefinition.Splits["val"].Lo;
            for (int i = 0; i < scenes; i++)
            {
                var objects = WorldScene.Generate(seed + i);
                Frame frame = WorldScene.RenderFrame(objects, i % 2 == 0 ? world.ImageSize : 256);
                gate.Preprocess(frame, lease.Vision);
                lease.Vision.Encode();
                pooled[i] = new float[dim];
                Familiarity.Pool(lease.Vision.Features, lease.Vision.Spec.Patches, dim, pooled[i]);
                progress?.Invoke(i + 1, scenes);
            }
        }
        var mean = new float[dim];
        var std = new float[dim];
        for (int j = 0; j < dim; j++)
        {
            double m = 0, v = 0;
            foreach (var p in pooled) m += p[j];
            m /= scenes;
            foreach (var p in pooled) v += (p[j] - m) * (p[j] - m);
            mean[j] = (float)m;
            std[j] = (float)Math.Max(Math.Sqrt(v / (scenes - 1)), 1e-6);
        }
        var domain = new DomainSpec(mean, std, 1, scenes, BaseQuantile);
        var scores = pooled.Select(p => Familiarity.Score(p, domain)).Order().ToArray();
        double Q(double q) => scores[Math.Min(scores.Length - 1, (int)Math.Ceiling(q * scores.Length) - 1)];
        return new DomainCalibrationResult(mean, std, Margin * Q(BaseQuantile), scenes, BaseQuantile, Q(0.5), Q(0.99), scores[^1]);
    }
}
