using System.Runtime.InteropServices;

namespace Assistant.Ui;

/// <summary>
/// On Windows, gives .NET's Console.Error a standard error handle of its own, before it is first used. The C
/// runtime's stderr (descriptor 2, which native libraries write to) was bound to the same handle when the
/// process started; Inference points that descriptor at NUL around ONNX Runtime's start (WindowsStderr, for its
/// DXGI line), and replacing a descriptor closes its handle. Sharing one handle, .NET's writer was left with a
/// closed one: the next error line failed with UnauthorizedAccessException (seen under Wine).
/// </summary>
internal static partial class WindowsConsole
{
    private const int StdErrorHandle = -12, DuplicateSameAccess = 2;

    /// <summary>Call first thing in Main, before Console.Error is touched; does nothing off Windows.</summary>
    public static void OwnStandardError()
    {
        if (!OperatingSystem.IsWindows()) return;
        var handle = GetStdHandle(StdErrorHandle);
        if (handle == 0 || handle == -1) return;  // no console, nothing redirected: nothing to share
        var self = GetCurrentProcess();
        if (DuplicateHandle(self, handle, self, out var own, 0, true, DuplicateSameAccess)) SetStdHandle(StdErrorHandle, own);
    }

    [LibraryImport("kernel32.dll")]
    private static partial nint GetStdHandle(int which);

    [LibraryImport("kernel32.dll")]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static partial bool SetStdHandle(int which, nint handle);

    [LibraryImport("kernel32.dll")]
    private static partial nint GetCurrentProcess();

    [LibraryImport("kernel32.dll")]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static partial bool DuplicateHandle(nint sourceProcess, nint source, nint targetProcess, out nint target, uint access,
        [MarshalAs(UnmanagedType.Bool)] bool inherit, uint options);
}
