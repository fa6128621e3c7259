using StbImageSharp;

namespace Assistant.Capture;

/// <summary>
/// Still images from disk (PNG, JPEG, BMP, GIF, TGA, PSD, HDR; WebP and TIFF through OpenCV) decoded to RGB, defensively: only regular files
/// of at most <see cref="MaxFileBytes"/> are read; the declared size is checked against <see cref="MaxSide"/> and
/// <see cref="MaxPixels"/> before any pixel is allocated; JPEG, GIF, BMP, TGA and PNG data shorter than its
/// structure says is refused (a symbolic link is judged by its target); and decoding is bounded in time, so a decoder that loops
/// on a crafted file becomes an error instead of a frozen command or live loop.
/// </summary>
public static class ImageFile
{
    /// <summary>Largest accepted side, so a crafted header cannot ask for gigabytes.</summary>
    public const int MaxSide = 16384;

    /// <summary>Most pixels accepted (40 MP: about 120 MB decoded); a camera or screen frame is far below it.</summary>
    public const long MaxPixels = 40_000_000;

    /// <summary>Largest image file read by default (256 MB); $ASSISTANT_MAX_IMAGE_MB changes it.</summary>
    public const long DefaultMaxFileBytes = 256L << 20;

    /// <summary>How long one decode may take before it is abandoned as a decoder fault.</summary>
    public static readonly TimeSpan DecodeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The file-size cap in force: $ASSISTANT_MAX_IMAGE_MB (a positive number of MB) or <see cref="DefaultMaxFileBytes"/>.</summary>
    public static long MaxFileBytes =>
        Environment.GetEnvironmentVariable("ASSISTANT_MAX_IMAGE_MB") is { } mb && double.TryParse(mb, System.Globalization.CultureInfo.InvariantCulture, out var m) && m > 0
            ? (long)(m * (1 << 20)) : DefaultMaxFileBytes;

    /// <summary>Decodes an image file; a missing, special, oversized or broken one is a one-line <see cref="CaptureException"/>.</summary>
    public static Frame Load(string path)
    {
        long cap = MaxFileBytes;
        var info = RegularFile.Check(path, "image", long.MaxValue);
        if (info.Length > cap) throw new CaptureException($"image {path} is {Size(info.Length)}; the limit is {Size(cap)} (ASSISTANT_MAX_IMAGE_MB)");
        byte[] bytes;
        try
        {
            bytes = ReadAtMost(path, cap);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CaptureException($"cannot read image {path}: {e.Message}", inner: e);
        }
        return Decode(bytes, path);
    }

