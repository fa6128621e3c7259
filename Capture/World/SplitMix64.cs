namespace Assistant.Capture.World;

/// <summary>
/// SplitMix64: the world's only source of randomness, identical in tools/world.py. Every draw the world
/// makes happens in the same order in both languages, so a seed means the same scene in each.
/// </summary>
public sealed class SplitMix64(ulong seed)
{
    private ulong _state = seed;

    /// <summary>The next 64 random bits.</summary>
    public ulong NextU64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        ulong z = _state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A double in [0, 1) with 53 random bits.</summary>
    public double Uniform() => (NextU64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>An integer in [0, n) (modulo draw, as the Python side does).</summary>
    public int Below(int n) => (int)(NextU64() % (ulong)n);

    /// <summary>A uniformly chosen item.</summary>
    public T Choice<T>(IReadOnlyList<T> items) => items[Below(items.Count)];
}
