using System.Diagnostics;

namespace Assistant.Tests;

/// <summary>
/// A private Xvfb X server for one test class: a free display number (no lock file) in the given range, 24-bit,
/// and -noreset, because an X server otherwise resets (clearing the root window) when its last client leaves.
/// Stopped with SIGTERM so it removes its lock file and socket.
/// </summary>
public sealed class XvfbServer : IDisposable
{
    private readonly Process _process;

    public XvfbServer(int firstDisplay, int width = 320, int height = 240)
    {
        int number = Enumerable.Range(firstDisplay, 60).First(n => !File.Exists($"/tmp/.X{n}-lock"));
        Display = $":{number}";
        _process = Process.Start(new ProcessStartInfo("Xvfb", [Display, "-screen", "0", $"{width}x{height}x24", "-nolisten", "tcp", "-noreset"])
        {
            RedirectStandardError = true, RedirectStandardOutput = true,
        }) ?? throw new InvalidOperationException("Xvfb did not start (apt-get install xvfb)");
        var socket = $"/tmp/.X11-unix/X{number}";
        for (int i = 0; i < 100 && !File.Exists(socket); i++) Thread.Sleep(50);
        if (!File.Exists(socket)) throw new InvalidOperationException($"Xvfb did not come up on {Display}");
    }

    /// <summary>The display name, e.g. ":91".</summary>
    public string Display { get; }

    /// <summary>Tiles <paramref name="png"/> over the root window (ImageMagick's display, which exits 1 after doing so).</summary>
    public void ShowOnRoot(string png)
    {
        var show = new ProcessStartInfo("display", ["-window", "root", png]) { RedirectStandardError = true };
        show.Environment["DISPLAY"] = Display;
        using var d = Process.Start(show) ?? throw new InvalidOperationException("display did not start (apt-get install imagemagick)");
        if (!d.WaitForExit(20_000)) throw new InvalidOperationException("display did not finish within 20 s");
    }

    public void Dispose()
    {
        using (var term = Process.Start("/bin/kill", ["-TERM", _process.Id.ToString()])) term?.WaitForExit(5000);
        if (!_process.WaitForExit(5000)) _process.Kill();
        _process.Dispose();
    }
}
