namespace Assistant.Capture.Screen;

/// <summary>A whole screen (or a region of it) as a frame source.</summary>
public interface IScreenSource : IFrameSource
{
    int ScreenWidth { get; }
    int ScreenHeight { get; }
}

/// <summary>The platform's screen source and hotkey: GDI and RegisterHotKey on Windows (untested), X11 elsewhere.</summary>
public static class ScreenSources
{
    /// <param name="display">X display (ignored on Windows); null: $DISPLAY.</param>
    public static IScreenSource Open(string? display = null, (int X, int Y, int Width, int Height)? region = null) =>
        OperatingSystem.IsWindows() ? new WindowsScreenSource(region) : new X11ScreenSource(display, region);

    public static IGlobalHotkey Hotkey(string key, string? display = null) =>
        OperatingSystem.IsWindows() ? new WindowsHotkey(key) : new X11Hotkey(key, display);
}
