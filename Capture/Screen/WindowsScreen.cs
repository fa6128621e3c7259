using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Assistant.Capture.Screen;

/// <summary>
/// Screen capture on Windows with GDI: BitBlt of the virtual screen (all monitors) or a region of it into a
/// 32-bit top-down DIB, read back with GetDIBits. Tested under Wine 8 against X11's capture of the same screen,
/// pixel for pixel (tests/Ui.Tests/Windows); not yet run on Windows itself. Owns its device contexts and bitmap.
/// </summary>
public sealed partial class WindowsScreenSource : IScreenSource
{
    private const int SmXVirtual = 76, SmYVirtual = 77, SmCxVirtual = 78, SmCyVirtual = 79;
    private const uint SrcCopy = 0x00CC0020, CaptureBlt = 0x40000000;
    // Owned GDI handles, each a SafeHandle so that one is released even if Dispose never runs; Dispose releases them
    // in GDI's order (the bitmap deselected, then deleted, then the memory DC, then the screen DC).
    private readonly GdiHandle _screenDc, _memoryDc, _bitmap;
    private readonly IntPtr _previous;  // the memory DC's original bitmap, owned by the DC: selected back, never deleted
    private readonly int _x, _y, _width, _height;
    private readonly byte[] _bgra;
    private readonly long _start = System.Diagnostics.Stopwatch.GetTimestamp();  // monotonic: a clock change cannot move frame times

    /// <summary>The screen through GDI (BitBlt of the desktop); <paramref name="region"/> limits it to X, Y, width, height.</summary>
    public WindowsScreenSource((int X, int Y, int Width, int Height)? region = null)
    {
        if (!OperatingSystem.IsWindows()) throw new CaptureException("GDI screen capture needs Windows");
        int left = GetSystemMetrics(SmXVirtual), top = GetSystemMetrics(SmYVirtual);
        ScreenWidth = GetSystemMetrics(SmCxVirtual);
        ScreenHeight = GetSystemMetrics(SmCyVirtual);
        var (x, y, w, h) = region ?? (0, 0, ScreenWidth, ScreenHeight);
        if (w <= 0 || h <= 0 || x < 0 || y < 0 || x + w > ScreenWidth || y + h > ScreenHeight)
            throw new CaptureException($"region {x},{y},{w},{h} is not inside the {ScreenWidth}x{ScreenHeight} screen");
        (_x, _y, _width, _height) = (left + x, top + y, w, h);
        _screenDc = new GdiHandle(GetDC(IntPtr.Zero), GdiHandle.Kind.ScreenDc);
        _memoryDc = new GdiHandle(CreateCompatibleDC(_screenDc.Value), GdiHandle.Kind.MemoryDc);
        _bitmap = new GdiHandle(CreateCompatibleBitmap(_screenDc.Value, w, h), GdiHandle.Kind.Bitmap);
        if (_screenDc.IsInvalid)
        {
            Dispose();
            throw new CaptureException("cannot get the screen's device context (is this a desktop session?)");
        }
        if (_memoryDc.IsInvalid || _bitmap.IsInvalid)
        {
            Dispose();
            throw new CaptureException($"cannot create a {w}x{h} capture bitmap");
        }
        _previous = SelectObject(_memoryDc.Value, _bitmap.Value);
        _bgra = new byte[w * h * 4];
        Name = region is null ? "screen" : $"screen:{x},{y},{w},{h}";
    }

    /// <summary>"screen" or "screen:X,Y,W,H".</summary>
    public string Name { get; }
    /// <summary>The whole screen's width in pixels.</summary>
    public int ScreenWidth { get; }
    /// <summary>The whole screen's height in pixels.</summary>
    public int ScreenHeight { get; }

