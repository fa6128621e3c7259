using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>Options every session of a model set shares.</summary>
public sealed record SessionConfig(ExecutionProvider Provider = ExecutionProvider.Auto, int IntraOpThreads = 0, int DeviceId = 0)
{
    /// <summary>Auto provider, the machine's physical cores as threads (<see cref="CpuCores"/>), device 0.</summary>
    public static SessionConfig Default { get; } = new();

    /// <summary>
    /// Whether bindings bind their inputs again before every run (<see cref="Binding"/>): null, as the provider needs
    /// (<see cref="ProviderSettings.CopiesInputsAtBind"/>); true on the CPU runs the GPU providers' binding path there,
    /// which is how the tests hold it to the same outputs without a GPU.
    /// </summary>
    public bool? RebindInputs { get; init; }

    /// <summary>
    /// Whether frames are prepared by the frame kernels' graphs on the provider (Inference.FrameKernels) rather than by
    /// the C# kernels (Shaders/): null, the faster of the two as measured (bench --preprocess, docs/PERFORMANCE.md): the
    /// thumbnail's graph everywhere (0.64-0.90x the C# time on 2 CPU cores, 0.13-0.25x on CUDA), the preprocessing
    /// graph on a GPU provider for towers of <see cref="SessionFactory.PreprocessGraphFromSide"/> px and more (0.21-0.54x
    /// at 336 and 384 px on CUDA; at 64 px the C# kernel is 3.7-11x faster there, and 1.1-30x faster on the CPU at any
    /// size); true, both graphs (on the CPU: the GPU path, as the tests run it); false, both C# kernels.
    /// </summary>
    public bool? FrameGraphs { get; init; }

    /// <summary>
    /// Whether CPU sessions allocate from one arena the process shares (ONNX Runtime's environment allocator) rather
    /// than one each: true by default, which keeps the largest graph's working memory once instead of every graph's
    /// (docs/PERFORMANCE.md, "One CPU arena for the process"); false gives each session its own, as ONNX Runtime does.
    /// </summary>
    public bool SharedCpuArena { get; init; } = true;

    /// <summary>
    /// Whether ONNX Runtime plans a graph's intermediate tensors into one block per input shape (its memory pattern,
    /// kept in the arena after the run): null, as the provider's settings say (<see cref="ProviderSettings.MemoryPattern"/>:
    /// off on the CPU, where tensor by tensor the process holds about 20 MB less at no measured cost in time,
    /// docs/PERFORMANCE.md "Memory planned or not"); true or false for every graph but the vision tower, which is
    /// never planned (<see cref="SessionFactory.Create(string, bool)"/>).
    /// </summary>
    public bool? PlannedMemory { get; init; }

    /// <summary>
    /// From an --ep value: cpu, auto, cuda or dml, and for the GPU providers an adapter or device index after a
    /// colon (dml:1 is the second DirectML adapter, in DXGI's order); anything else is one line.
    /// </summary>
    public static SessionConfig FromOption(string ep)
    {
        var parts = ep.Split(':', 2);
        var provider = ExecutionProviders.Parse(parts[0]);
        if (parts.Length == 1) return new(provider);
        if (provider is not (ExecutionProvider.Cuda or ExecutionProvider.Dml))
            throw new InferenceException($"--ep {parts[0]} takes no device index (only cuda:N and dml:N do), got '{ep}'");
        if (!int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var device) || device > 63)
            throw new InferenceException($"--ep {parts[0]}:N takes a device index 0..63, got '{parts[1]}'");
        return new(provider, DeviceId: device);
    }
}

/// <summary>
/// What a provider asks of the session options, apart from ONNX Runtime itself, so that it can be checked where
/// the provider's package is absent (the DirectML one is not served to these machines).
/// </summary>
/// <param name="Name">The name the generic AppendExecutionProvider takes (null: nothing to append that way; the
/// CPU needs nothing, and CUDA has a call of its own, AppendExecutionProvider_CUDA with the device id).</param>
/// <param name="Options">The provider's own options.</param>
/// <param name="MemoryPattern">Whether ONNX Runtime's memory pattern optimisation stays on: off for DirectML, which
/// requires it, and on the CPU, where it saves nothing measurable in time and holds about 20 MB more (the largest run's
/// plan, kept in the arena); on for CUDA, as the H200 run measured it.</param>
/// <param name="Sequential">Whether nodes must run one at a time.</param>
public sealed record ProviderSettings(string? Name, IReadOnlyDictionary<string, string> Options, bool MemoryPattern, bool Sequential)
{
    /// <summary>
    /// Whether a host tensor bound as an input is copied into the provider's memory when it is bound (every
    /// provider but the CPU's keeps its own memory), so that a binding kept across runs must be bound again before
    /// each run to see its buffers' new values (<see cref="Binding"/>).
    /// </summary>
    public bool CopiesInputsAtBind { get; init; }

