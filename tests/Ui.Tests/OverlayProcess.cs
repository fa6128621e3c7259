namespace Assistant.Ui.Tests;

/// <summary>
/// `assistant live --overlay` as a real process on the moving world: started with any extra arguments, its
/// URL read from its first "overlay:" line, stopped with SIGINT (the way Ctrl+C stops it) on dispose.
/// Calibration goes to a private cache folder, so a latency change measures this machine once.
/// </summary>
public sealed class OverlayProcess : IAsyncDisposable
{
    private readonly AssistantProcess _process;

    private OverlayProcess(AssistantProcess process, string url) => (_process, Url) = (process, url);

    public string Url { get; }
    public Uri BaseUri => new(Url.Split('?')[0]);
    public int Port => BaseUri.Port;

    public string Output => _process.Out;

    private static readonly Dictionary<string, string> Cache =
        new() { ["ASSISTANT_CACHE"] = Path.Combine(Path.GetTempPath(), "assistant-tests", "overlay-cache") };

    /// <summary>
    /// This machine's calibration, measured once per test process by `assistant plan --recalibrate` with nothing else
    /// running. Measured by the live process instead, it ran beside its own frame loop and capture thread, and on
    /// two cores that once made the medium decoder look cheaper than the small one, cached for every later run.
    /// </summary>
    private static readonly Lazy<Task> Calibrated = new(async () =>
    {
        var (code, _, err) = await AssistantProcess.RunAsync(["plan", "--latency-ms", "1", "--recalibrate"], Cache);
        if (code != 0) throw new InvalidOperationException($"assistant plan --recalibrate failed ({code}): {err}");
    });

    public static async Task<OverlayProcess> StartAsync(params string[] extra)
    {
        await Calibrated.Value;
        var p = AssistantProcess.Start(["live", "--overlay", "--port", "0", "--realtime-fps", "20", .. extra], Cache);
        static string? UrlIn(string output) =>
            output.Split('\n').FirstOrDefault(l => l.StartsWith("overlay: ", StringComparison.Ordinal))?["overlay: ".Length..].Split(' ')[0];
        if (!await p.WaitForOutputAsync(o => UrlIn(o) is not null))
        {
            string err = p.Err;
            await p.DisposeAsync();
            throw new InvalidOperationException($"no overlay URL from the assistant: {err}");
        }
        return new OverlayProcess(p, UrlIn(p.Out)!);
    }

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
