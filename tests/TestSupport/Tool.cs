using System.Diagnostics;

namespace Assistant.Tests;

/// <summary>Runs a command-line tool the tests make their inputs with (ImageMagick, fc-match, espeak-ng, sox, ffmpeg, xdotool).</summary>
public static class Tool
{
    /// <summary>Its standard output; a tool that cannot start or exits non-zero throws with its stderr.</summary>
    /// <param name="display">The X display it works on (DISPLAY), for xdotool; null: the test's own.</param>
    public static string Run(string exe, IEnumerable<string> args, string? display = null)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (display is not null) psi.Environment["DISPLAY"] = display;
        Process? started;
        try
        {
            started = Process.Start(psi);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            started = null;
        }
        using var p = started ?? throw new InvalidOperationException($"{exe} did not start (./test installs it from Debian)");
        var output = p.StandardOutput.ReadToEndAsync();
        var err = p.StandardError.ReadToEndAsync();  // both drained at once: a full stderr pipe cannot stall it
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{exe} failed ({p.ExitCode}): {err.Result.Trim()}");
        return output.Result;
    }
}
