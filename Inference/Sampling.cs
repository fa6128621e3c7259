namespace Assistant.Inference;

/// <summary>How answer tokens are chosen. Temperature 0 is greedy (argmax); otherwise softmax at that
/// temperature restricted to the smallest set of tokens whose probability reaches <see cref="TopP"/>.</summary>
public sealed record SamplingOptions(float Temperature = 0f, float TopP = 1f, int Seed = 0)
{
    /// <summary>Temperature 0: argmax.</summary>
    public static SamplingOptions Greedy { get; } = new();

    /// <summary>Refuses a negative or infinite temperature and a top-p outside (0, 1].</summary>
    public void Validate()
    {
        if (!(Temperature >= 0f) || float.IsInfinity(Temperature))
            throw new InferenceException($"temperature must be >= 0, got {Temperature}");
        if (!(TopP > 0f && TopP <= 1f))
            throw new InferenceException($"top-p must be in (0, 1], got {TopP}");
    }
}

/// <summary>Picks the next token from logits. Owns its random state (seeded) and a reused scratch buffer.</summary>
public sealed class Sampler
{
    private readonly SamplingOptions _options;
    private readonly Random _random;
    private float[] _probs = [];
    private int[] _order = [];

    /// <summary>A sampler seeded by <paramref name="options"/>.</summary>
    public Sampler(SamplingOptions options)
    {
        options.Validate();
        _options = options;
        _random = new Random(options.Seed);
    }

    /// <summary>The next token id from <paramref name="logits"/>.</summary>
    public int Next(ReadOnlySpan<float> logits)
    {
        if (_options.Temperature == 0f) return ArgMax(logits);
        int n = logits.Length;
        if (_probs.Length < n)
        {
            _probs = new float[n];
            _order = new int[n];
        }
        var probs = _probs.AsSpan(0, n);
        float max = logits[ArgMax(logits)];
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            probs[i] = MathF.Exp((logits[i] - max) / _options.Temperature);
            sum += probs[i];
        }
        var order = _order.AsSpan(0, n);
        for (int i = 0; i < n; i++) order[i] = i;
        // Descending probability; ties by id so a seed always gives the same choice.
        var p = _probs;
        order.Sort((a, b) => p[b] != p[a] ? p[b].CompareTo(p[a]) : a.CompareTo(b));
        double cut = _options.TopP * sum, kept = 0;
        int keep = 0;
        while (keep < n && (keep == 0 || kept < cut)) kept += probs[order[keep++]];
        double r = _random.NextDouble() * kept;
        for (int i = 0; i < keep; i++)
        {
            r -= probs[order[i]];
            if (r <= 0) return order[i];
        }
        return order[keep - 1];
    }

    /// <summary>Index of the largest value; the first on ties.</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }
}
