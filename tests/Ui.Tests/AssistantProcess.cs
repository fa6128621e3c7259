using System.Diagnostics;
using System.Text;

namespace Assistant.Ui.Tests;

/// <summary>
/// The built `assistant` as a real process, for what only a real process shows (exit codes a shell sees,
/// SIGINT, native libraries' own output, X servers and sound devices). Started through
/// <c>env --default-signal=INT</c>: a test run started in the background of a non-interactive shell has SIGINT
/// ignored, and a child inherits that (it would then rightly ignore the test's Ctrl+C). Standard output and
/// error are collected as they come; disposing interrupts it (as Ctrl+C would) and kills it if it lingers.
/// </summary>
public sealed class AssistantProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new(), _err = new();

    private AssistantProcess(Process process) => _process = process;

    public static string Executable => Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "assistant.exe" : "assistant");

    /// <param name="environment">Variables to set for it (HOME for an .asoundrc, a private cache folder).</param>
    public static AssistantProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo("/usr/bin/env")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        foreach (var a in (string[])["--default-signal=INT", Executable, .. args]) psi.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) psi.Environment[name] = value;
        var p = Process.Start(psi) ?? throw new InvalidOperationException("assistant did not start");
        var holder = new AssistantProcess(p);
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (holder._out) holder._out.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (holder._err) holder._err.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return holder;
    }

    /// <summary>Runs it to the end: exit code and everything it printed. Killed, and the test failed, past the timeout.</summary>
    public static async Task<(int Code, string Out, string Err)> RunAsync(IEnumerable<string> args,
        IReadOnlyDictionary<string, string>? environment = null, int timeoutSeconds = 90)
    {
        await using var p = Start(args, environment);
        int code = await p.WaitForExitAsync(timeoutSeconds);
        return (code, p.Out, p.Err);
    }

    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public string Out { get { lock (_out) return _out.ToString(); } }
    public string Err { get { lock (_err) return _err.ToString(); } }

    /// <summary>Waits until <paramref name="condition"/> holds for what it printed so far, or it exits, or the time is up; returns whether it held.</summary>
    public async Task<bool> WaitForOutputAsync(Func<string, bool> condition, int timeoutSeconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (!condition(Out))
        {
            if (_process.HasExited || DateTime.UtcNow > deadline) return condition(Out);
            await Task.Delay(50);
        }
        return true;
    }

    /// <summary>Its exit code once it ends and its output is drained; killed, and an assertion fails with its stderr, past the timeout.</summary>
    public async Task<int> WaitForExitAsync(int timeoutSeconds = 60)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            Assert.Fail($"assistant did not exit within {timeoutSeconds} s; stderr: {Err}; stdout ends: {string.Concat(Out.TakeLast(400))}");
        }
        return _process.ExitCode;
    }

    /// <summary>SIGINT, as a terminal's Ctrl+C sends.</summary>
    public Task InterruptAsync() => SignalAsync("INT");

    /// <summary>Sends the signal <paramref name="name"/> (INT, TERM) with /bin/kill.</summary>
    public async Task SignalAsync(string name)
    {
        Assert.True(OperatingSystem.IsLinux(), "signals are sent with /bin/kill");
        using var kill = Process.Start("/bin/kill", [$"-{name}", _process.Id.ToString()])!;
        await kill.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await InterruptAsync();
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
