using System.Diagnostics;
using Assistant.Engine;

namespace Assistant.Bench;

/// <summary>
/// The live session itself soaked (<c>--soak-minutes M --session</c>): the real loop on the moving world with a new
/// world question every 50 frames, its per-frame statistics in place, for M minutes. Each minute, on the loop's
/// thread, the live managed bytes after a full compacting collection, resident memory and open file descriptors are
/// sampled (<see cref="MemorySample"/>).
/// </summary>
internal sealed class SessionSoak : ISessionObserver
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private double _next = 1.0;

    public List<MemorySample> Samples { get; } = [];

    public static async Task<int> RunAsync(string modelsDir, string ep, double minutes)
    {
        using var loaded = LoadedModels.Load(modelsDir, ep);
        var options = LiveSessionOptions.Default with
        {
            Source = "world:2000700", WorldSpeed = 0.004, QuestionEvery = 50, Frames = null, DurationSeconds = minutes * 60,
        };
        using var session = LiveSession.Open(loaded, options);
        var soak = new SessionSoak();
        session.Observe(soak);
        var summary = await session.RunAsync();
        foreach (var s in soak.Samples) Console.WriteLine(s);
        var (first, second, last) = (soak.Samples[0], soak.Samples[Math.Min(1, soak.Samples.Count - 1)], soak.Samples[^1]);
        Console.WriteLine($"session soak: {summary.Frames} frames in {minutes:G} min ({summary.Frames / summary.Seconds:F1} fps); " +
                          $"managed from minute {second.Minute:F0} to {last.Minute:F0}: {(last.Managed - second.Managed) / 1024.0:+0.0;-0.0;0} KiB; " +
                          $"from minute {first.Minute:F0}: resident {(last.Resident - first.Resident) / (1024 * 1024):+#;-#;0} MiB, fds {last.Fds - first.Fds:+#;-#;0}");
        return 0;
    }

    public void OnFrame(FrameReport report)
    {
        if (_clock.Elapsed.TotalMinutes < _next) return;
        Samples.Add(MemorySample.Take(_clock.Elapsed.TotalMinutes, report.Index + 1));
        _next += 1.0;
    }

    public void OnNote(SessionNote note) { }
}

/// <summary>Live managed bytes after a full compacting collection, resident bytes and open descriptors, at one moment.</summary>
internal sealed record MemorySample(double Minute, long Frames, long Managed, long Resident, int Fds)
{
    /// <summary>
    /// Takes one. Live managed bytes are each generation's size after a full compacting collection less its free space;
    /// not GC.GetTotalMemory, which under the regions GC can under-report, even go negative, when gen0 keeps a region
    /// with pinned objects (dotnet/runtime#106712; the loop pins its tensors' arrays).
    /// </summary>
    public static MemorySample Take(double minute, long frames)
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        var info = GC.GetGCMemoryInfo(GCKind.FullBlocking);
        long managed = 0;
        foreach (var g in info.GenerationInfo) managed += g.SizeAfterBytes - g.FragmentationAfterBytes;
        using var self = Process.GetCurrentProcess();
        int fds = OperatingSystem.IsLinux() ? Directory.GetFiles("/proc/self/fd").Length : self.HandleCount;
        return new(Math.Round(minute, 2), frames, managed, self.WorkingSet64, fds);
    }

    public override string ToString() =>
        $"minute {Minute:F2}: {Frames} frames, managed {Managed / 1024} KiB ({Managed:N0} B), resident {Resident / (1024 * 1024)} MiB, fds {Fds}";
}
