using Assistant.Tests;

namespace Assistant.Capture.Tests;

public sealed class ImageFileTests
{
    private static string Temp(byte[] bytes, string ext = ".png")
    {
        var path = Path.Combine(Path.GetTempPath(), $"assistant-img-{Guid.NewGuid():N}{ext}");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Load_DecodesThePngToRgb()
    {
        var frame = ImageFile.Load(Golden.Tiny.ImagePath);
        Assert.Equal((96, 80), (frame.Width, frame.Height));
        Assert.Equal(96 * 80 * 3, frame.Rgb.Length);
        // Pixel (20, 20) is inside the red circle exporter draws at (8..34, 10..36).
        int p = (20 * 96 + 20) * 3;
        Assert.Equal((220, 30, 30), (frame.Rgb[p], frame.Rgb[p + 1], frame.Rgb[p + 2]));
    }

    [Fact]
    public void Load_MissingFileIsACaptureError()
    {
        var e = Assert.Throws<CaptureException>(() => ImageFile.Load("/nonexistent/x.png"));
        Assert.Contains("not found", e.Message);
    }

    [Fact]
    public void Load_ZeroByteFileIsACaptureError()
    {
        var e = Assert.Throws<CaptureException>(() => ImageFile.Load(Temp([])));
        Assert.Contains("0 bytes", e.Message);
    }

    [Fact]
    public void Load_GarbageIsACaptureError()
    {
        var e = Assert.Throws<CaptureException>(() => ImageFile.Load(Temp("this is not an image at all"u8.ToArray())));
        Assert.Contains("not a readable image", e.Message);
    }

    [Fact]
    public void Load_TruncatedPngIsACaptureError()
    {
        var png = File.ReadAllBytes(Golden.Tiny.ImagePath);
        Assert.Throws<CaptureException>(() => ImageFile.Load(Temp(png[..(png.Length / 2)])));
    }
    [Theory]
    [InlineData(".webp", "-define", "webp:lossless=true")]
    [InlineData(".tiff", "-compress", "none")]
    [InlineData(".tif", "-compress", "lzw")]
    public void WebPAndTiff_DecodeThroughOpenCV_ToThePngsPixels(string ext, string flag, string value)
    {
        var png = ImageFile.Load(Golden.Tiny.ImagePath);
        var path = Path.Combine(Path.GetTempPath(), $"assistant-img-{Guid.NewGuid():N}{ext}");
        Tool.Run("convert", [Golden.Tiny.ImagePath, flag, value, path]);
        var frame = ImageFile.Load(path);
        Assert.Equal((png.Width, png.Height), (frame.Width, frame.Height));
        Assert.Equal(png.Rgb, frame.Rgb);  // lossless both
    }

    [Fact]
    public void ALossyWebP_Decodes_CloseToThePng()
    {
        var png = ImageFile.Load(Golden.Tiny.ImagePath);
        var path = Path.Combine(Path.GetTempPath(), $"assistant-img-{Guid.NewGuid():N}.webp");
        Tool.Run("convert", [Golden.Tiny.ImagePath, "-quality", "90", path]);
        var frame = ImageFile.Load(path);
        Assert.Equal((png.Width, png.Height), (frame.Width, frame.Height));
        double mean = png.Rgb.Zip(frame.Rgb, (a, b) => Math.Abs(a - b)).Average();
        Assert.True(mean < 8, $"mean absolute difference {mean:F2}");
    }

    [Fact]
    public void WebPAndTiffHeaders_AreHeldToTheLimits_BeforeOpenCVAllocates()
    {
        // A VP8X canvas of 16384 x 16384 declared in 30 bytes: refused from the header.
        var webp = new byte[40];
        "RIFF"u8.CopyTo(webp);
        "WEBPVP8X"u8.CopyTo(webp.AsSpan(8));
        webp[16] = 10;
        webp[24] = webp[27] = 0xFF;
        webp[25] = webp[28] = 0x3F;  // width - 1 = height - 1 = 0x3FFF
        var e = Assert.Throws<CaptureException>(() => ImageFile.Load(Temp(webp, ".webp")));
        Assert.Contains("16384x16384", e.Message);
        // A TIFF whose first directory says 100,000 x 10: refused by its side.
        var tiff = new byte[64];
        "II*\0"u8.CopyTo(tiff);
        tiff[4] = 8;  // the directory at 8
        tiff[8] = 2;  // two entries
        void Entry(int at, int tag, int value)
        {
            BitConverter.TryWriteBytes(tiff.AsSpan(at), (ushort)tag);
            BitConverter.TryWriteBytes(tiff.AsSpan(at + 2), (ushort)4);
            BitConverter.TryWriteBytes(tiff.AsSpan(at + 4), 1);
            BitConverter.TryWriteBytes(tiff.AsSpan(at + 8), value);
        }
        Entry(10, 256, 100_000);
        Entry(22, 257, 10);
        e = Assert.Throws<CaptureException>(() => ImageFile.Load(Temp(tiff, ".tiff")));
        Assert.Contains("largest accepted side", e.Message);
        // Cut files: one line, never a crash.
        var path = Path.Combine(Path.GetTempPath(), $"assistant-img-{Guid.NewGuid():N}.tiff");
        Tool.Run("convert", [Golden.Tiny.ImagePath, "-compress", "none", path]);
        var whole = File.ReadAllBytes(path);
        foreach (int keep in new[] { 12, whole.Length / 2 })
        {
            var cut = Assert.Throws<CaptureException>(() => ImageFile.Load(Temp(whole[..keep], ".tiff")));
            Assert.Contains("corrupt image", cut.Message);
        }
    }
}
