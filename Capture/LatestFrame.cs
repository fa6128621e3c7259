using System.Diagnostics.CodeAnalysis;
namespace Assistant.Capture;

/// <summary>
/// Newest-frame-wins hand-over between a capture thread and the frame loop: one slot, overwritten by each
/// new frame. The loop never sees a queue and never falls behind by more than one frame; frames it had no
/// time for are counted as dropped. Thread-safe for one producer and one consumer.
/// </summary>
public sealed class LatestFrame
{
    private readonly object _gate = new();
    private Frame? _slot;
    private long _published, _taken, _dropped;

    /// <summary>Offers a frame; an untaken older one is dropped.</summary>
    public void Publish(Frame frame)
    {
        lock (_gate)
        {
            if (_slot is not null) _dropped++;
            _slot = frame;
            _published++;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Takes the newest frame, waiting up to <paramref name="timeout"/>; false if none arrived.</summary>
    public bool TryTake(TimeSpan timeout, [MaybeNullWhen(false)] out Frame frame)
    {
        lock (_gate)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();  // monotonic, unlike the wall clock
            while (_slot is null)
            {
                var left = timeout - System.Diagnostics.Stopwatch.GetElapsedTime(start);
                if (left <= TimeSpan.Zero || !Monitor.Wait(_gate, left))
                {
                    frame = null;
                    return false;
                }
            }
            frame = _slot;
            _slot = null;
            _taken++;
            return true;
        }
    }

    /// <summary>Frames waiting: 0 or 1, never more.</summary>
    public int Pending { get { lock (_gate) return _slot is null ? 0 : 1; } }

    /// <summary>Frames offered, taken, and dropped because a newer one arrived first.</summary>
    public (long Published, long Taken, long Dropped) Counts { get { lock (_gate) return (_published, _taken, _dropped); } }
}
