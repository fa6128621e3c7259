using System.Text.Json;
using Assistant.Inference;
using Assistant.Tests;

namespace Assistant.Engine.Tests;

public sealed class PlannerTests
{
    private static readonly Manifest Trained = Manifest.Read(Repo.TrainedModels);
    private static readonly long LargestParams = Trained.Decoders.Max(d => d.Params);

    /// <summary>A fixed, made-up machine: the set's larger decoder costs more per run than its smaller one.</summary>
    private static Calibration Synthetic()
    {
        var compressors = new Dictionary<string, double>();
        foreach (var d in Trained.Decoders)
            foreach (var c in d.Compressors)
                foreach (var v in c.Tokens)
                    compressors[Calibration.CompressorKey(d.Name, c.Kind, v)] = 0.1 + 0.01 * v;
        var speeds = Trained.Decoders.ToDictionary(d => d.Name, d => d.Params == LargestParams ? new DecoderSpeed(0.5, 0.02) : new DecoderSpeed(0.1, 0.02));
        return new Calibration(Trained.Name, "cpu", "test", DateTime.UnixEpoch, 0.5, compressors, speeds);
    }

    private static readonly LawParameters Law = Planner.Law(Trained);

    // A law under which parameters pay (the stage-2 scaling grid's fit, docs/SCALING.md: alpha 0.5, beta 0.03),
    // fixed here so the test does not hang on whatever law the shipped set was last fitted to.
    private static readonly LawParameters SizePays = new(A: 0.0021, Alpha: 0.5, Beta: 0.0325, D: 0.082);

    [Fact]
    public void LargerBudget_PicksALargerDecoder_WhenTheLawSaysSizePays()
    {
        long Params(PlanCandidate c) => Trained.Decoders.First(d => d.Name == c.Config.Decoder).Params;
        var large = Planner.Choose(Trained, SizePays, Synthetic(), new PlanRequest(100));
        // Just under the cheapest configuration of the larger decoder: only the smaller one fits.
        double tight = 0.99 * large.All.Where(c => Params(c) == LargestParams).Min(c => c.TotalMs);
        var small = Planner.Choose(Trained, SizePays, Synthetic(), new PlanRequest(tight));
        Assert.True(small.Fits && large.Fits);
        Assert.True(Params(large.Choice) > Params(small.Choice), $"{small.Choice.Config.Decoder} then {large.Choice.Config.Decoder}");
        Assert.True(large.Choice.PredictedAccuracy >= small.Choice.PredictedAccuracy);
    }

    [Fact]
    public void NeverExceedsTheBudget_WhenSomethingFits_AndTakesTheMostAccurateThatFits()
    {
        for (double budget = 0.5; budget < 60; budget *= 1.15)
        {
            var plan = Planner.Choose(Trained, Law, Synthetic(), new PlanRequest(budget));
            var fitting = plan.All.Where(c => c.TotalMs <= budget).ToList();
            Assert.Equal(fitting.Count > 0, plan.Fits);
            if (!plan.Fits) continue;
            Assert.True(plan.Choice.TotalMs <= budget);
            Assert.Equal(fitting.Max(c => c.PredictedAccuracy), plan.Choice.PredictedAccuracy);
            if (plan.RunnerUp is { } r) Assert.True(r.TotalMs <= budget && r.PredictedAccuracy <= plan.Choice.PredictedAccuracy);
        }
    }

    [Fact]
    public void NothingFits_SaysSo_AndOffersTheCheapest()
    {
        var plan = Planner.Choose(Trained, Law, Synthetic(), new PlanRequest(0.01));
        Assert.False(plan.Fits);
        Assert.Equal(plan.All.Min(c => c.TotalMs), plan.Choice.TotalMs);
    }

    [Fact]
    public void CachedQuery_DropsTheQueryPrefill()
    {
        var fresh = Planner.Choose(Trained, Law, Synthetic(), new PlanRequest(100, QueryTokens: 30));
        var cached = Planner.Choose(Trained, Law, Synthetic(), new PlanRequest(100, QueryTokens: 30, CachedQuery: true));
        Assert.All(cached.All, c => Assert.Equal(0, c.StageMs["query_prefill"]));
        Assert.True(fresh.All.Sum(c => c.TotalMs) > cached.All.Sum(c => c.TotalMs));
    }

