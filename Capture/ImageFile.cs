using StbImageSharp;

namespace Assistant.Capture;

/// <summary>
/// Still images from disk (PNG, JPEG, BMP, GIF, TGA, PSD, HDR) decoded to RGB, defensively: only regular files
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
            throw new CaptureException($"not a readable image (PNG, JPEG, BMP, GIF, TGA): {name}");
        if (i.Width > MaxSide || i.Height > MaxSide)
            throw new CaptureException($"image {name} is {i.Width}x{i.Height}; the largest accepted side is {MaxSide}");
        if ((long)i.Width * i.Height > MaxPixels)
            throw new CaptureException($"image {name} is {i.Width}x{i.Height} ({(long)i.Width * i.Height / 1e6:F0} MP); the limit is {MaxPixels / 1e6:F0} MP");
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

    /// <summary>
    /// Runs a decoder step on a worker with a deadline, so a loop inside it becomes a <see cref="CaptureException"/>.
    /// The abandoned worker cannot be stopped from managed code; the process ends it on exit. The step's own
    /// exception is rethrown as it was.
    /// </summary>
    private static T Bounded<T>(Func<T> step, string name)
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
