using System.Diagnostics;
using Assistant.Tests;

namespace Assistant.Capture.Tests;

/// <summary>
/// Image files a hostile tester made (issue 20): each is one <see cref="CaptureException"/> within seconds, before
/// any large allocation; and the intact versions of the same pictures still decode.
/// </summary>
public sealed class HostileImageTests
{
    private static string Temp(byte[] bytes, string ext)
    {
        var path = Path.Combine(Path.GetTempPath(), $"assistant-hostile-{Guid.NewGuid():N}{ext}");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>The golden picture converted by ImageMagick to <paramref name="ext"/>.</summary>
    private static byte[] Converted(string ext)
    {
        var path = Path.Combine(Path.GetTempPath(), $"assistant-hostile-{Guid.NewGuid():N}{ext}");
        Tool.Run("convert", [Golden.Tiny.ImagePath, path]);
        var bytes = File.ReadAllBytes(path);
        File.Delete(path);
        return bytes;
    }

    private static CaptureException RefusedQuickly(string path)
    {
        var clock = Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<CaptureException>(() => ImageFile.Load(path));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64L << 20, "allocated 64 MB or more before refusing");
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Fact]
    public void SpecialFiles_AreRefusedWithoutBeingOpened()
    {
        var fifo = Path.Combine(Path.GetTempPath(), $"assistant-fifo-{Guid.NewGuid():N}.png");
        Tool.Run("mkfifo", [fifo]);
        Assert.Contains("not a regular file", RefusedQuickly(fifo).Message);  // used to block forever
        File.Delete(fifo);
        Assert.Contains("not a regular file", RefusedQuickly("/dev/zero").Message);  // used to read until 4 GB
        Assert.Contains("not a regular file", RefusedQuickly("/dev/urandom").Message);
        Assert.Contains("folder", RefusedQuickly(Path.GetTempPath()).Message);
    }

    [Theory]
    [InlineData(new byte[] { 0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46 }, "truncated")]  // APP0 cut short: the decoder spun forever
    [InlineData(new byte[] { 0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00 }, "truncated")]
    [InlineData(new byte[] { 0xFF, 0xD8, 0xFF, 0xE0, 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13 }, "segment")]  // a PNG body behind a JPEG marker: spun too
    [InlineData(new byte[] { 0xFF, 0xD8, 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13 }, "segment")]
    public void CraftedJpegHeaders_AreRefused(byte[] bytes, string why) =>
        Assert.Contains(why, RefusedQuickly(Temp(bytes, ".jpg")).Message);

    [Fact]
    public void ATinyHeaderDeclaringAHugePicture_IsRefusedBeforeAllocating()
    {
        // An 18-byte TGA header: uncompressed true colour, 16384 x 16384 (decoded anyway before, at 1.57 GB).
        var tga = new byte[18];
        tga[2] = 2;
        BitConverter.GetBytes((ushort)16384).CopyTo(tga, 12);
        BitConverter.GetBytes((ushort)16384).CopyTo(tga, 14);
        tga[16] = 24;
        Assert.Contains("MP", RefusedQuickly(Temp(tga, ".tga")).Message);
    }

    [Theory]
    [InlineData(".jpg")]
    [InlineData(".gif")]
    [InlineData(".bmp")]
    public void TruncatedFiles_AreRefused_WhileTheIntactOnesDecode(string ext)
    {
        var whole = Converted(ext);
        var frame = ImageFile.Load(Temp(whole, ext));
        Assert.Equal((96, 80), (frame.Width, frame.Height));
        foreach (var fraction in new[] { 0.5, 0.9 })
            Assert.Contains("truncated", RefusedQuickly(Temp(whole[..(int)(whole.Length * fraction)], ext)).Message);
    }
}
