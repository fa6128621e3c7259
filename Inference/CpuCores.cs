namespace Assistant.Inference;

/// <summary>
/// How many threads a session's operators get when the configuration names no number. ONNX Runtime's own default on
/// Linux is half the hardware threads (it assumes two per core: onnxruntime issue #13974), which on a machine without
/// simultaneous multithreading, such as this project's 2-core machines, is half its cores: there the engine decoded a
/// 0.5B F32 checkpoint at 10.7 tokens/s on ONNX Runtime's default and 16.1 on both cores (docs/PERFORMANCE.md). So on
/// Linux the engine counts the physical cores itself (<c>/proc/cpuinfo</c>: distinct physical id and core id pairs),
/// no more than the cores this process may run on; elsewhere ONNX Runtime's default stands (on Windows it asks the
/// system for physical cores).
/// </summary>
public static class CpuCores
{
    /// <summary>The intra-op thread count for a session whose configuration says 0; 0 leaves ONNX Runtime's default.</summary>
    public static int DefaultIntraOpThreads { get; } = OperatingSystem.IsLinux() ? FromCpuInfo() : 0;

    private static int FromCpuInfo()
    {
        try
        {
            return Threads(File.ReadAllText("/proc/cpuinfo"), Environment.ProcessorCount);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>
    /// The physical cores <paramref name="cpuinfo"/> (a <c>/proc/cpuinfo</c> text) lists, at most
    /// <paramref name="usable"/>; 0 when it names no core ids (a kernel or architecture that does not report them).
    /// </summary>
    public static int Threads(string cpuinfo, int usable)
    {
        var cores = new HashSet<(string Package, string Core)>();
        string package = "0";
        string? core = null;
        foreach (var raw in cpuinfo.Split('\n'))
        {
            int colon = raw.IndexOf(':');
            if (raw.Trim().Length == 0)
            {
                if (core is not null) cores.Add((package, core));
                (package, core) = ("0", null);
                continue;
            }
            if (colon < 0) continue;
            var key = raw[..colon].Trim();
            var value = raw[(colon + 1)..].Trim();
            if (key == "physical id") package = value;
            else if (key == "core id") core = value;
        }
        if (core is not null) cores.Add((package, core));
        return cores.Count == 0 ? 0 : Math.Max(1, Math.Min(cores.Count, usable));
    }
}
