namespace Assistant.Engine;

/// <summary>
/// A fixed-size uniform sample of a stream of values (Vitter's algorithm R), for a session's percentiles: every value
/// is kept while there are at most <see cref="Capacity"/>, so a short session's p50/p95 are exact, and after that each
/// value seen so far is in the sample with equal chance. Memory is flat however long the session runs (before, a
/// live session kept every frame's time of every stage in lists that grew until Ctrl+C). Seeded: one run's sample is
/// the same every time.
/// </summary>
public sealed class Reservoir(int capacity = Reservoir.DefaultCapacity, int seed = 20)
{
    /// <summary>Values kept by default: 4,096, about two minutes of frames at 30 fps kept exactly.</summary>
    public const int DefaultCapacity = 4096;

    private readonly double[] _values = new double[capacity];
    private readonly Random _random = new(seed);

    /// <summary>How many values the sample holds at most.</summary>
    public int Capacity => _values.Length;

    /// <summary>Values seen.</summary>
    public long Seen { get; private set; }

    /// <summary>Values held: the smaller of <see cref="Seen"/> and <see cref="Capacity"/>.</summary>
    public int Count => (int)Math.Min(Seen, _values.Length);

    /// <summary>Offers one value.</summary>
    public void Add(double value)
    {
        if (Seen < _values.Length) _values[Seen] = value;
        else if (_random.NextInt64(Seen + 1) is var j && j < _values.Length) _values[j] = value;
        Seen++;
    }

    /// <summary>The value at quantile <paramref name="q"/> of the sample (the value at index floor(q * n) once sorted); null when empty.</summary>
    public double? Quantile(double q)
    {
        int n = Count;
        if (n == 0) return null;
        var sorted = _values.AsSpan(0, n).ToArray();
        Array.Sort(sorted);
        return sorted[(int)Math.Min(n - 1, Math.Floor(q * n))];
    }
}

/// <summary>
/// The world step each of the last <see cref="Capacity"/> pipeline frames saw, by frame index, for scoring what an
/// answer describes (the frame it started on); older frames fall out, and asking for one gives the oldest kept.
/// </summary>
public sealed class RecentFrames(int capacity = 8192)
{
    private readonly long[] _steps = new long[capacity];

    /// <summary>Frames kept.</summary>
    public int Capacity => _steps.Length;

    /// <summary>Frames recorded.</summary>
    public long Count { get; private set; }

    /// <summary>Records the next frame's step.</summary>
    public void Add(long step) => _steps[Count++ % _steps.Length] = step;

    /// <summary>The step frame <paramref name="index"/> saw, clamped to the frames still kept.</summary>
    public long At(long index)
    {
        if (Count == 0) throw new InvalidOperationException("no frame recorded");
        long i = Math.Clamp(index, Math.Max(0, Count - _steps.Length), Count - 1);
        return _steps[i % _steps.Length];
    }
}
