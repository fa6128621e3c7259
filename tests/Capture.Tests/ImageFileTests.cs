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
}
