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
        float scale = 1f / _options.Temperature;
        if (_options.Temperature == 0f || float.IsInfinity(scale)) return ArgMax(logits);
        if (!VocabMath.TryMax(logits, out float max) || !float.IsFinite(max))
            throw NonFiniteLogits();
        int n = logits.Length;
        if (_probs.Length < n)
        {
            _probs = new float[n];
            _order = new int[n];
        }
        var probs = _probs.AsSpan(0, n);
        double sum = VocabMath.SumExp(logits, max, scale, probs);
        if (_options.TopP >= 1f) return Draw(probs, sum);
        int members = Nucleus(probs, _options.TopP * sum, _order, out double kept);
        double r = _random.NextDouble() * kept;
        for (int i = 0; i < members; i++)
        {
            r -= probs[_order[i]];
            if (r <= 0) return _order[i];
        }
        return _order[members - 1];
    }

    // Probabilities by their float bits' top 16 (exponent and 7 bits of mantissa): buckets ordered as the values,
    // each under 1% wide. Only probabilities up to 1 occur (softmax numerators over the largest logit).
    private const int BucketShift = 16, Buckets = (0x3F800000 >> BucketShift) + 1;
    private double[] _bucketMass = [];
    private int[] _bucketCount = [];
    private long[] _rankKeys = [];

    /// <summary>
    /// The nucleus of <paramref name="probs"/> (non-negative, at most 1): the most likely tokens, ties by lower id,
    /// until they hold <paramref name="cut"/> of the mass (at least one). Writes them to <paramref name="members"/>,
    /// those wholly inside in id order first, then the rest by rank; returns how many, with their mass in
    /// <paramref name="kept"/>. Sorting the whole vocabulary for this took 26 ms a token at 151,936 ids, as long as a
    /// 0.5B decode step on this 2-core CPU; here a histogram of the probabilities finds the bucket the cut falls in,
    /// and only that bucket is sorted.
    /// </summary>
    public int Nucleus(ReadOnlySpan<float> probs, double cut, Span<int> members, out double kept)
    {
        if (_bucketMass.Length == 0) (_bucketMass, _bucketCount) = (new double[Buckets], new int[Buckets]);
        Array.Clear(_bucketMass);
        Array.Clear(_bucketCount);
        int lowest = Buckets;
        for (int i = 0; i < probs.Length; i++)
        {
            if (!(probs[i] > 0)) continue;
            int b = Bucket(probs[i]);
            _bucketMass[b] += probs[i];
            _bucketCount[b]++;
            lowest = Math.Min(lowest, b);
        }
        if (lowest == Buckets) throw new InferenceException("no token has any probability to sample from", exitCode: 1);
        // The bucket the cut falls in; every bucket above it is inside. (Rounding can leave the cut past the last
        // bucket's sum: then every token is inside.)
        double above = 0;
        int boundary = lowest;
        for (int b = Buckets - 1; b > lowest; b--)
        {
            if (_bucketCount[b] == 0) continue;
            if (above + _bucketMass[b] >= cut) { boundary = b; break; }
            above += _bucketMass[b];
        }
        int count = 0, ranked = 0;
        if (_rankKeys.Length < _bucketCount[boundary]) _rankKeys = new long[_bucketCount[boundary]];
        for (int i = 0; i < probs.Length; i++)
        {
            if (!(probs[i] > 0)) continue;
            int b = Bucket(probs[i]);
            if (b > boundary) members[count++] = i;
            // The boundary bucket's tokens by rank: descending probability (a positive float's bits order as its
            // value), ties by ascending id, so a seed always gives the same choice.
            else if (b == boundary) _rankKeys[ranked++] = ((long)(int.MaxValue - BitConverter.SingleToInt32Bits(probs[i])) << 32) | (uint)i;
        }
        var keys = _rankKeys.AsSpan(0, ranked);
        keys.Sort();
        int start = count;
        foreach (long key in keys) members[count++] = (int)(key & 0xFFFFFFFF);
        kept = above;
        int end = start;
        while (end < count && (end == 0 || kept < cut)) kept += probs[members[end++]];
        return end;
    }

    private static int Bucket(float probability) => Math.Min(BitConverter.SingleToInt32Bits(probability) >> BucketShift, Buckets - 1);

    /// <summary>Every token in play (top-p 1): one uniform draw walked along the probabilities in id order.</summary>
    private int Draw(ReadOnlySpan<float> probs, double sum)
    {
        double r = _random.NextDouble() * sum;
        int last = 0;
        for (int i = 0; i < probs.Length; i++)
        {
            if (probs[i] <= 0) continue;
            last = i;
            r -= probs[i];
            if (r <= 0) return i;
        }
        return last;  // rounding left a sliver of r: the last token with any probability
    }

    /// <summary>The one error for logits with a NaN or an infinity (broken weights or normalisation), never text.</summary>
    internal static InferenceException NonFiniteLogits() =>
        new InferenceException("the decoder produced non-finite logits (NaN or infinity): the set's weights or its normalisation are broken", exitCode: 1);

    /// <summary>The first index of the largest logit (<see cref="VocabMath.ArgMax"/>).</summary>
    public static int ArgMax(ReadOnlySpan<float> values) => VocabMath.ArgMax(values);
}
