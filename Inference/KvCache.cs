using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// Keys and values of every decoder layer for the first <see cref="Length"/> positions of a sequence.
/// A cache is never changed after it is made: a forward pass returns a new one, so a cached query prefix
/// can be extended many times (once per frame). The cache owns its tensors, which stay in the execution
/// provider's memory (I/O binding), and frees them on Dispose; it does not depend on the state that made it.
/// </summary>
public sealed class KvCache : IDisposable
{
    internal KvCache(OrtValue[] values, int length)
    {
        Values = values;
        Length = length;
    }

    /// <summary>Positions held.</summary>
    public int Length { get; }

    /// <summary>past_key_values.{i}.key, .value for i = 0..layers-1, in that order.</summary>
    internal OrtValue[] Values { get; }

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        foreach (var v in Values) v.Dispose();
    }
}
