using System.Globalization;

namespace Assistant.Engine;

/// <summary>
/// The inference-optimal scaling law of arXiv 2411.03312: error(N, V) = a * N^-alpha * V^-beta + d, with N the
/// decoder's parameters (billions in the paper's data) and V the visual tokens.
/// </summary>
public sealed record LawParameters(double A, double Alpha, double Beta, double D)
{
    /// <summary>Predicted error at <paramref name="n"/> billion decoder parameters and <paramref name="v"/> visual tokens.</summary>
    public double Error(double n, double v) => A * Math.Pow(n, -Alpha) * Math.Pow(v, -Beta) + D;

    /// <summary>1 - <see cref="Error"/>, held to [0, 1]: outside the range it was fitted on a law can predict an error above 1 (a negative accuracy) for a tiny decoder.</summary>
    public double Accuracy(double n, double v) => Math.Clamp(1 - Error(n, v), 0, 1);

    /// <summary>
    /// V minimising error at fixed prefill compute N * (Q + V): V* = Q * beta / (alpha - beta). With a cached
    /// query (Q = 0) it is 0, i.e. the smallest V offered. Infinite when beta >= alpha (tokens pay better).
    /// </summary>
    public double OptimalTokens(double queryTokens) =>
        Alpha > Beta ? queryTokens * Beta / (Alpha - Beta) : double.PositiveInfinity;
}

