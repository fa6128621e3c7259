using System.Diagnostics;

namespace Assistant.Ui.Tests;

/// <summary>
/// `assistant live --overlay` as a real process on the moving world: started with any extra arguments, its
/// URL read from its first "overlay:" line, stopped with SIGINT (the way Ctrl+C stops it) on dispose.
/// Calibration goes to a private cache folder, so a latency change measures this machine once.
/// </summary>
public sealed class OverlayProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _out = new(), _err = new();

    private OverlayProcess(Process process) => _process = process;

    public string Url { get; private set; } = "";
    public Uri BaseUri => new(Url.Split('?')[0]);
    public int Port => BaseUri.Port;

    public string Output { get { lock (_out) return _out.ToString(); } }

    public static async Task<OverlayProcess> StartAsync(params string[] extra)
    {
        // env --default-signal: SIGINT must stop it even when this test run inherited SIGINT ignored.
        var psi = new ProcessStartInfo("/usr/bin/env",
            ["--default-signal=INT", Path.Combine(AppContext.BaseDirectory, "assistant"), "live", "--overlay", "--port", "0", "--realtime-fps", "20", .. extra])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        psi.Environment["ASSISTANT_CACHE"] = Path.Combine(Path.GetTempPath(), "assistant-tests", "overlay-cache");
        var p = Process.Start(psi) ?? throw new InvalidOperationException("assistant did not start");
        var url = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var holder = new OverlayProcess(p);
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) { url.TrySetException(new InvalidOperationException("assistant ended before serving the overlay")); return; }
            lock (holder._out) holder._out.AppendLine(e.Data);
            if (e.Data.StartsWith("overlay: ", StringComparison.Ordinal)) url.TrySetResult(e.Data["overlay: ".Length..].Split(' ')[0]);
        };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (holder._err) holder._err.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var done = await Task.WhenAny(url.Task, Task.Delay(TimeSpan.FromSeconds(60)));
        if (done != url.Task || url.Task.IsFaulted)
        {
            p.Kill(entireProcessTree: true);
            string err;
            lock (holder._err) err = holder._err.ToString();
            throw new InvalidOperationException($"no overlay URL from the assistant: {err}");
        }
        holder.Url = url.Task.Result;
        return holder;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            using (var kill = Process.Start("/bin/kill", ["-INT", _process.Id.ToString()])!) await kill.WaitForExitAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        _process.Dispose();
    }
}
