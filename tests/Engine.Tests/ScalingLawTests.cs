using Assistant.Tests;

namespace Assistant.Engine.Tests;

public sealed class ScalingLawTests
{
    private static readonly string PaperCsv = Path.Combine(Repo.Root, "tests", "data", "paper_scaling_points.csv");

    private static string TempCsv(string text)
    {
        var path = Path.Combine(Path.GetTempPath(), $"assistant-law-{Guid.NewGuid():N}.csv");
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void PaperPoints_WithPaperBounds_GiveThePapersExponents()
    {
        var points = ScalingLawFitter.ReadCsv(PaperCsv);
        Assert.Equal(28, points.Count);
        var fit = ScalingLawFitter.Fit(points, LawBounds.Paper, bootstrap: 100);
        var p = fit.Best;
        Assert.InRange(p.Alpha, 0.065, 0.085);
        Assert.InRange(p.Beta, 0.012, 0.018);
        Assert.InRange(p.Alpha / p.Beta, 4, 6);
        Assert.InRange(p.OptimalTokens(50), 8, 20);
        Assert.Equal(0, p.OptimalTokens(0));  // a cached query: the smallest V offered
        // The independent refit in the data file's header: SSE 3.96e-4.
        Assert.InRange(fit.Sse, 3.5e-4, 4.1e-4);
        Assert.True(fit.Interval95["alpha"].Contains(p.Alpha));
        Assert.True(fit.Interval95["beta"].Lo < fit.Interval95["beta"].Hi);
        Assert.True(fit.AlphaAboveBeta >= 0.95, $"alpha > beta in {fit.AlphaAboveBeta:P0} of the paper's bootstrap refits");
    }

    [Fact]
    public void PaperPoints_WithoutBounds_AreRefusedAsDegenerate()
    {
        var e = Assert.Throws<EngineException>(() => ScalingLawFitter.Fit(ScalingLawFitter.ReadCsv(PaperCsv), LawBounds.None, bootstrap: 0));
        Assert.Contains("degenerate", e.Message);
        Assert.Contains("d = -", e.Message);
    }

    [Fact]
    public void PaperPoints_WithLooseBoundsAllowingNegativeD_AreFlaggedDegenerate()
    {
        var fit = ScalingLawFitter.Fit(ScalingLawFitter.ReadCsv(PaperCsv), LawBounds.Parse("a=-100:100,alpha=0:1,beta=0:1,d=-10:10"), bootstrap: 0);
        Assert.True(fit.Degenerate);
        Assert.True(fit.Best.Alpha < 0.02);  // the drift the paper describes: tiny exponents, negative floor
    }

    [Fact]
    public void RecoversKnownParameters_FromNoisyPoints()
    {
        var truth = new LawParameters(0.5, 0.1, 0.03, 0.05);
        var rng = new Random(42);
        // Wide N and V ranges: the floor d is only identifiable where the curve flattens towards it.
        var points = (from n in new[] { 0.1, 1, 10, 100, 1000, 10000 }
                      from v in new[] { 1.0, 4, 16, 64, 256, 1024, 4096 }
                      select new ScalingPoint(n, v, truth.Accuracy(n, v) + 0.002 * (rng.NextDouble() * 2 - 1))).ToList();
        var fit = ScalingLawFitter.Fit(points, LawBounds.Parse("a=0.1:1,alpha=0:0.3,beta=0:0.1,d=0:0.3"), bootstrap: 100, seed: 1);
        Assert.InRange(fit.Best.Alpha, 0.09, 0.11);
        Assert.InRange(fit.Best.Beta, 0.025, 0.035);
        Assert.InRange(fit.Best.A, 0.45, 0.55);
        Assert.InRange(fit.Best.D, 0.04, 0.06);
        Assert.True(fit.Interval95["alpha"].Contains(0.1));
    }

    [Fact]
    public void AlphaAboveBetaShare_FollowsWhichExponentIsLarger()
    {
        static List<ScalingPoint> Points(LawParameters truth, int seed)
        {
            var rng = new Random(seed);
            return (from n in new[] { 0.05, 0.15, 0.5, 1.5 }
                    from v in new[] { 1.0, 4, 16, 64 }
                    select new ScalingPoint(n, v, truth.Accuracy(n, v) + 0.01 * (rng.NextDouble() * 2 - 1))).ToList();
        }
        var bounds = LawBounds.Parse("a=0:10,alpha=0:0.5,beta=0:0.5,d=0:0.5");
        var sizePays = ScalingLawFitter.Fit(Points(new LawParameters(0.1, 0.3, 0.05, 0.05), 3), bounds, bootstrap: 60, seed: 2);
        var tokensPay = ScalingLawFitter.Fit(Points(new LawParameters(0.1, 0.05, 0.3, 0.05), 3), bounds, bootstrap: 60, seed: 2);
        Assert.True(sizePays.AlphaAboveBeta >= 0.9, $"alpha > beta in {sizePays.AlphaAboveBeta:P0} of refits where it holds");
        Assert.True(tokensPay.AlphaAboveBeta <= 0.1, $"alpha > beta in {tokensPay.AlphaAboveBeta:P0} of refits where beta is larger");
        Assert.True(double.IsNaN(ScalingLawFitter.Fit(Points(new LawParameters(0.1, 0.3, 0.05, 0.05), 3), bounds, bootstrap: 0).AlphaAboveBeta));
    }

    [Fact]
    public void Bounds_AreRespected()
    {
        var fit = ScalingLawFitter.Fit(ScalingLawFitter.ReadCsv(PaperCsv), LawBounds.Parse("alpha=0:0.05"), bootstrap: 0);
        Assert.InRange(fit.Best.Alpha, 0, 0.05);
        Assert.Contains("alpha", fit.AtBound);
    }

    [Theory]
    [InlineData("llm_params_b,accuracy\n1,0.5\n", "no 'visual_tokens' column")]
    [InlineData("llm_params_b,visual_tokens,accuracy\n1,4,high\n", "is not a number")]
    [InlineData("llm_params_b,visual_tokens,accuracy\n0,4,0.5\n", "must be positive")]
    [InlineData("llm_params_b,visual_tokens,accuracy\n1,-4,0.5\n", "must be positive")]
    [InlineData("llm_params_b,visual_tokens,accuracy\n1,4,1.5\n", "outside [0, 1]")]
    [InlineData("llm_params_b,visual_tokens,accuracy\n1,4\n", "missing the accuracy value")]
    public void BadPointsFiles_AreOneLineErrors(string csv, string expected)
    {
        var e = Assert.Throws<EngineException>(() => ScalingLawFitter.ReadCsv(TempCsv(csv)));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void TooFewPoints_AreRefused()
    {
        var points = ScalingLawFitter.ReadCsv(TempCsv("llm_params_b,visual_tokens,accuracy\n1,1,0.4\n1,4,0.45\n2,1,0.5\n2,4,0.55\n"));
        var e = Assert.Throws<EngineException>(() => ScalingLawFitter.Fit(points, LawBounds.Paper));
        Assert.Contains("at least 5", e.Message);
    }

    [Theory]
    [InlineData("alpha=0.3:0.1")]
    [InlineData("gamma=0:1")]
    [InlineData("alpha=0")]
    public void BadBounds_AreOneLineErrors(string text) => Assert.Throws<EngineException>(() => LawBounds.Parse(text));
}