    /// <summary>The file's bytes, refusing one that grows past <paramref name="cap"/> while it is read.</summary>
    private static byte[] ReadAtMost(string path, long cap)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var bytes = RegularFile.ReadAtMost(stream, cap) ?? throw new IOException($"it is larger than the {Size(cap)} limit");
        return bytes.Length > 0 ? bytes : throw new IOException("it is empty");
    }

    private static string Size(long bytes) => RegularFile.Size(bytes);

    /// <summary>Decodes image bytes; <paramref name="name"/> names them in errors.</summary>
    public static Frame Decode(byte[] bytes, string name)
    {
        if (bytes.Length == 0) throw new CaptureException($"image is empty (0 bytes): {name}");
        // A JPEG's structure first: the header parser itself spins forever on some cut JPEG headers.
        bool jpeg = bytes is [0xFF, 0xD8, ..];
        if (jpeg && ImageStructure.Problem(bytes) is { } cut)
            throw new CaptureException($"corrupt image {name}: {cut}");
        if (OpenCvFormats.Size(bytes) is { } other) return OpenCvFormats.Decode(bytes, name, other);
        ImageInfo? info;
        try
        {
            info = Bounded(() => ImageInfo.FromStream(new MemoryStream(bytes)), name);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException or IndexOutOfRangeException)
        {
            info = null;
        }
        if (info is not { } i || i.Width <= 0 || i.Height <= 0)
            throw new CaptureException($"not a readable image (PNG, JPEG, BMP, GIF, TGA, WebP, TIFF): {name}");
        CheckSize(i.Width, i.Height, name);
        if (!jpeg && ImageStructure.Problem(bytes) is { } problem)
            throw new CaptureException($"corrupt image {name}: {problem}");
        try
        {
            var img = Bounded(() => ImageResult.FromMemory(bytes, ColorComponents.RedGreenBlue), name);
            return new Frame(img.Data, img.Width, img.Height, TimeSpan.Zero);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException or IndexOutOfRangeException)
        {
            throw new CaptureException($"corrupt image {name}: {e.Message}", inner: e);
        }
    }

    /// <summary>The limits every decoder is held to, before it allocates: the longest side and the pixel count.</summary>
    internal static void CheckSize(int width, int height, string name)
    {
        if (width > MaxSide || height > MaxSide)
            throw new CaptureException($"image {name} is {width}x{height}; the largest accepted side is {MaxSide}");
        if ((long)width * height > MaxPixels)
            throw new CaptureException($"image {name} is {width}x{height} ({(long)width * height / 1e6:F0} MP); the limit is {MaxPixels / 1e6:F0} MP");
    }

    /// <summary>
    /// Runs a decoder step on a worker with a deadline, so a loop inside it becomes a <see cref="CaptureException"/>.
    /// The abandoned worker cannot be stopped from managed code; the process ends it on exit. The step's own
    /// exception is rethrown as it was.
    /// </summary>
    internal static T Bounded<T>(Func<T> step, string name)
    {
        var work = Task.Run(step);
        try
        {
            if (!work.Wait(DecodeTimeout))
                throw new CaptureException($"corrupt image {name}: decoding took longer than {DecodeTimeout.TotalSeconds:F0} s and was abandoned");
            return work.Result;
        }
        catch (AggregateException e) when (e.InnerException is { } inner)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(inner).Throw();
            throw;  // not reached
        }
    }
}

/// <summary>
/// Structural checks of the formats whose decoder returns partial pixels for truncated data: JPEG (its
/// segments up to the first scan, and an end-of-image marker after it), GIF (the trailer), BMP and TGA (the
/// declared pixel data, or run-length packets, within the file), PNG (a complete IEND chunk).
/// </summary>
internal static class ImageStructure
{
    /// <summary>What is wrong with <paramref name="bytes"/>, or null when nothing checkable is.</summary>
    public static string? Problem(byte[] bytes)
    {
        if (bytes is [0xFF, 0xD8, ..]) return Jpeg(bytes);
        if (bytes is [(byte)'G', (byte)'I', (byte)'F', ..]) return Gif(bytes);
        if (bytes is [(byte)'B', (byte)'M', ..]) return Bmp(bytes);
        if (bytes is [0x89, (byte)'P', (byte)'N', (byte)'G', ..]) return Png(bytes);
        if (bytes is [_, 0 or 1, 1 or 2 or 3 or 9 or 10 or 11, ..]) return Tga(bytes);  // TGA has no magic: its header's types
        return null;
    }

    private static string? Png(byte[] b)
    {
        // The pixels are whole only if the IEND chunk is: its type and its 4-byte CRC.
        int iend = b.AsSpan().LastIndexOf("IEND"u8);
        return iend >= 0 && iend + 8 <= b.Length ? null : "no complete IEND chunk (truncated)";
    }