/// <summary>A closed interval for one parameter.</summary>
public readonly record struct Range(double Lo, double Hi)
{
    /// <summary>Whether <paramref name="x"/> lies in [Lo, Hi].</summary>
    public bool Contains(double x) => x >= Lo && x <= Hi;
    /// <summary><paramref name="x"/> moved into [Lo, Hi].</summary>
    public double Clamp(double x) => Math.Clamp(x, Lo, Hi);
    /// <summary>"lo:hi", as --bounds takes it.</summary>
    public override string ToString() => $"{Lo.ToString(CultureInfo.InvariantCulture)}:{Hi.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>Box constraints of a fit. The exponents always need a finite search range.</summary>
public sealed record LawBounds(Range A, Range Alpha, Range Beta, Range D)
{
    /// <summary>The paper's bounds: a in [0.2, 0.7], alpha in [0, 0.2], beta in [0, 0.05], d in [0, 0.3].</summary>
    public static LawBounds Paper { get; } = new(new(0.2, 0.7), new(0, 0.2), new(0, 0.05), new(0, 0.3));

    /// <summary>No bounds on a and d; exponents searched over [0, 1].</summary>
    public static LawBounds None { get; } = new(new(double.NegativeInfinity, double.PositiveInfinity), new(0, 1), new(0, 1),
        new(double.NegativeInfinity, double.PositiveInfinity));

    /// <summary>Whether these are the unbounded bounds (<see cref="None"/>).</summary>
    public bool IsUnbounded => double.IsInfinity(D.Lo);

    /// <summary>"paper", "none", or "a=LO:HI,alpha=LO:HI,beta=LO:HI,d=LO:HI" (unnamed parameters keep the paper's bounds).</summary>
    public static LawBounds Parse(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        if (t == "paper") return Paper;
        if (t == "none") return None;
        var b = Paper;
        foreach (var part in t.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = part.Split('=');
            var lohi = kv.Length == 2 ? kv[1].Split(':') : [];
            if (lohi.Length != 2 || !double.TryParse(lohi[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var lo)
                || !double.TryParse(lohi[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var hi) || !(lo <= hi))
                throw new EngineException($"bad bound '{part}': write NAME=LO:HI with LO <= HI, e.g. alpha=0:0.2");
            var r = new Range(lo, hi);
            b = kv[0] switch
            {
                "a" => b with { A = r },
                "alpha" => b with { Alpha = r },
                "beta" => b with { Beta = r },
                "d" => b with { D = r },
                _ => throw new EngineException($"unknown parameter '{kv[0]}' in bounds: use a, alpha, beta, d"),
            };
        }
        if (double.IsInfinity(b.Alpha.Hi) || double.IsInfinity(b.Beta.Hi)) throw new EngineException("alpha and beta need finite bounds");
        return b;
    }

    /// <summary>"a=..,alpha=..,beta=..,d=..", as --bounds takes it.</summary>
    public override string ToString() => $"a={A},alpha={Alpha},beta={Beta},d={D}";
}

/// <summary>One measured configuration: decoder parameters N, visual tokens V, accuracy.</summary>
public readonly record struct ScalingPoint(double N, double V, double Accuracy);

/// <summary>
/// A fit: the best parameters, their residual, and 95% bootstrap intervals. AlphaAboveBeta is the share of
/// bootstrap refits with alpha > beta (NaN without resamples): the paper's claim tested on the paired
/// resamples, which overlapping marginal intervals cannot settle either way.
/// </summary>
public sealed record LawFit(LawParameters Best, double Sse, int Points, LawBounds Bounds, IReadOnlyDictionary<string, Range> Interval95,
    IReadOnlyList<string> AtBound, int Bootstrap, double AlphaAboveBeta)
{
    /// <summary>d below zero: an error floor under zero, the law's degenerate direction (bounds that allow it were given).</summary>
    public bool Degenerate => Best.D < 0;
}

/// <summary>
/// Bounded least squares for the law. For fixed (alpha, beta) the model is linear in (a, d), so those two
/// are solved exactly (with their box constraints); (alpha, beta) are searched on a coarse grid, then the
/// grid is zoomed around the best cell. Deterministic; the bootstrap resamples points with a seeded RNG.
/// </summary>
public static class ScalingLawFitter
{
    private const int Grid = 41, Fine = 9, Zooms = 14, Starts = 4;

    /// <summary>Least-squares fit of the law to <paramref name="points"/> within <paramref name="bounds"/>, with <paramref name="bootstrap"/> resampled refits (seeded by <paramref name="seed"/>) for 95% intervals.</summary>
    public static LawFit Fit(IReadOnlyList<ScalingPoint> points, LawBounds bounds, int bootstrap = 200, int seed = 0)
    {
        if (points.Count < 5)
            throw new EngineException($"{points.Count} points cannot fit the law's 4 parameters: at least 5 are needed");
        var best = FitOnce(points, bounds, out double sse);
        if (bounds.IsUnbounded && best.D < 0)
            throw new EngineException(
                $"the unbounded fit is degenerate: d = {best.D:G3} < 0 (an error floor below zero, alpha = {best.Alpha:G3}, beta = {best.Beta:G3}); fit with bounds, e.g. --bounds paper");

        var samples = new List<LawParameters>(bootstrap);
        var rng = new Random(seed);
        var resample = new ScalingPoint[points.Count];
        for (int b = 0; b < bootstrap; b++)
        {
            for (int i = 0; i < resample.Length; i++) resample[i] = points[rng.Next(points.Count)];
            samples.Add(FitOnce(resample, bounds, out _));
        }
        Range Interval(Func<LawParameters, double> f)
        {
            if (samples.Count == 0) return new Range(double.NaN, double.NaN);
            var xs = samples.Select(f).Order().ToArray();
            return new Range(xs[(int)(0.025 * (xs.Length - 1))], xs[(int)Math.Ceiling(0.975 * (xs.Length - 1))]);
        }
        var intervals = new Dictionary<string, Range>
        {
            ["a"] = Interval(p => p.A), ["alpha"] = Interval(p => p.Alpha), ["beta"] = Interval(p => p.Beta), ["d"] = Interval(p => p.D),
        };
        var atBound = new List<string>();
        void Check(string name, double v, Range r) { if (v <= r.Lo + 1e-9 || v >= r.Hi - 1e-9) atBound.Add(name); }
        Check("a", best.A, bounds.A);
        Check("alpha", best.Alpha, bounds.Alpha);
        Check("beta", best.Beta, bounds.Beta);
        Check("d", best.D, bounds.D);
        double alphaAboveBeta = samples.Count == 0 ? double.NaN : samples.Count(p => p.Alpha > p.Beta) / (double)samples.Count;
        return new LawFit(best, sse, points.Count, bounds, intervals, atBound, bootstrap, alphaAboveBeta);
    }

    private static LawParameters FitOnce(IReadOnlyList<ScalingPoint> points, LawBounds bounds, out double sse)
    {
        var logN = points.Select(p => Math.Log(p.N)).ToArray();
        var logV = points.Select(p => Math.Log(p.V)).ToArray();
        var y = points.Select(p => 1 - p.Accuracy).ToArray();
        var x = new double[points.Count];
        (double A, double D, double Sse) At(double alpha, double beta)
        {
            for (int k = 0; k < x.Length; k++) x[k] = Math.Exp(-alpha * logN[k] - beta * logV[k]);
            return SolveLinear(x, y, bounds.A, bounds.D);
        }

        // Coarse grid, log-spaced towards a zero lower bound: a degenerate optimum hides at tiny exponents.
        var alphas = Axis(bounds.Alpha);
        var betas = Axis(bounds.Beta);
        var coarse = new List<(double Alpha, double Beta, double Sse, int I, int J)>();
        for (int i = 0; i < alphas.Length; i++)
            for (int j = 0; j < betas.Length; j++)
                coarse.Add((alphas[i], betas[j], At(alphas[i], betas[j]).Sse, i, j));

        // Local refinement from the best few cells (the profile is flat and can have several basins):
        // a small grid over the neighbouring cells, zoomed in repeatedly.
        (double A, double Alpha, double Beta, double D, double Sse) best = (0, 0, 0, 0, double.PositiveInfinity);
        foreach (var start in coarse.OrderBy(c => c.Sse).Take(Starts))
        {
            var ra = new Range(alphas[Math.Max(start.I - 1, 0)], alphas[Math.Min(start.I + 1, alphas.Length - 1)]);
            var rb = new Range(betas[Math.Max(start.J - 1, 0)], betas[Math.Min(start.J + 1, betas.Length - 1)]);
            (double Alpha, double Beta) here = (start.Alpha, start.Beta);
            for (int zoom = 0; zoom < Zooms; zoom++)
            {
                double bestSse = double.PositiveInfinity;
                for (int i = 0; i < Fine; i++)
                    for (int j = 0; j < Fine; j++)
                    {
                        double alpha = ra.Lo + (ra.Hi - ra.Lo) * i / (Fine - 1), beta = rb.Lo + (rb.Hi - rb.Lo) * j / (Fine - 1);
                        double s = At(alpha, beta).Sse;
                        if (s < bestSse) (bestSse, here) = (s, (alpha, beta));
                    }
                double da = (ra.Hi - ra.Lo) / (Fine - 1), db = (rb.Hi - rb.Lo) / (Fine - 1);
                ra = new Range(Math.Max(bounds.Alpha.Lo, here.Alpha - da), Math.Min(bounds.Alpha.Hi, here.Alpha + da));
                rb = new Range(Math.Max(bounds.Beta.Lo, here.Beta - db), Math.Min(bounds.Beta.Hi, here.Beta + db));
            }
            var (a, d, sseHere) = At(here.Alpha, here.Beta);
            if (sseHere < best.Sse) best = (a, here.Alpha, here.Beta, d, sseHere);
        }
        sse = best.Sse;
        return new LawParameters(best.A, best.Alpha, best.Beta, best.D);
    }

    private static double[] Axis(Range r)
    {
        if (r.Lo > 0 || r.Hi <= 0)
            return Enumerable.Range(0, Grid).Select(i => r.Lo + (r.Hi - r.Lo) * i / (Grid - 1)).ToArray();
        // [0, hi]: zero, then hi * 10^-4 ... hi, evenly in log.
        return [0, .. Enumerable.Range(0, Grid - 1).Select(i => r.Hi * Math.Pow(10, -4 + 4.0 * i / (Grid - 2)))];
    }

    /// <summary>Least squares of y ~ a * x + d with a, d in their ranges (the optimum of a convex quadratic on a box).</summary>
    private static (double A, double D, double Sse) SolveLinear(double[] x, double[] y, Range ra, Range rd)
    {
        int n = x.Length;
        double sx = 0, sy = 0, sxx = 0, sxy = 0;
        for (int i = 0; i < n; i++) { sx += x[i]; sy += y[i]; sxx += x[i] * x[i]; sxy += x[i] * y[i]; }
        double Sse(double a, double d) { double s = 0; for (int i = 0; i < n; i++) { double r = y[i] - a * x[i] - d; s += r * r; } return s; }
        double det = n * sxx - sx * sx;
        if (Math.Abs(det) > 1e-18)
        {
            double a0 = (n * sxy - sx * sy) / det, d0 = (sy - a0 * sx) / n;
            if (ra.Contains(a0) && rd.Contains(d0)) return (a0, d0, Sse(a0, d0));
        }
        // The optimum lies on an edge of the box: best of the four edges, each a 1-D clamped solve.
        var candidates = new List<(double, double)>();
        foreach (var a in new[] { ra.Lo, ra.Hi }.Where(double.IsFinite))
            candidates.Add((a, rd.Clamp((sy - a * sx) / n)));
        foreach (var d in new[] { rd.Lo, rd.Hi }.Where(double.IsFinite))
            candidates.Add((sxx > 0 ? ra.Clamp((sxy - d * sx) / sxx) : ra.Clamp(0), d));
        if (candidates.Count == 0)  // singular and unbounded (x constant): a and d trade off; take a = 0
            candidates.Add((ra.Clamp(0), rd.Clamp(sy / n)));
        var bestC = candidates.MinBy(c => Sse(c.Item1, c.Item2));
        return (bestC.Item1, bestC.Item2, Sse(bestC.Item1, bestC.Item2));
    }

    /// <summary>Most points a fit takes.</summary>
    public const int MaxPoints = 2000;

    /// <summary>Largest points file read (1 MB).</summary>
    public const long MaxPointsFileBytes = 1L << 20;

    /// <summary>
    /// Reads points from CSV: '#' lines are comments; a header names the columns llm_params_b (N),
    /// visual_tokens (V) and accuracy, in any order. Every problem is one <see cref="EngineException"/> line.
    /// </summary>
    public static IReadOnlyList<ScalingPoint> ReadCsv(string path)
    {
        // Not a FIFO, a device or a link to one; the size and point caps keep a fit to seconds (the paper's grid
        // is 40 points; 10,000 once took 124 s, and a link to /dev/zero grew past 6 GB).
        Capture.RegularFile.Check(path, "points file", MaxPointsFileBytes);
        var lines = File.ReadAllLines(path).Select((l, i) => (Text: l.Trim(), Line: i + 1)).Where(l => l.Text.Length > 0 && !l.Text.StartsWith('#')).ToList();
        if (lines.Count == 0) throw new EngineException($"{path} has no header and no points");
        var header = lines[0].Text.Split(',').Select(h => h.Trim().ToLowerInvariant()).ToList();
        int Col(string name) => header.IndexOf(name) is var i and >= 0 ? i
            : throw new EngineException($"{path} has no '{name}' column (its header: {lines[0].Text}); needed: llm_params_b, visual_tokens, accuracy");
        int cn = Col("llm_params_b"), cv = Col("visual_tokens"), ca = Col("accuracy");
        if (lines.Count - 1 > MaxPoints) throw new EngineException($"{path} has {lines.Count - 1} points; the limit is {MaxPoints}");
        var points = new List<ScalingPoint>();
        foreach (var (text, line) in lines.Skip(1))
        {
            var cells = text.Split(',');
            double Cell(int c, string name)
            {
                if (c >= cells.Length) throw new EngineException($"{path}:{line}: missing the {name} value");
                return double.TryParse(cells[c].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) ? v
                    : throw new EngineException($"{path}:{line}: {name} '{cells[c].Trim()}' is not a number");
            }
            double n = Cell(cn, "llm_params_b"), v = Cell(cv, "visual_tokens"), acc = Cell(ca, "accuracy");
            if (n <= 0 || v <= 0) throw new EngineException($"{path}:{line}: N and V must be positive (got N = {n}, V = {v})");
            if (acc is < 0 or > 1) throw new EngineException($"{path}:{line}: accuracy {acc} is outside [0, 1]");
            points.Add(new ScalingPoint(n, v, acc));
        }
        return points;
    }
}
