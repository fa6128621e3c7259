using System.Diagnostics;
using Assistant.Capture.Screen;
using Assistant.Capture.World;
using Assistant.Tests;

namespace Assistant.Capture.Tests;

/// <summary>A real X server (Xvfb) showing a known picture on its root window (ImageMagick's display), captured back.</summary>
public sealed class XvfbFixture : IDisposable
{
    private readonly XvfbServer _xvfb = new(90);

    public XvfbFixture()
    {
        // The picture: two halves and a yellow bar, painted as the root window's background.
        Pattern = new byte[320 * 240 * 3];
        for (int y = 0; y < 240; y++)
            for (int x = 0; x < 320; x++)
            {
                (byte r, byte g, byte b) = y is >= 100 and < 140 && x is >= 100 and < 220 ? ((byte)250, (byte)250, (byte)10)
                    : x < 160 ? ((byte)200, (byte)30, (byte)40) : ((byte)20, (byte)180, (byte)90);
                int o = 3 * (y * 320 + x);
                (Pattern[o], Pattern[o + 1], Pattern[o + 2]) = (r, g, b);
            }
        var png = Path.Combine(Path.GetTempPath(), $"assistant-x11-{Guid.NewGuid():N}.png");
        PngFile.Write(new Frame(Pattern, 320, 240, TimeSpan.Zero), png);
        _xvfb.ShowOnRoot(png);
        // X is asynchronous: wait until the server shows the picture (a pixel of each colour) before testing.
        using var probe = new X11ScreenSource(Display);
        for (int i = 0; i < 100; i++)
        {
            Assert.True(probe.TryRead(out var f));  // a screen never ends
            if (f.Rgb[3 * (10 * 320 + 10)] == 200 && f.Rgb[3 * (120 * 320 + 160)] == 250 && f.Rgb[3 * (10 * 320 + 300) + 1] == 180) return;
            Thread.Sleep(50);
        }
        throw new InvalidOperationException("the pattern never appeared on the Xvfb screen");
    }

    public string Display => _xvfb.Display;
    public byte[] Pattern { get; }

    public void Dispose() => _xvfb.Dispose();
}

public sealed class X11ScreenTests(XvfbFixture x) : IClassFixture<XvfbFixture>
{
    [Fact]
    public void WholeScreen_IsCapturedPixelForPixel()
    {
        using var source = new X11ScreenSource(x.Display);
        Assert.True(source.TryRead(out var frame));
        Assert.Equal((320, 240), (frame.Width, frame.Height));
        int differing = x.Pattern.Where((b, i) => b != frame.Rgb[i]).Count();
        Assert.True(differing == 0, $"{differing} bytes differ; first pixel {frame.Rgb[0]},{frame.Rgb[1]},{frame.Rgb[2]}");
        Assert.Equal("screen", source.Name);
    }

    [Fact]
    public void Region_IsTheRightRegion()
    {
        using var source = new X11ScreenSource(x.Display, (90, 95, 140, 50));
        Assert.True(source.TryRead(out var frame));
        Assert.Equal((140, 50), (frame.Width, frame.Height));
        for (int y = 0; y < 50; y++)
            for (int i = 0; i < 140 * 3; i++)
                Assert.Equal(x.Pattern[3 * ((95 + y) * 320 + 90) + i], frame.Rgb[3 * y * 140 + i]);
    }

    [Fact]
    public void RegionOutsideTheScreen_IsAClearError_NotAnXCrash() =>
        Assert.Contains("not inside the 320x240 screen", Assert.Throws<CaptureException>(() => new X11ScreenSource(x.Display, (300, 200, 100, 100))).Message);

    [Fact]
    public void NoXServer_IsAClearError() =>
        Assert.Contains("cannot open X display :59", Assert.Throws<CaptureException>(() => new X11ScreenSource(":59")).Message);
}