    /// <summary>
    /// The settings for <paramref name="provider"/> on device <paramref name="deviceId"/> (CUDA's device goes to
    /// its own call, so it has the CPU's defaults here). DirectML documents two
    /// constraints: memory patterns off and sequential execution (it does not support parallel execution), and
    /// its adapter is the device_id option.
    /// </summary>
    public static ProviderSettings For(ExecutionProvider provider, int deviceId) => provider switch
    {
        ExecutionProvider.Dml => new("DML", new Dictionary<string, string> { ["device_id"] = deviceId.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            MemoryPattern: false, Sequential: true) { CopiesInputsAtBind = true },
        ExecutionProvider.Cuda => new(null, new Dictionary<string, string>(), MemoryPattern: true, Sequential: false) { CopiesInputsAtBind = true },
        _ => new(null, new Dictionary<string, string>(), MemoryPattern: false, Sequential: false),
    };
}

/// <summary>
/// Creates ONNX Runtime sessions on one execution provider. The factory resolves the provider once;
/// each session it returns is owned by the caller, who disposes it.
/// </summary>
public sealed class SessionFactory
{
    /// <summary>Resolves the provider once (auto probes a GPU provider and falls back to the CPU, saying why).</summary>
    public SessionFactory(SessionConfig config)
    {
        Config = config;
        Provider = ExecutionProviders.Resolve(config.Provider);
        if (config.Provider == ExecutionProvider.Auto && Provider != ExecutionProvider.Cpu)
        {
            // Auto may pick a provider the build has but the machine cannot start (no driver, no CUDA
            // libraries): probe it once and fall back to the CPU, saying why.
            try
            {
                CreateOptions().Dispose();
            }
            catch (InferenceException e)
            {
                FallbackReason = e.Message;
                Provider = ExecutionProvider.Cpu;
            }
        }
    }

    /// <summary>Why <see cref="ExecutionProvider.Auto"/> ended on the CPU although a GPU provider was built in; null otherwise.</summary>
    public string? FallbackReason { get; }

    /// <summary>The configuration it was made with.</summary>
    public SessionConfig Config { get; }

    /// <summary>The provider actually used (never Auto).</summary>
    public ExecutionProvider Provider { get; }

    /// <summary>Whether this factory's sessions allocate from the process's one CPU arena (<see cref="SessionConfig.SharedCpuArena"/>
    /// on the CPU provider, and the arena registered with ONNX Runtime's environment).</summary>
    public bool SharesCpuArena => Provider == ExecutionProvider.Cpu && Config.SharedCpuArena && Ort.SharedCpuArena();

    /// <summary>Whether the sessions' provider copies host inputs when they are bound (<see cref="ProviderSettings.CopiesInputsAtBind"/>).</summary>
    public bool CopiesInputsAtBind => Config.RebindInputs ?? ProviderSettings.For(Provider, Config.DeviceId).CopiesInputsAtBind;

    /// <summary>The smallest tower side at which a GPU provider prepares frames with the graph (measured at 64: the C#
    /// kernel faster; at 336 and 384: the graph).</summary>
    public const int PreprocessGraphFromSide = 224;

    /// <summary>Which frame kernels run as graphs on this provider for a tower of <paramref name="towerSide"/> px
    /// (<see cref="SessionConfig.FrameGraphs"/>).</summary>
    public (bool Thumbnail, bool Preprocess) FrameGraphUse(int towerSide) => Config.FrameGraphs switch
    {
        true => (true, true),
        false => (false, false),
        null => (true, Provider != ExecutionProvider.Cpu && towerSide >= PreprocessGraphFromSide),
    };

    /// <summary>Loads one graph; a missing, empty or corrupt file is a one-line <see cref="InferenceException"/>.</summary>
    /// <param name="path">The graph's file.</param>
    /// <param name="plannedMemory">Whether ONNX Runtime may plan the graph's intermediate tensors into one block per
    /// input shape (its memory pattern), kept in the arena after the run: true leaves it to <see cref="SessionConfig.PlannedMemory"/>
    /// and the provider; false on every provider, as for the vision tower: one run of it is the process's largest, and
    /// tensor by tensor its peak is lower (docs/PERFORMANCE.md, "Memory planned or not").</param>
    public InferenceSession Create(string path, bool plannedMemory = true)
    {
        if (!File.Exists(path))
            throw new InferenceException($"model file not found: {path}");
        if (new FileInfo(path).Length == 0)
            throw new InferenceException($"model file is empty: {path}");
        using var options = CreateOptions();
        if (!plannedMemory) options.EnableMemoryPattern = false;
        try
        {
            return new InferenceSession(path, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException($"cannot load {path}: {FirstLine(e.Message)}", inner: e);
        }
    }

    /// <summary>Loads a graph held in memory (one embedded in the build); <paramref name="what"/> names it in errors.</summary>
    public InferenceSession Create(byte[] model, string what)
    {
        using var options = CreateOptions();
        try
        {
            return new InferenceSession(model, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException($"cannot load {what}: {FirstLine(e.Message)}", inner: e);
        }
    }

    private SessionOptions CreateOptions()
    {
        _ = Ort.Environment;  // logging configured before the first session
        var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
        };
        int threads = Config.IntraOpThreads > 0 ? Config.IntraOpThreads : CpuCores.DefaultIntraOpThreads;
        if (threads > 0) options.IntraOpNumThreads = threads;
        try
        {
            var settings = ProviderSettings.For(Provider, Config.DeviceId);
            options.EnableMemoryPattern = Config.PlannedMemory ?? settings.MemoryPattern;
            if (settings.Sequential) options.ExecutionMode = ExecutionMode.ORT_SEQUENTIAL;
            if (SharesCpuArena) options.AddSessionConfigEntry("session.use_env_allocators", "1");
            if (Provider == ExecutionProvider.Cuda) options.AppendExecutionProvider_CUDA(Config.DeviceId);
            else if (settings.Name is { } name) options.AppendExecutionProvider(name, settings.Options.ToDictionary());
        }
        catch (OnnxRuntimeException e)
        {
            options.Dispose();
            var needs = Provider == ExecutionProvider.Cuda ? $" (it needs {ExecutionProviders.CudaNeeds})" : "";
            throw new InferenceException($"cannot start the {Provider} execution provider: {FirstLine(e.Message)}{needs}", inner: e);
        }
        return options;
    }

    internal static string FirstLine(string message)
    {
        var line = message.Split('\n', 2)[0].Trim();
        return line.Length > 300 ? line[..300] + "..." : line;
    }
}
