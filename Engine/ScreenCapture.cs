using Assistant.Capture;
using Assistant.Capture.Screen;

namespace Assistant.Engine;

/// <summary>The screen, or a region of it, grabbed on demand (GDI on Windows, X11 elsewhere). Owns the connection.</summary>
public sealed class ScreenCapture : IDisposable
{
    private readonly IScreenSource _screen;

    private ScreenCapture(IScreenSource screen) => _screen = screen;

    /// <param name="display">X display (ignored on Windows); null: $DISPLAY.</param>
    /// <param name="region">X, Y, width, height of the part to grab; null: all of it.</param>
    public static ScreenCapture Open(string? display = null, (int X, int Y, int Width, int Height)? region = null) => new(ScreenSources.Open(display, region));

    /// <summary>The whole screen's width in pixels.</summary>
    public int ScreenWidth => _screen.ScreenWidth;

    /// <summary>The whole screen's height in pixels.</summary>
    public int ScreenHeight => _screen.ScreenHeight;

    /// <summary>The screen (or region) now.</summary>
    public FramePicture Grab() =>
        _screen.TryRead(out var frame) ? new FramePicture(frame) : throw new CaptureException("the screen gave no frame");

    /// <summary>Closes the connection.</summary>
    public void Dispose() => _screen.Dispose();
}

/// <summary>A global hotkey (RegisterHotKey on Windows, an X11 key grab elsewhere): each press wakes one <see cref="WaitAsync"/>.</summary>
public sealed class GlobalHotkey : IDisposable
{
    private readonly IGlobalHotkey _hotkey;

    private GlobalHotkey(IGlobalHotkey hotkey) => _hotkey = hotkey;

    /// <param name="key">The key's name, e.g. F9.</param>
    /// <param name="display">X display (ignored on Windows); null: $DISPLAY.</param>
    public static GlobalHotkey Open(string key, string? display = null) => new(ScreenSources.Hotkey(key, display));

    /// <summary>The key as grabbed.</summary>
    public string Key => _hotkey.Key;

    /// <summary>Waits for the next press; false when cancelled first.</summary>
    public Task<bool> WaitAsync(CancellationToken cancellation) => _hotkey.WaitAsync(cancellation);

    /// <summary>Releases the grab.</summary>
    public void Dispose() => _hotkey.Dispose();
}