    private static string? Tga(byte[] b)
    {
        if (b.Length < 18) return "the TGA header is cut short";
        int idLength = b[0], type = b[2], mapLength = BitConverter.ToUInt16(b, 5), mapBits = b[7];
        int width = BitConverter.ToUInt16(b, 12), height = BitConverter.ToUInt16(b, 14), depth = b[16];
        int pixelBytes = (depth + 7) / 8;
        if (pixelBytes is < 1 or > 4) return $"a TGA pixel depth of {depth} bits";
        long p = 18 + idLength + (b[1] == 1 ? mapLength * ((mapBits + 7) / 8L) : 0);
        long pixels = (long)width * height;
        if (type < 9)
            return p + pixels * pixelBytes > b.Length ? $"{width}x{height} at {depth} bits needs {p + pixels * pixelBytes} bytes, the file has {b.Length} (truncated)" : null;
        // Run-length packets: a header byte, then one pixel repeated (high bit set) or that many raw pixels.
        for (long seen = 0; seen < pixels;)
        {
            if (p >= b.Length) return $"the run-length data ends after {seen} of {pixels} pixels (truncated)";
            int header = b[p++], count = (header & 0x7F) + 1;
            p += (header & 0x80) != 0 ? pixelBytes : (long)count * pixelBytes;
            if (p > b.Length) return $"the run-length data ends inside a packet (truncated)";
            seen += count;
        }
        return null;
    }

    private static string? Jpeg(byte[] b)
    {
        // Walk the segments after SOI: each is FF xx with a big-endian length, until the first scan (SOS, FF DA).
        int p = 2;
        while (true)
        {
            if (p + 4 > b.Length) return "the file ends inside its header segments (truncated)";
            if (b[p] != 0xFF) return $"byte {p} should start a JPEG segment";
            byte marker = b[p + 1];
            if (marker == 0xFF) { p++; continue; }  // fill byte
            if (marker == 0x01) { p += 2; continue; }  // TEM: a marker without a length
            if (marker is 0xD8 or 0xD9 || marker is >= 0xD0 and <= 0xD7) return $"marker FF {marker:X2} where a header segment belongs";
            int length = (b[p + 2] << 8) | b[p + 3];
            if (length < 2) return $"a JPEG segment of length {length}";
            if (p + 2 + length > b.Length) return "the file ends inside a header segment (truncated)";
            p += 2 + length;
            if (marker == 0xDA) break;
        }
        // After the first scan, an end-of-image marker must follow (entropy-coded data stuffs every FF as FF 00).
        for (int q = p; q + 1 < b.Length; q++)
            if (b[q] == 0xFF && b[q + 1] == 0xD9) return null;
        return "no end-of-image marker after the image data (truncated)";
    }

    private static string? Gif(byte[] b)
    {
        int end = b.Length - 1;
        while (end > 0 && b[end] == 0) end--;  // zero padding after the trailer is harmless
        return b[end] == 0x3B ? null : "no GIF trailer (truncated)";
    }

    private static string? Bmp(byte[] b)
    {
        if (b.Length < 34) return "the header is cut short";
        int offset = BitConverter.ToInt32(b, 10), width = BitConverter.ToInt32(b, 18), height = Math.Abs(BitConverter.ToInt32(b, 22));
        int bits = BitConverter.ToUInt16(b, 28), compression = BitConverter.ToInt32(b, 30);
        if (width <= 0 || width > ImageFile.MaxSide || height == 0 || height > ImageFile.MaxSide) return $"a {width}x{height} bitmap";
        if (offset < 14 || offset > b.Length) return $"pixel data at {offset} lies outside the {b.Length}-byte file";
        if (compression is not (0 or 3)) return null;  // run-length data has no fixed size to check
        long stride = ((long)width * bits + 31) / 32 * 4;
        return offset + stride * height > b.Length ? $"{width}x{height} at {bits} bits needs {offset + stride * height} bytes, the file has {b.Length} (truncated)" : null;
    }
}

/// <summary>
/// WebP and TIFF, which StbImageSharp does not read, through OpenCV (already here for cameras and video), behind the
/// same limits as every image: the size read from the file's own header and checked before OpenCV allocates, the
/// decode on a deadline, and the decoded size held to the header's (a file that lies is corrupt).
/// </summary>
internal static class OpenCvFormats
{
    /// <summary>The format and size its header declares, for a WebP or TIFF file; null for any other bytes.</summary>
    public static (string Format, int Width, int Height)? Size(byte[] b)
    {
        if (b.Length >= 12 && b.AsSpan(0, 4).SequenceEqual("RIFF"u8) && b.AsSpan(8, 4).SequenceEqual("WEBP"u8)) { var (w, h) = Webp(b); return ("WebP", w, h); }
        if (b is [(byte)'I', (byte)'I', 42, 0, ..] or [(byte)'M', (byte)'M', 0, 42, ..]) return ("TIFF", Tiff(b).W, Tiff(b).H);
        return null;
    }

