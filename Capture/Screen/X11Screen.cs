using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Assistant.Capture.Screen;

/// <summary>An open connection to an X server; closed (XCloseDisplay) when disposed.</summary>
internal sealed class X11DisplayHandle() : SafeHandle(IntPtr.Zero, ownsHandle: true)
{
    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        X11.XCloseDisplay(handle);
        return true;
    }
}

/// <summary>libX11 entry points (X11 only; tested under Xvfb).</summary>
internal static partial class X11
{
    private const string Lib = "libX11.so.6";
    public const int ZPixmap = 2;

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial X11DisplayHandle XOpenDisplay(string? name);

    [LibraryImport(Lib)]
    public static partial int XCloseDisplay(IntPtr display);

    [LibraryImport(Lib)]
    public static partial int XDefaultScreen(X11DisplayHandle display);

    [LibraryImport(Lib)]
    public static partial IntPtr XRootWindow(X11DisplayHandle display, int screen);

    [LibraryImport(Lib)]
    public static partial int XDisplayWidth(X11DisplayHandle display, int screen);

    [LibraryImport(Lib)]
    public static partial int XDisplayHeight(X11DisplayHandle display, int screen);

    [LibraryImport(Lib)]
    public static partial IntPtr XGetImage(X11DisplayHandle display, IntPtr drawable, int x, int y, uint width, uint height, nuint planeMask, int format);

    /// <summary>The head of Xlib's XImage (64-bit layout), up to the destroy function it must be freed with.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct XImage
    {
        public int Width, Height, XOffset, Format;
        public IntPtr Data;
        public int ByteOrder, BitmapUnit, BitmapBitOrder, BitmapPad, Depth, BytesPerLine, BitsPerPixel;
        public nuint RedMask, GreenMask, BlueMask;
        public IntPtr ObData;
        public IntPtr CreateImage, DestroyImage;
    }
}

/// <summary>
/// Captures the X11 screen, or a region of it, as RGB frames (XGetImage on the root window). Owns its display
/// connection. Regions are checked against the screen first, because an out-of-range request is an X protocol
/// error that Xlib's default handler answers by ending the process.
/// </summary>
public sealed class X11ScreenSource : IScreenSource
{
    private readonly X11DisplayHandle _display;
    private readonly IntPtr _root;
    private readonly int _x, _y, _width, _height;
    private readonly long _start = System.Diagnostics.Stopwatch.GetTimestamp();  // monotonic: a clock change cannot move frame times

    /// <param name="displayName">X display, e.g. ":99"; null uses $DISPLAY.</param>
    /// <param name="region">x, y, width, height; null captures the whole screen.</param>
    public X11ScreenSource(string? displayName = null, (int X, int Y, int Width, int Height)? region = null)
    {
        if (!OperatingSystem.IsLinux()) throw new CaptureException("screen capture through X11 needs Linux (on Windows the GDI source is used)");
        try
        {
            _display = X11.XOpenDisplay(displayName);
        }
        catch (DllNotFoundException)
        {
            throw new CaptureException("libX11 is not installed: apt-get install libx11-6");
        }
        var shown = displayName ?? Environment.GetEnvironmentVariable("DISPLAY") ?? "(DISPLAY unset)";
        if (_display.IsInvalid) throw new CaptureException($"cannot open X display {shown}: is an X server running there?");
        int screen = X11.XDefaultScreen(_display);
        _root = X11.XRootWindow(_display, screen);
        ScreenWidth = X11.XDisplayWidth(_display, screen);
        ScreenHeight = X11.XDisplayHeight(_display, screen);
        (_x, _y, _width, _height) = region ?? (0, 0, ScreenWidth, ScreenHeight);
        if (_width <= 0 || _height <= 0 || _x < 0 || _y < 0 || _x + _width > ScreenWidth || _y + _height > ScreenHeight)
        {
            _display.Dispose();
            throw new CaptureException($"region {_x},{_y},{_width},{_height} is not inside the {ScreenWidth}x{ScreenHeight} screen of {shown}");
        }
        Name = region is null ? "screen" : $"screen:{_x},{_y},{_width},{_height}";
    }

    /// <summary>"screen" or "screen:X,Y,W,H".</summary>
    public string Name { get; }
    /// <summary>The whole screen's width in pixels.</summary>
    public int ScreenWidth { get; }
    /// <summary>The whole screen's height in pixels.</summary>
    public int ScreenHeight { get; }

    /// <summary>Grabs the screen (or region) now with XGetImage; never ends.</summary>
    public bool TryRead([MaybeNullWhen(false)] out Frame frame)
    {
        var ptr = X11.XGetImage(_display, _root, _x, _y, (uint)_width, (uint)_height, nuint.MaxValue, X11.ZPixmap);
        if (ptr == IntPtr.Zero) throw new CaptureException($"XGetImage failed for {Name}");
        var image = Marshal.PtrToStructure<X11.XImage>(ptr);
        try
        {
            if (image.BitsPerPixel != 32)
                throw new CaptureException($"{Name}: {image.BitsPerPixel}-bit screens are not supported (32-bit pixels expected)");
            var rgb = new byte[_width * _height * 3];
            int rs = Shift(image.RedMask), gs = Shift(image.GreenMask), bs = Shift(image.BlueMask);
            unsafe
            {
                byte* data = (byte*)image.Data;
                for (int y = 0; y < _height; y++)
                {
                    uint* row = (uint*)(data + (long)y * image.BytesPerLine);
                    for (int x = 0; x < _width; x++)
                    {
                        uint p = row[x];
                        int o = 3 * (y * _width + x);
                        rgb[o] = (byte)((p & image.RedMask) >> rs);
                        rgb[o + 1] = (byte)((p & image.GreenMask) >> gs);
                        rgb[o + 2] = (byte)((p & image.BlueMask) >> bs);
                    }
                }
            }
            frame = new Frame(rgb, _width, _height, System.Diagnostics.Stopwatch.GetElapsedTime(_start));
            return true;
        }
        finally
        {
            // XDestroyImage is a macro over the image's own destroy function.
            var destroy = Marshal.GetDelegateForFunctionPointer<DestroyImage>(image.DestroyImage);
            destroy(ptr);
        }
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int DestroyImage(IntPtr image);

    private static int Shift(nuint mask) => mask == 0 ? 0 : System.Numerics.BitOperations.TrailingZeroCount((ulong)mask);

    /// <summary>Closes the display.</summary>
    public void Dispose() => _display.Dispose();
}
