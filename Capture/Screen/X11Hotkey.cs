using System.Runtime.InteropServices;

namespace Assistant.Capture.Screen;

/// <summary>
/// A global hotkey on X11: grabs one key on the root window (any modifiers) and reports each press. X protocol
/// errors (another client already grabbed the key) are caught by an error handler and reported as a
/// <see cref="CaptureException"/>, because Xlib's default handler would end the process. Owns its connection.
/// </summary>
public sealed partial class X11Hotkey : IGlobalHotkey
{
    private const int KeyPress = 2, GrabModeAsync = 1;
    private const uint AnyModifier = 1 << 15;
    private readonly X11DisplayHandle _display;
    private readonly IntPtr _root;
    private readonly int _keycode;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int ErrorHandler(IntPtr display, IntPtr errorEvent);

    // Xlib keeps one process-wide handler; this delegate must outlive every call into Xlib, so it is static.
    // It only records the last error code, read right after the synchronous call that caused it.
    private static readonly ErrorHandler Handler = (_, e) => { Interlocked.Exchange(ref _lastError, Marshal.ReadByte(e, 24 + 8)); return 0; };
    private static int _lastError;

    /// <summary>Grabs <paramref name="key"/> on the root window of <paramref name="displayName"/> (null: $DISPLAY); a display that cannot be opened or a key that is taken is a <see cref="CaptureException"/>.</summary>
    public X11Hotkey(string key, string? displayName = null)
    {
        if (!OperatingSystem.IsLinux()) throw new CaptureException("the X11 hotkey needs Linux (on Windows the RegisterHotKey one is used)");
        _display = X11.XOpenDisplay(displayName);
        var shown = displayName ?? Environment.GetEnvironmentVariable("DISPLAY") ?? "(DISPLAY unset)";
        if (_display.IsInvalid) throw new CaptureException($"cannot open X display {shown}: is an X server running there?");
        XSetErrorHandler(Marshal.GetFunctionPointerForDelegate(Handler));
        var keysym = XStringToKeysym(key);
        if (keysym == 0)
        {
            _display.Dispose();
            throw new CaptureException($"unknown key '{key}': use an X keysym name such as F9, Pause or Scroll_Lock");
        }
        _keycode = XKeysymToKeycode(_display, keysym);
        _root = X11.XRootWindow(_display, X11.XDefaultScreen(_display));
        Interlocked.Exchange(ref _lastError, 0);
        XGrabKey(_display, _keycode, AnyModifier, _root, 1, GrabModeAsync, GrabModeAsync);
        XSync(_display, 0);  // errors arrive now, not later
        if (Interlocked.Exchange(ref _lastError, 0) != 0)
        {
            _display.Dispose();
            throw new CaptureException($"cannot grab {key} on {shown}: another program holds it; choose another key with --key");
        }
        Key = key;
    }

    /// <summary>The key as grabbed.</summary>
    public string Key { get; }

    /// <summary>Waits for the next press of the key; false when cancelled first. Polls every 10 ms.</summary>
    public async Task<bool> WaitAsync(CancellationToken cancellation)
    {
        var ev = new byte[192];  // XEvent is a union of 24 longs
        while (!cancellation.IsCancellationRequested)
        {
            while (XPending(_display) > 0)
            {
                XNextEvent(_display, ev);
                if (BitConverter.ToInt32(ev, 0) == KeyPress) return true;
            }
            try
            {
                await Task.Delay(10, cancellation);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }
        return false;
    }

    /// <summary>Releases the grab and closes the display.</summary>
    public void Dispose()
    {
        if (!_display.IsInvalid && !_display.IsClosed)
        {
            XUngrabKey(_display, _keycode, AnyModifier, _root);
            XSync(_display, 0);
        }
        _display.Dispose();
    }

    private const string Lib = "libX11.so.6";

    [LibraryImport(Lib)]
    private static partial IntPtr XSetErrorHandler(IntPtr handler);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nuint XStringToKeysym(string name);

    [LibraryImport(Lib)]
    private static partial byte XKeysymToKeycode(X11DisplayHandle display, nuint keysym);

    [LibraryImport(Lib)]
    private static partial int XGrabKey(X11DisplayHandle display, int keycode, uint modifiers, IntPtr window, int ownerEvents, int pointerMode, int keyboardMode);

    [LibraryImport(Lib)]
    private static partial int XUngrabKey(X11DisplayHandle display, int keycode, uint modifiers, IntPtr window);

    [LibraryImport(Lib)]
    private static partial int XSync(X11DisplayHandle display, int discard);

    [LibraryImport(Lib)]
    private static partial int XPending(X11DisplayHandle display);

    [LibraryImport(Lib)]
    private static partial int XNextEvent(X11DisplayHandle display, byte[] ev);
}
