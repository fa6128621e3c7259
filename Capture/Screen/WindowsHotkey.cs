using System.Runtime.InteropServices;

namespace Assistant.Capture.Screen;

/// <summary>
/// A global hotkey on Windows with RegisterHotKey: a thread of its own registers the key and pumps its
/// message queue; each WM_HOTKEY releases one waiter. Tested under Wine 8 (tests/Ui.Tests/Windows), where a key
/// reaches it while a Wine window has the keyboard; not yet run on Windows itself. Owns the thread and the registration.
/// </summary>
public sealed partial class WindowsHotkey : IGlobalHotkey
{
    private const uint WmHotkey = 0x0312, WmQuit = 0x0012, WmUser = 0x0400, ModNoRepeat = 0x4000, PmNoRemove = 0;
    private const int HotkeyId = 0x4153;  // any id unique to this thread
    private readonly SemaphoreSlim _presses = new(0);
    private readonly Thread _pump;
    private readonly TaskCompletionSource<string?> _registered = new();
    private uint _threadId;

    /// <summary>Registers <paramref name="key"/> with RegisterHotKey on a thread of its own (Windows).</summary>
    public WindowsHotkey(string key)
    {
        if (!OperatingSystem.IsWindows()) throw new CaptureException("RegisterHotKey needs Windows");
        uint vk = VirtualKey(key) ?? throw new CaptureException($"unknown key '{key}': use F1-F24, Pause, Scroll_Lock, or a letter or digit");
        Key = key;
        _pump = new Thread(() => Pump(vk)) { IsBackground = true, Name = "hotkey" };
        _pump.Start();
        if (_registered.Task.Result is { } error) throw new CaptureException(error);
    }

    /// <summary>The key as registered.</summary>
    public string Key { get; }

    /// <summary>Waits for the next press; false when cancelled first.</summary>
    public async Task<bool> WaitAsync(CancellationToken cancellation)
    {
        try
        {
            await _presses.WaitAsync(cancellation);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private void Pump(uint vk)
    {
        _threadId = GetCurrentThreadId();
        // The thread's message queue must exist before the key is registered: Windows makes one for the first
        // user32 call (PostThreadMessage's documentation asks for this PeekMessage), but Wine 8 registers the
        // hotkey against the queue the thread has at that moment, a null one, and its wineserver crashed on the
        // first press (server/queue.c check_hotkey posts to hotkey->queue). Seen under Wine, not on Windows.
        PeekMessage(out _, IntPtr.Zero, WmUser, WmUser, PmNoRemove);
        if (!RegisterHotKey(IntPtr.Zero, HotkeyId, ModNoRepeat, vk))
        {
            _registered.SetResult($"cannot register {Key} as a global hotkey: another program holds it; choose another key with --key");
            return;
        }
        _registered.SetResult(null);
        try
        {
            while (GetMessage(out var msg, IntPtr.Zero, 0, 0) > 0)
                if (msg.Message == WmHotkey) _presses.Release();
        }
        finally
        {
            UnregisterHotKey(IntPtr.Zero, HotkeyId);
        }
    }

    /// <summary>Virtual-key codes for the names the X11 hotkey takes too.</summary>
    public static uint? VirtualKey(string key) => key switch
    {
        ['F', .. var n] when int.TryParse(n, out int f) && f is >= 1 and <= 24 => (uint)(0x70 + f - 1),
        "Pause" => 0x13,
        "Scroll_Lock" => 0x91,
        "Insert" => 0x2D,
        [var c] when char.IsAsciiLetterOrDigit(c) => char.ToUpperInvariant(c),
        _ => null,
    };

    /// <summary>Unregisters the key and ends its thread.</summary>
    public void Dispose()
    {
        if (_threadId != 0) PostThreadMessage(_threadId, WmQuit, IntPtr.Zero, IntPtr.Zero);
        _pump.Join(TimeSpan.FromSeconds(2));
        _presses.Dispose();
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Msg
    {
        public IntPtr Window;
        public uint Message;
        public IntPtr WParam, LParam;
        public uint Time;
        public int X, Y;
    }

    [LibraryImport("user32.dll")] [return: MarshalAs(UnmanagedType.Bool)] private static partial bool RegisterHotKey(IntPtr window, int id, uint modifiers, uint vk);
    [LibraryImport("user32.dll")] [return: MarshalAs(UnmanagedType.Bool)] private static partial bool UnregisterHotKey(IntPtr window, int id);
    [LibraryImport("user32.dll", EntryPoint = "PeekMessageW")] [return: MarshalAs(UnmanagedType.Bool)] private static partial bool PeekMessage(out Msg msg, IntPtr window, uint min, uint max, uint remove);
    [LibraryImport("user32.dll", EntryPoint = "GetMessageW")] private static partial int GetMessage(out Msg msg, IntPtr window, uint min, uint max);
    [LibraryImport("user32.dll", EntryPoint = "PostThreadMessageW")] [return: MarshalAs(UnmanagedType.Bool)] private static partial bool PostThreadMessage(uint thread, uint msg, IntPtr wParam, IntPtr lParam);
    [LibraryImport("kernel32.dll")] private static partial uint GetCurrentThreadId();
}