    [Fact]
    public void ASetWithoutALaw_CannotBePlannedFor() =>
        Assert.Contains("no scaling law", Assert.Throws<EngineException>(() => Planner.Law(Manifest.Read(Repo.TinyModels))).Message);

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    [InlineData(double.NaN)]
    public void NonPositiveBudget_IsAnError(double budget) =>
        Assert.Throws<EngineException>(() => Planner.Choose(Trained, Law, Synthetic(), new PlanRequest(budget)));

    [Fact]
    public void Calibration_IsMeasuredOnce_ThenCached_AndRefreshable()
    {
        var root = Path.Combine(Path.GetTempPath(), $"assistant-cal-{Guid.NewGuid():N}");
        using var set = ModelSet.Load(Repo.TrainedModels, new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)));
        var (first, measured1) = Calibrator.Load(set, refresh: false, root);
        var (second, measured2) = Calibrator.Load(set, refresh: false, root);
        var (third, measured3) = Calibrator.Load(set, refresh: true, root);
        Assert.True(measured1);
        Assert.False(measured2);
        Assert.True(measured3);
        Assert.Equal(first.MeasuredUtc, second.MeasuredUtc);
        Assert.True(third.MeasuredUtc > first.MeasuredUtc);
        Assert.True(File.Exists(Calibrator.CachePath(set, root)));
        Assert.True(first.VisionMs > 0);
        Assert.Equal(8, first.CompressorMs.Count);
        Assert.All(first.Decoders.Values, s => Assert.True(s.OverheadMs >= 0 && s.MsPerMflop >= 0));
        // A damaged cache is measured again, not a crash.
        File.WriteAllText(Calibrator.CachePath(set, root), "{ not json");
        Assert.True(Calibrator.Load(set, refresh: false, root).Measured);
        Assert.NotNull(JsonSerializer.Deserialize<Calibration>(File.ReadAllText(Calibrator.CachePath(set, root))));
    }

    [Fact]
    public void AnImportedQwenSet_PlansWithItsQueryCompressor_UnderThePapersLaw()
    {
        var m = Manifest.Read(HfCheckpoints.Get("clip-qwen2-bf16-shards").Set);
        var law = m.ScalingLaw!.Value;
        Assert.Equal("paper", law.GetProperty("origin").GetString());  // marked as the paper's, not measured on the set
        var d = m.Decoders[0];
        var compressors = d.Compressors.SelectMany(c => c.Tokens.Select(v => (Calibration.CompressorKey(d.Name, c.Kind, v), 0.1)))
            .ToDictionary(x => x.Item1, x => x.Item2);
        var cal = new Calibration(m.Name, "cpu", "test", DateTime.UnixEpoch, 0.5, compressors, new Dictionary<string, DecoderSpeed> { [d.Name] = new(0.1, 0.02) });
        var plan = Planner.Choose(m, Planner.Law(m), cal, new PlanRequest(1000, QueryTokens: 18, CachedQuery: true));
        Assert.Equal("query", Planner.PlannedCompressor(m));
        Assert.All(plan.All, c => Assert.Equal("query", c.Config.Compressor));
        Assert.Equal([1, 4], plan.All.Select(c => c.Config.Tokens).Order());
        Assert.Equal(4, plan.Choice.Config.Tokens);  // the law: more visual tokens, lower error, and both fit
        var one = plan.All.Single(c => c.Config.Tokens == 1);
        Assert.True(plan.Choice.Flops.VisualPrefill > one.Flops.VisualPrefill);
    }
    [Fact]
    public void TheLawsAccuracy_IsHeldToZeroToOne_OutsideTheRangeItWasFittedOn()
    {
        var law = new LawParameters(0.5, 0.5, 0.1, 0.02);
        Assert.True(law.Error(1e-6, 1) > 1);  // a decoder far smaller than any fitted one
        Assert.Equal(0, law.Accuracy(1e-6, 1));
        Assert.Equal(1 - law.Error(1, 4), law.Accuracy(1, 4), 12);
        Assert.Equal(1, new LawParameters(0.1, 0.5, 0.1, -0.5).Accuracy(100, 64));
    }
}
