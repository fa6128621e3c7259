using System.Runtime.InteropServices;

namespace Assistant.Inference;

/// <summary>
/// The C runtime's standard error (descriptor 2 of ucrtbase, which ONNX Runtime's std::cerr writes to), pointed
/// at NUL for the length of one native call on Windows. ONNX Runtime's device discovery prints "Failed to create
/// DXGI factory." there when DXGI is unavailable (Wine without a display, a server without graphics, a
/// locked-down process): a line the user did not ask for, outside the one-line error rule, about a GPU the CPU
/// path does not use. Replacing descriptor 2 closes the handle it had, so .NET's Console.Error must not share
/// it: the assistant's Main gives it a handle of its own first (Ui/WindowsConsole.cs).
/// </summary>
internal static partial class WindowsStderr
{
    private const int StderrFd = 2, WriteOnly = 1;

    /// <summary>Runs <paramref name="call"/> with the native stderr silenced on Windows; elsewhere just runs it.</summary>
    public static T Silenced<T>(Func<T> call)
    {
        if (!OperatingSystem.IsWindows()) return call();
        int saved = -1, nul = -1;
        try
        {
            saved = Dup(StderrFd);
            nul = Open("NUL", WriteOnly);
            if (saved >= 0 && nul >= 0) Dup2(nul, StderrFd);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return call();  // no ucrtbase: nothing to silence, and nothing is worth failing for
        }
        try
        {
            return call();
        }
        finally
        {
            if (saved >= 0)
            {
                Dup2(saved, StderrFd);
                Close(saved);
            }
            if (nul >= 0) Close(nul);
        }
    }

    [LibraryImport("ucrtbase.dll", EntryPoint = "_dup")]
    private static partial int Dup(int fd);

    [LibraryImport("ucrtbase.dll", EntryPoint = "_dup2")]
    private static partial int Dup2(int from, int to);

    [LibraryImport("ucrtbase.dll", EntryPoint = "_open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("ucrtbase.dll", EntryPoint = "_close")]
    private static partial int Close(int fd);
}
