using System.Diagnostics;
using Assistant.Engine;

namespace Assistant.Bench;

/// <summary>
/// Times a live session from the outside: wall time between the report of the last warm-up frame and the
/// report of the last frame, and the ONNX Runtime time those frames' reports carry. Warm-up frames (ONNX
/// Runtime's lazy initialisation, the first bindings) are skipped.
/// </summary>
internal sealed class SessionTimer(int warmup) : ISessionObserver
{
    private long _start;

    public int Frames { get; private set; }
    public double WallMs { get; private set; }
    public double RunMs { get; private set; }
    public double AcquireMs { get; private set; }

    public void OnFrame(FrameReport report)
    {
        long now = Stopwatch.GetTimestamp();
        if (report.Index < warmup - 1) return;
        if (report.Index == warmup - 1)
        {
            _start = now;
            return;
        }
        Frames++;
        RunMs += report.RunMs;
        AcquireMs += report.AcquireMs;
        WallMs = Stopwatch.GetElapsedTime(_start, now).TotalMilliseconds;
    }

    public void OnNote(SessionNote note) { }
}