    private static (int W, int H) Webp(byte[] b)
    {
        if (b.Length < 30) return (0, 0);
        var chunk = b.AsSpan(12, 4);
        if (chunk.SequenceEqual("VP8X"u8)) return (1 + (b[24] | b[25] << 8 | b[26] << 16), 1 + (b[27] | b[28] << 8 | b[29] << 16));
        if (chunk.SequenceEqual("VP8L"u8) && b[20] == 0x2F)
        {
            uint bits = (uint)(b[21] | b[22] << 8 | b[23] << 16 | b[24] << 24);
            return ((int)(bits & 0x3FFF) + 1, (int)((bits >> 14) & 0x3FFF) + 1);
        }
        if (chunk.SequenceEqual("VP8 "u8) && b[23] == 0x9D && b[24] == 0x01 && b[25] == 0x2A)
            return ((b[26] | b[27] << 8) & 0x3FFF, (b[28] | b[29] << 8) & 0x3FFF);
        return (0, 0);
    }

    private static (int W, int H) Tiff(byte[] b)
    {
        bool little = b[0] == 'I';
        uint U32(long at) => at + 4 > b.Length ? 0 : little ? (uint)(b[at] | b[at + 1] << 8 | b[at + 2] << 16 | b[at + 3] << 24) : (uint)(b[at] << 24 | b[at + 1] << 16 | b[at + 2] << 8 | b[at + 3]);
        int U16(long at) => at + 2 > b.Length ? 0 : little ? b[at] | b[at + 1] << 8 : b[at] << 8 | b[at + 1];
        long ifd = U32(4);
        if (ifd < 8 || ifd + 2 > b.Length) return (0, 0);
        int count = U16(ifd), width = 0, height = 0;
        for (int e = 0; e < count && ifd + 2 + 12 * (e + 1) <= b.Length; e++)
        {
            long at = ifd + 2 + 12 * e;
            int tag = U16(at), type = U16(at + 2);
            int value = type == 3 ? U16(at + 8) : type == 4 ? (int)Math.Min(U32(at + 8), int.MaxValue) : 0;
            if (tag == 256) width = value;
            else if (tag == 257) height = value;
        }
        return (width, height);
    }

    public static Frame Decode(byte[] bytes, string name, (string Format, int Width, int Height) header)
    {
        if (header.Width <= 0 || header.Height <= 0) throw new CaptureException($"corrupt image {name}: its {header.Format} header declares no size");
        ImageFile.CheckSize(header.Width, header.Height, name);
        using var bgr = ImageFile.Bounded(() => OpenCvSharp.Cv2.ImDecode(bytes, OpenCvSharp.ImreadModes.Color), name);
        if (bgr.Empty()) throw new CaptureException($"corrupt image {name}: OpenCV could not decode its {header.Format} data");
        var (w, h) = (bgr.Cols, bgr.Rows);
        if (w != header.Width || h != header.Height)
            throw new CaptureException($"corrupt image {name}: its {header.Format} header says {header.Width}x{header.Height}, its data {w}x{h}");
        using var rgb = new OpenCvSharp.Mat();
        OpenCvSharp.Cv2.CvtColor(bgr, rgb, OpenCvSharp.ColorConversionCodes.BGR2RGB);
        int rows = rgb.Rows, cols = rgb.Cols;
        var pixels = new byte[rows * cols * 3];
        if (rgb.IsContinuous()) System.Runtime.InteropServices.Marshal.Copy(rgb.Data, pixels, 0, pixels.Length);
        else
            for (int y = 0; y < rows; y++)
                System.Runtime.InteropServices.Marshal.Copy(rgb.Ptr(y), pixels, y * cols * 3, cols * 3);
        return new Frame(pixels, cols, rows, TimeSpan.Zero);
    }
}
