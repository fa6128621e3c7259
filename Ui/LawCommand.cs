using System.CommandLine;
using System.Text.Json;
using Assistant.Engine;

namespace Assistant.Ui;

/// <summary><c>assistant law fit</c>: fit error = a N^-alpha V^-beta + d to measured points, with bootstrap intervals.</summary>
internal static class LawCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var points = new Option<string>("--points") { Description = "CSV with columns llm_params_b, visual_tokens, accuracy ('#' lines are comments)", Required = true };
        var bounds = new Option<string>("--bounds") { Description = "paper (default), none, or a=LO:HI,alpha=LO:HI,beta=LO:HI,d=LO:HI", DefaultValueFactory = _ => "paper" };
        var bootstrap = new Option<int>("--bootstrap") { Description = "bootstrap resamples for the 95% intervals", DefaultValueFactory = _ => 200 };
        var seed = new Option<int>("--seed") { Description = "bootstrap seed", DefaultValueFactory = _ => 0 };
        var json = Cli.JsonOption();
        var fit = new Command("fit", "Fit the scaling law to measured (N, V, accuracy) points and print the exponents with 95% intervals and the compute-optimal V.")
        {
            points, bounds, bootstrap, seed, json,
        };
        fit.SetAction(parse =>
        {
            int resamples = parse.GetValue(bootstrap);
            if (resamples is < 0 or > 10000) throw new EngineException($"--bootstrap must be in 0..10000, got {resamples}");
            var data = ScalingLawFitter.ReadCsv(parse.GetValue(points)!);
            var result = ScalingLawFitter.Fit(data, LawBounds.Parse(parse.GetValue(bounds)!), resamples, parse.GetValue(seed));
            var p = result.Best;
            if (result.Degenerate)
                stderr.WriteLine($"warning: d = {p.D:G3} < 0: the fit took the law's degenerate direction your bounds allow; the paper's bounds keep d >= 0");
            if (parse.GetValue(json))
            {
                stdout.WriteLine(JsonSerializer.Serialize(new
                {
                    // Non-finite values (a beta of 0 makes alpha / beta infinite) are null: JSON has no infinity.
                    a = Finite(p.A), alpha = Finite(p.Alpha), beta = Finite(p.Beta), d = Finite(p.D), sse = Finite(result.Sse), points = result.Points,
                    bounds = result.Bounds.ToString(), bootstrap = result.Bootstrap,
                    interval95 = result.Interval95.ToDictionary(kv => kv.Key, kv => new[] { Finite(kv.Value.Lo), Finite(kv.Value.Hi) }),
                    at_bound = result.AtBound,
                    degenerate = result.Degenerate,
                    alpha_over_beta = Finite(p.Alpha / p.Beta),
                    alpha_above_beta_share = Finite(result.AlphaAboveBeta),
                    // null where beta >= alpha: more visual tokens always pay, no finite optimum
                    optimal_tokens = new Dictionary<string, double?> { ["q0"] = Finite(p.OptimalTokens(0)), ["q50"] = Finite(p.OptimalTokens(50)) },
                }));
                return 0;
            }
            string Row(string name, double v) => $"  {name,-6} {v,8:F4}   95% [{result.Interval95[name].Lo:F4}, {result.Interval95[name].Hi:F4}]{(result.AtBound.Contains(name) ? "   (at its bound)" : "")}";
            stdout.WriteLine($"error = a * N^-alpha * V^-beta + d   ({result.Points} points, bounds {result.Bounds}, {result.Bootstrap} bootstrap resamples)");
            stdout.WriteLine(Row("a", p.A));
            stdout.WriteLine(Row("alpha", p.Alpha));
            stdout.WriteLine(Row("beta", p.Beta));
            stdout.WriteLine(Row("d", p.D));
            stdout.WriteLine($"  SSE {result.Sse:G3}; alpha / beta = {p.Alpha / p.Beta:F2}" +
                (double.IsNaN(result.AlphaAboveBeta) ? "" : $"; alpha > beta in {100 * result.AlphaAboveBeta:F0}% of the bootstrap refits"));
            stdout.WriteLine(p.Alpha > p.Beta
                ? $"  compute-optimal V at fixed N*(Q+V): Q=50 -> {p.OptimalTokens(50):F1}; Q=0 (cached query) -> the smallest V"
                : "  beta >= alpha: at fixed N*(Q+V) more visual tokens always pay (no finite compute-optimal V)");
            return 0;
        });
        return new Command("law", "The inference-optimal scaling law.") { fit };
    }

    private static double? Finite(double v) => double.IsFinite(v) ? v : null;
}
