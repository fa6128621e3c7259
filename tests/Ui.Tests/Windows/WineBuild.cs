using System.Diagnostics;
using System.Text;
using Assistant.Tests;

namespace Assistant.Ui.Tests.Windows;

/// <summary>
/// The win-x64 build of the assistant run under Wine (issue 19): a self-contained publish with ONNX Runtime's CPU
/// flavor (`./test` makes it into .build/win-x64 before the tests; made here when missing or older than the
/// sources), a private Wine prefix initialised once, and a runner that passes paths as Z:\... and gives back the
/// exit code and what it printed (CR LF made LF). Shared by the Windows lane's tests, which run one at a time.
/// </summary>
public sealed class WineBuild : IDisposable
{
    /// <summary>Debian's 64-bit Wine loader (apt-get install wine64; there is no wine64 on PATH).</summary>
    public const string Loader = "/usr/lib/wine/wine64";

    public WineBuild()
    {
        Assert.True(File.Exists(Loader), $"{Loader} is missing: apt-get install wine64 (./test installs it)");
        Folder = Path.Combine(Repo.Root, ".build", "win-x64");
        if (Stale()) Publish();
        Prefix = Directory.CreateTempSubdirectory("assistant-wine-").FullName;
        // The prefix's first start makes C:\ and prints its own lines: done once here, not inside a test's output.
        var (code, _, err) = RunRaw([Loader, "wineboot", "--init"], null, 180);
        Assert.True(code == 0, $"wineboot failed: {err}");
        // Wine's audio driver fixed to ALSA, which the microphone tests configure per HOME (.asoundrc): with
        // PulseAudio's client library installed, Wine tries winepulse first, and a sound server autospawned for a
        // non-root user would otherwise take the microphone from them.
        (code, _, err) = RunRaw([Loader, "reg", "add", @"HKCU\Software\Wine\Drivers", "/v", "Audio", "/d", "alsa", "/f"], null, 60);
        Assert.True(code == 0, $"setting Wine's audio driver failed: {err}");
    }

    /// <summary>The published folder (assistant.exe and its libraries).</summary>
    public string Folder { get; }

    /// <summary>The Wine prefix this run uses.</summary>
    public string Prefix { get; }

    /// <summary>A Linux path as the Windows build sees it (Wine maps Z: to /).</summary>
    public static string WindowsPath(string path) => "Z:" + Path.GetFullPath(path).Replace('/', '\\');

    private bool Stale()
    {
        var exe = Path.Combine(Folder, "assistant.exe");
        if (!File.Exists(exe)) return true;
        var built = File.GetLastWriteTimeUtc(exe);
        return new[] { "Capture", "Inference", "Shaders", "Engine", "Ui" }
            .SelectMany(p => Directory.EnumerateFiles(Path.Combine(Repo.Root, p), "*.cs*", SearchOption.AllDirectories))
            .Where(f => !f.Contains("/obj/") && !f.Contains("/bin/"))
            .Any(f => File.GetLastWriteTimeUtc(f) > built);
    }

    private void Publish()
    {
        var (code, output, err) = RunRaw(["dotnet", "publish", Path.Combine(Repo.Root, "Ui", "Ui.csproj"), "-c", "Release", "-r", "win-x64",
            "--self-contained", "-p:OnnxRuntimeFlavor=cpu", "-o", Folder, "--nologo", "-v", "quiet"], null, 600);
        Assert.True(code == 0, $"the win-x64 publish failed: {output} {err}");
    }

    /// <summary>Runs assistant.exe with <paramref name="args"/> under Wine; <paramref name="display"/> null: no X display at all.</summary>
    public Task<(int Code, string Out, string Err)> RunAsync(string[] args, string? display = null, int timeoutSeconds = 120,
        IReadOnlyDictionary<string, string>? environment = null) =>
        Task.Run(() => RunRaw([Loader, Path.Combine(Folder, "assistant.exe"), .. args], display, timeoutSeconds, environment));

    /// <summary>Runs a Windows program under this prefix (cmd, notepad, an .exe path) to its end.</summary>
    public Task<(int Code, string Out, string Err)> RunProgramAsync(string[] command, IReadOnlyDictionary<string, string>? environment = null, int timeoutSeconds = 60) =>
        Task.Run(() => RunRaw([Loader, .. command], null, timeoutSeconds, environment));

    /// <summary>Starts assistant.exe and leaves it running (hotkey, overlay); the caller disposes it.</summary>
    public Process Start(string[] args, string? display, StringBuilder output, IReadOnlyDictionary<string, string>? environment = null) =>
        StartLoader([Path.Combine(Folder, "assistant.exe"), .. args], display, output, environment);

    /// <summary>Starts a Windows program under this prefix (a builtin such as notepad, or an .exe path) and leaves it running.</summary>
    public Process StartLoader(string[] args, string? display, StringBuilder output, IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = Info([Loader, .. args], display, environment);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data.TrimEnd('\r')); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data.TrimEnd('\r')); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private ProcessStartInfo Info(string[] command, string? display, IReadOnlyDictionary<string, string>? environment)
    {
        var psi = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in command[1..]) psi.ArgumentList.Add(a);
        if (Prefix is not null) psi.Environment["WINEPREFIX"] = Prefix;
        psi.Environment["WINEDEBUG"] = "-all";
        psi.Environment.Remove("DISPLAY");
        psi.Environment.Remove("WAYLAND_DISPLAY");
        if (display is not null) psi.Environment["DISPLAY"] = display;
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        return psi;
    }

    private (int Code, string Out, string Err) RunRaw(string[] command, string? display, int timeoutSeconds,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        using var p = Process.Start(Info(command, display, environment))!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{string.Join(' ', command.Take(3))} did not end within {timeoutSeconds} s");
        }
        p.WaitForExit();
        return (p.ExitCode, stdout.Result.Replace("\r\n", "\n"), stderr.Result.Replace("\r\n", "\n"));
    }

    public void Dispose()
    {
        RunRaw([Path.Combine(Path.GetDirectoryName(Loader)!, "wineserver"), "-k"], null, 30);  // ends this prefix's wineserver
        try { Directory.Delete(Prefix, recursive: true); } catch (IOException) { }
    }
}

[CollectionDefinition("wine")]
public sealed class WineCollection : ICollectionFixture<WineBuild>;
