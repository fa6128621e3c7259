using System.Reflection;
using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>Where ONNX Runtime runs the graphs.</summary>
public enum ExecutionProvider
{
    /// <summary>The best the build and machine offer: DirectML, then CUDA, then CPU.</summary>
    Auto,
    /// <summary>ONNX Runtime's CPU provider (every platform).</summary>
    Cpu,
    /// <summary>NVIDIA GPUs on Linux (the cuda build flavor).</summary>
    Cuda,
    /// <summary>DirectML on Windows GPUs (the Windows build flavor).</summary>
    Dml,
}

/// <summary>Parses and describes execution providers; knows which native ONNX Runtime this build links.</summary>
public static class ExecutionProviders
{
    /// <summary>The native ONNX Runtime package this build was compiled against: cpu, cuda or dml.</summary>
    public static string BuildFlavor { get; } =
        typeof(ExecutionProviders).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "OnnxRuntimeFlavor")?.Value ?? "cpu";

    /// <summary>What ONNX Runtime 1.31's CUDA provider loads at run time (it fails without them).</summary>
    public const string CudaNeeds = "the CUDA 13 runtime, cuBLAS and cuDNN 9 on the library path";

    /// <summary>cpu, cuda, dml or auto; anything else is a one-line <see cref="InferenceException"/>.</summary>
    public static ExecutionProvider Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "auto" => ExecutionProvider.Auto,
        "cpu" => ExecutionProvider.Cpu,
        "cuda" => ExecutionProvider.Cuda,
        "dml" or "directml" => ExecutionProvider.Dml,
        _ => throw new InferenceException($"unknown execution provider '{text}': use cpu, cuda, dml or auto"),
    };

    /// <summary>Providers the loaded native library offers (e.g. CPUExecutionProvider, CUDAExecutionProvider).</summary>
    public static IReadOnlyList<string> Available() => Ort.Environment.GetAvailableProviders();

    /// <summary>Turns a request into the provider to use, or explains in one line what to install.</summary>
    public static ExecutionProvider Resolve(ExecutionProvider requested)
    {
        var available = Available();
        bool Has(string name) => available.Contains(name);
        switch (requested)
        {
            case ExecutionProvider.Cpu:
                return ExecutionProvider.Cpu;
            case ExecutionProvider.Dml when !OperatingSystem.IsWindows():
                throw new InferenceException(
                    "--ep dml needs Windows (DirectML is a Windows API); on this machine use --ep cpu, or --ep cuda on an NVIDIA GPU");
            case ExecutionProvider.Dml when !Has("DmlExecutionProvider"):
                throw new InferenceException(
                    $"this build links the '{BuildFlavor}' ONNX Runtime, which has no DirectML: build with -p:OnnxRuntimeFlavor=dml (package Microsoft.ML.OnnxRuntime.DirectML)");
            case ExecutionProvider.Cuda when !Has("CUDAExecutionProvider"):
                throw new InferenceException(
                    $"this build links the '{BuildFlavor}' ONNX Runtime, which has no CUDA: build with -p:OnnxRuntimeFlavor=cuda (package Microsoft.ML.OnnxRuntime.Gpu.Linux) on a machine with {CudaNeeds}");
            case ExecutionProvider.Auto:
                if (OperatingSystem.IsWindows() && Has("DmlExecutionProvider")) return ExecutionProvider.Dml;
                return Has("CUDAExecutionProvider") ? ExecutionProvider.Cuda : ExecutionProvider.Cpu;
            default:
                return requested;
        }
    }
}

/// <summary>
/// The process's ONNX Runtime environment, created on first use with native logging limited to fatal
/// messages: failures reach the user as one <see cref="InferenceException"/> line, not as native log spew.
/// </summary>
internal static class Ort
{
    private static readonly Lazy<OrtEnv> Env = new(() =>
    {
        if (OrtEnv.IsCreated) return OrtEnv.Instance();
        var options = new EnvironmentCreationOptions { logId = "assistant", logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        // On Windows its device discovery may print a DXGI line to the C runtime's stderr: see WindowsStderr.
        return WindowsStderr.Silenced(() => OrtEnv.CreateInstanceWithOptions(ref options));
    });

    public static OrtEnv Environment => Env.Value;

    // The shared CPU arena's first region: address space, of which only the pages a run touches become resident, so a
    // small set pays nothing for it.
    private const int ArenaFirstRegionBytes = 128 << 20;

    // One arena for every CPU session that asks for it (session.use_env_allocators): a set's graphs run one after
    // another in a frame (the tower, a compressor, the prefill, the steps), so the activations each session's own
    // arena would keep for its largest run can share one pool, which holds the largest of them instead of their sum.
    private static readonly Lazy<bool> CpuArena = new(() =>
    {
        using var info = new OrtMemoryInfo(OrtMemoryInfo.allocatorCPU, OrtAllocatorType.ArenaAllocator, 0, OrtMemType.Default);
        // No limit and ONNX Runtime's extension strategy (each new region twice the last), but a first region of
        // ArenaFirstRegionBytes instead of 1 MB: a 0.5B frame's tensors then fit one region, where freed chunks
        // coalesce, instead of a chain of doubling ones whose small regions cannot take the large tensors
        // (docs/PERFORMANCE.md, "The arena's first region": 10-14 MB less resident after a full-token answer).
        using var arena = new OrtArenaCfg(0, -1, ArenaFirstRegionBytes, -1);
        try
        {
            Environment.CreateAndRegisterAllocator(info, arena);
            return true;
        }
        catch (OnnxRuntimeException)
        {
            return false;  // another user of this process's environment registered a CPU allocator first: sessions keep their own
        }
    });

    /// <summary>Registers the shared CPU arena with the environment, once per process; false where it could not be.</summary>
    public static bool SharedCpuArena() => CpuArena.Value;
}