    /// <summary>Grabs the screen (or region) now; never ends.</summary>
    public bool TryRead([MaybeNullWhen(false)] out Frame frame)
    {
        ObjectDisposedException.ThrowIf(_memoryDc.IsClosed, this);
        if (!BitBlt(_memoryDc.Value, 0, 0, _width, _height, _screenDc.Value, _x, _y, SrcCopy | CaptureBlt))
            throw new CaptureException($"BitBlt failed for {Name} (error {Marshal.GetLastPInvokeError()}): the desktop may be locked");
        var header = new BitmapInfoHeader
        {
            Size = (uint)Marshal.SizeOf<BitmapInfoHeader>(), Width = _width, Height = -_height,  // negative: top-down rows
            Planes = 1, BitCount = 32, Compression = 0,
        };
        int lines;
        unsafe
        {
            fixed (byte* p = _bgra) lines = GetDIBits(_memoryDc.Value, _bitmap.Value, 0, (uint)_height, p, ref header, 0);
        }
        if (lines != _height) throw new CaptureException($"GetDIBits read {lines} of {_height} rows for {Name}");
        var rgb = new byte[_width * _height * 3];
        for (int i = 0, o = 0; i < _bgra.Length; i += 4, o += 3)
        {
            rgb[o] = _bgra[i + 2];
            rgb[o + 1] = _bgra[i + 1];
            rgb[o + 2] = _bgra[i];
        }
        frame = new Frame(rgb, _width, _height, System.Diagnostics.Stopwatch.GetElapsedTime(_start));
        return true;
    }

    /// <summary>Frees the GDI handles.</summary>
    public void Dispose()
    {
        if (!_memoryDc.IsInvalid && !_memoryDc.IsClosed && _previous != IntPtr.Zero) SelectObject(_memoryDc.Value, _previous);
        _bitmap.Dispose();
        _memoryDc.Dispose();
        _screenDc.Dispose();
    }

    /// <summary>A GDI handle this source owns: the screen's DC (ReleaseDC), a memory DC (DeleteDC) or a bitmap (DeleteObject).</summary>
    private sealed class GdiHandle : SafeHandle
    {
        public enum Kind { ScreenDc, MemoryDc, Bitmap }

        private readonly Kind _kind;

        public GdiHandle(IntPtr value, Kind kind) : base(IntPtr.Zero, ownsHandle: true)
        {
            _kind = kind;
            SetHandle(value);
        }

        public override bool IsInvalid => handle == IntPtr.Zero;

        /// <summary>The raw handle, for a GDI call while this object is alive.</summary>
        public IntPtr Value => handle;

        protected override bool ReleaseHandle() => _kind switch
        {
            Kind.ScreenDc => ReleaseDC(IntPtr.Zero, handle) != 0,
            Kind.MemoryDc => DeleteDC(handle),
            _ => DeleteObject(handle),
        };
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct BitmapInfoHeader
    {
        public uint Size;
        public int Width, Height;
        public ushort Planes, BitCount;
        public uint Compression, SizeImage;
        public int XPelsPerMeter, YPelsPerMeter;
        public uint ClrUsed, ClrImportant;
        // GetDIBits writes no colour table for 32-bit BI_RGB, so the header alone is the BITMAPINFO.
    }

    [LibraryImport("user32.dll")] private static partial int GetSystemMetrics(int index);
    [LibraryImport("user32.dll")] private static partial IntPtr GetDC(IntPtr window);
    [LibraryImport("user32.dll")] private static partial int ReleaseDC(IntPtr window, IntPtr dc);
    [LibraryImport("gdi32.dll")] private static partial IntPtr CreateCompatibleDC(IntPtr dc);
    [LibraryImport("gdi32.dll")] private static partial IntPtr CreateCompatibleBitmap(IntPtr dc, int width, int height);
    [LibraryImport("gdi32.dll")] private static partial IntPtr SelectObject(IntPtr dc, IntPtr obj);
    [LibraryImport("gdi32.dll", SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static partial bool BitBlt(IntPtr dest, int x, int y, int width, int height, IntPtr source, int sx, int sy, uint rop);
    [LibraryImport("gdi32.dll")] private static unsafe partial int GetDIBits(IntPtr dc, IntPtr bitmap, uint start, uint lines, byte* bits, ref BitmapInfoHeader info, uint usage);
    [LibraryImport("gdi32.dll")] [return: MarshalAs(UnmanagedType.Bool)] private static partial bool DeleteObject(IntPtr obj);
    [LibraryImport("gdi32.dll")] [return: MarshalAs(UnmanagedType.Bool)] private static partial bool DeleteDC(IntPtr dc);
}
