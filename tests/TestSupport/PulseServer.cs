using System.Diagnostics;

namespace Assistant.Tests;

/// <summary>
/// A private PulseAudio server for one test class, there only to be a clock: its one source, "clock", is PulseAudio's
/// timer-driven null source (48 kHz stereo silence at real-time pace), which ALSA's pulse plugin opens as a capture
/// device. ALSA's own null device has no clock (it returns samples as fast as they are asked for); a device read at
/// real time is what a microphone is. The server listens on a socket in its own folder (no other client finds it),
/// loads no default configuration, and suspends the source when idle so that each capture starts from "now" (an idle
/// null source otherwise renders the whole time since it was last read in one burst). Stopped with SIGTERM.
/// </summary>
public sealed class PulseServer : IDisposable
{
    private readonly Process _process;
    private readonly string _folder;

    public PulseServer()
    {
        _folder = Directory.CreateTempSubdirectory("assistant-pulse-").FullName;
        Socket = Path.Combine(_folder, "pulse.sock");
        var psi = new ProcessStartInfo("pulseaudio", ["-n", "--daemonize=no", "--exit-idle-time=-1", "--disable-shm=yes", "-F", "/dev/null",
            $"--load=module-native-protocol-unix socket={Socket} auth-anonymous=1",
            "--load=module-null-source source_name=clock rate=48000 channels=2",
            "--load=module-suspend-on-idle timeout=1"])
        {
            RedirectStandardError = true, RedirectStandardOutput = true,
        };
        psi.Environment["HOME"] = _folder;  // its cookie and state files land here, not in the user's home
        psi.Environment["XDG_RUNTIME_DIR"] = _folder;
        Process? started;
        try
        {
            started = Process.Start(psi);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            started = null;
        }
        _process = started ?? throw new InvalidOperationException("pulseaudio did not start (./test installs it from Debian)");
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        // Ready when the source is suspended: then the first capture starts its clock afresh.
        for (int i = 0; i < 100; i++)
        {
            if (File.Exists(Socket) && State() == "SUSPENDED") return;
            if (_process.HasExited) break;
            Thread.Sleep(100);
        }
        Dispose();
        throw new InvalidOperationException("pulseaudio's null source did not come up suspended within 10 s");
    }

    /// <summary>The server's socket, as ALSA's pulse plugin names it: server "unix:PATH".</summary>
    public string Socket { get; }

    /// <summary>ALSA configuration defining <paramref name="name"/> as this server's clocked source (through plug, which
    /// takes whatever period and buffer sizes a client asks for; the pulse plugin alone refuses some of Wine's).</summary>
    public string AlsaDevice(string name) =>
        $"pcm.{name} {{ type plug slave.pcm \"{name}_pulse\" }}\n" +
        $"pcm.{name}_pulse {{ type pulse server \"unix:{Socket}\" device \"clock\" }}\n";

    private string State()
    {
        var psi = new ProcessStartInfo("pactl", ["list", "sources", "short"]) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["PULSE_SERVER"] = $"unix:{Socket}";
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return output.Split('\n').Select(l => l.Split('\t')).FirstOrDefault(f => f.Length >= 5 && f[1] == "clock")?[4].Trim() ?? "";
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            using (var term = Process.Start("/bin/kill", ["-TERM", _process.Id.ToString()])) term?.WaitForExit(5000);
            if (!_process.WaitForExit(5000)) _process.Kill();
        }
        _process.Dispose();
        try { Directory.Delete(_folder, recursive: true); } catch (IOException) { }
    }
}
