using System.Runtime.InteropServices;

namespace Assistant.Ui;

/// <summary>
/// Ctrl+C (SIGINT) and SIGTERM end every command within <see cref="Grace"/>. The first signal cancels
/// <see cref="Token"/>, which every command's work takes, so a command unwinds and closes its files; if it has not
/// returned within the grace time (work that does not look at the token: a long fit, a native call), the process
/// exits anyway. A second signal exits at once. The exit code is the shells' 128 + signal number: 130 and 143.
/// Owned by <see cref="Cli.RunAsync"/> for one invocation; disposing unregisters the handlers.
/// </summary>
/// <remarks>
/// It replaces System.CommandLine's own handler (ProcessTerminationTimeout), which crashed on a second signal
/// ("An attempt was made to transition a task to a final state when it had already completed"). Files a command
/// writes while it runs stay whole if it is cut off here: the record file is written a whole line per write.
/// </remarks>
internal sealed class Termination : IDisposable
{
    /// <summary>How long a command has, after the first signal, to return by itself.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);

    private readonly CancellationTokenSource _cancel = new();
    private readonly PosixSignalRegistration[] _registrations;
    private readonly TextWriter _stderr;
    private readonly Action<int> _exit;
    private Timer? _deadline;
    private int _received;  // the first signal's exit code, 0 until one comes

    /// <param name="stderr">Where the one line about a forced exit goes.</param>
    /// <param name="exit">Ends the process (Environment.Exit); a test passes its own.</param>
    public Termination(TextWriter stderr, Action<int>? exit = null)
    {
        _stderr = stderr;
        _exit = exit ?? Environment.Exit;
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, c => OnSignal(c, 130)),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => OnSignal(c, 143)),
        ];
    }

    /// <summary>Cancelled at the first signal.</summary>
    public CancellationToken Token => _cancel.Token;

    /// <summary>130 after SIGINT, 143 after SIGTERM; null while none has come.</summary>
    public int? ExitCode => Volatile.Read(ref _received) is var code and not 0 ? code : null;

    /// <summary>The name of the signal that came, for the line that says why the command stopped.</summary>
    public string? SignalName => ExitCode switch { 130 => "SIGINT", 143 => "SIGTERM", _ => null };

    private void OnSignal(PosixSignalContext context, int code)
    {
        context.Cancel = true;  // the process ends here, on our terms, not in the runtime's default handler
        if (Interlocked.CompareExchange(ref _received, code, 0) != 0)
        {
            _exit(Volatile.Read(ref _received));  // a second signal: the user means it
            return;
        }
        _deadline = new Timer(_ =>
        {
            _stderr.WriteLine($"error: stopped by {SignalName}; the command did not finish within {Grace.TotalSeconds:F0} s of it");
            _stderr.Flush();
            _exit(Volatile.Read(ref _received));
        }, null, Grace, Timeout.InfiniteTimeSpan);
        _cancel.Cancel();
    }

    /// <summary>Unregisters the handlers and the pending deadline: the command returned.</summary>
    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _deadline?.Dispose();
        _cancel.Dispose();
    }
}
