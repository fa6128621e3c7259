namespace Assistant.Capture.Screen;

/// <summary>A whole screen (or a region of it) as a frame source.</summary>
public interface IScreenSource : IFrameSource
{
    /// <summary>The whole screen's width in pixels.</summary>
    int ScreenWidth { get; }
    /// <summary>The whole screen's height in pixels.</summary>
    int ScreenHeight { get; }
}

/// <summary>The platform's screen source and hotkey: GDI and RegisterHotKey on Windows (untested), X11 elsewhere.</summary>
public static class ScreenSources
{
    /// <param name="display">X display (ignored on Windows); null: $DISPLAY.</param>
    /// <param name="region">X, Y, width, height of the part to grab; null: all of it.</param>
    public static IScreenSource Open(string? display = null, (int X, int Y, int Width, int Height)? region = null) =>
        OperatingSystem.IsWindows() ? new WindowsScreenSource(region) : new X11ScreenSource(display, region);

    /// <summary>The platform's global hotkey for <paramref name="key"/> (e.g. F9); <paramref name="display"/> is the X display (ignored on Windows).</summary>
    public static IGlobalHotkey Hotkey(string key, string? display = null) =>
        OperatingSystem.IsWindows() ? new WindowsHotkey(key) : new X11Hotkey(key, display);
}
