using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>Options every session of a model set shares.</summary>
public sealed record SessionConfig(ExecutionProvider Provider = ExecutionProvider.Auto, int IntraOpThreads = 0, int DeviceId = 0)
{
    /// <summary>Auto provider, ONNX Runtime's thread count, device 0.</summary>
    public static SessionConfig Default { get; } = new();
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

    /// <summary>Loads one graph; a missing, empty or corrupt file is a one-line <see cref="InferenceException"/>.</summary>
    public InferenceSession Create(string path)
    {
        if (!File.Exists(path))
            throw new InferenceException($"model file not found: {path}");
        if (new FileInfo(path).Length == 0)
            throw new InferenceException($"model file is empty: {path}");
        using var options = CreateOptions();
        try
        {
            return new InferenceSession(path, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException($"cannot load {path}: {FirstLine(e.Message)}", inner: e);
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
        if (Config.IntraOpThreads > 0) options.IntraOpNumThreads = Config.IntraOpThreads;
        try
        {
            switch (Provider)
            {
                case ExecutionProvider.Cuda:
                    options.AppendExecutionProvider_CUDA(Config.DeviceId);
                    break;
                case ExecutionProvider.Dml:
                    // DirectML wants memory patterns off and sequential execution (its documented constraints).
                    options.EnableMemoryPattern = false;
                    options.ExecutionMode = ExecutionMode.ORT_SEQUENTIAL;
                    options.AppendExecutionProvider("DML", new Dictionary<string, string> { ["device_id"] = Config.DeviceId.ToString() });
                    break;
            }
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
