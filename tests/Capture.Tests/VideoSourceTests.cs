using System.Diagnostics;
using Assistant.Capture.World;

namespace Assistant.Capture.Tests;

/// <summary>Videos made by ffmpeg, played through OpenCV's VideoCapture behind the same source interface.</summary>
public sealed class VideoSourceTests
{
    private static readonly (byte R, byte G, byte B)[] Colours = [(220, 40, 40), (40, 170, 60), (40, 80, 220)];

    /// <summary>12 solid frames cycling red, green, blue at 10 fps, encoded to H.264 by ffmpeg.</summary>
    private static string MakeVideo()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"assistant-video-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        for (int i = 0; i < 12; i++)
        {
            var c = Colours[i % 3];
            var rgb = new byte[64 * 48 * 3];
            for (int p = 0; p < 64 * 48; p++) (rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2]) = c;
            PngFile.Write(new Frame(rgb, 64, 48, TimeSpan.Zero), Path.Combine(dir, $"f{i:D3}.png"));
        }
        var video = Path.Combine(dir, "clip.mp4");
        using var ffmpeg = Process.Start(new ProcessStartInfo("ffmpeg",
            ["-loglevel", "error", "-y", "-framerate", "10", "-i", Path.Combine(dir, "f%03d.png"), "-c:v", "libx264", "-pix_fmt", "yuv420p", video])
        {
            RedirectStandardError = true,
        }) ?? throw new InvalidOperationException("ffmpeg did not start (apt-get install ffmpeg)");
        Assert.True(ffmpeg.WaitForExit(60_000));
        Assert.Equal(0, ffmpeg.ExitCode);
        return video;
    }

    private static (double R, double G, double B) Mean(Frame f)
    {
        double r = 0, g = 0, b = 0;
        for (int p = 0; p < f.Width * f.Height; p++) { r += f.Rgb[3 * p]; g += f.Rgb[3 * p + 1]; b += f.Rgb[3 * p + 2]; }
        int n = f.Width * f.Height;
        return (r / n, g / n, b / n);
    }

    [Fact]
    public void AnFfmpegVideo_PlaysFrameByFrame_InRgb_ThenEnds()
    {
        using var source = VideoSource.File(MakeVideo(), loop: false);
        var frames = new List<Frame>();
        while (source.TryRead(out var f)) frames.Add(f);
        Assert.Equal(12, frames.Count);
        for (int i = 0; i < frames.Count; i++)
        {
            Assert.Equal((64, 48), (frames[i].Width, frames[i].Height));
            var (r, g, b) = Mean(frames[i]);
            var want = Colours[i % 3];
            // H.264 with 4:2:0 chroma is not lossless: a few levels off on flat colour.
            Assert.InRange(r, want.R - 8, want.R + 8);
            Assert.InRange(g, want.G - 8, want.G + 8);
            Assert.InRange(b, want.B - 8, want.B + 8);
        }
        Assert.Equal(TimeSpan.FromSeconds(0.5), frames[5].Timestamp);
    }

    [Fact]
    public void Looping_StartsAgainAtTheEnd()
    {
        using var source = VideoSource.File(MakeVideo(), loop: true);
        var means = Enumerable.Range(0, 15).Select(_ => { Assert.True(source.TryRead(out var f)); return Mean(f); }).ToList();
        Assert.InRange(means[12].R, Colours[0].R - 8, Colours[0].R + 8);  // frame 13 is the first frame again
    }

    [Fact]
    public void MissingOrBrokenVideo_IsAClearError()
    {
        Assert.Contains("video not found", Assert.Throws<CaptureException>(() => VideoSource.File("/nonexistent.mp4", false)).Message);
        var junk = Path.Combine(Path.GetTempPath(), $"assistant-junk-{Guid.NewGuid():N}.mp4");
        File.WriteAllBytes(junk, "not a video"u8.ToArray());
        Assert.Contains("cannot open video", Assert.Throws<CaptureException>(() => VideoSource.File(junk, false)).Message);
    }

    [Fact]
    public void AMissingCamera_IsAClearError()
    {
        // These machines have no camera: OpenCV fails to open device 0, and the source says so in one line.
        var e = Assert.Throws<CaptureException>(() => VideoSource.Camera(0));
        Assert.Contains("camera 0 is not available", e.Message);
    }

    // A device that vanishes and comes back, without a camera: a video file opened through the device path
    // stands in for one. Its end is a "lost device"; the file being there or not decides whether it comes back.

    [Fact]
    public void ALostDevice_IsReopened_AndSaysItCameBack()
    {
        var video = MakeVideo();
        using var source = VideoSource.Device(() => new OpenCvSharp.VideoCapture(video), "camera:test", TimeSpan.FromSeconds(2));
        var messages = new List<string>();
        source.Recovered += messages.Add;
        for (int i = 0; i < 30; i++)
        {
            Assert.True(source.TryRead(out var f));
            var (r, g, b) = Mean(f);
            var c = Colours[i % 12 % 3];  // after each loss the device starts again from its first frame
            Assert.InRange(r, c.R - 30, c.R + 30);
            Assert.InRange(b, c.B - 30, c.B + 30);
        }
        Assert.Equal(2, source.Reopens);
        Assert.Equal(2, messages.Count);
        Assert.Matches(@"^camera:test came back after \d+\.\d s$", messages[0]);
    }

    [Fact]
    public async Task ADeviceThatComesBackLate_IsWaitedFor_AndOneThatStaysGone_IsAClearError()
    {
        var video = MakeVideo();
        var hidden = video + ".away";
        using var source = VideoSource.Device(() => new OpenCvSharp.VideoCapture(video), "camera:test", TimeSpan.FromSeconds(3));
        for (int i = 0; i < 12; i++) Assert.True(source.TryRead(out _));
        // Unplugged now, plugged back in 0.6 s later: the next read waits for it.
        File.Move(video, hidden);
        var back = Task.Run(async () => { await Task.Delay(600); File.Move(hidden, video); });
        var clock = Stopwatch.StartNew();
        Assert.True(source.TryRead(out _));
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.5, 3.0);
        await back;
        Assert.Equal(1, source.Reopens);

        for (int i = 1; i < 12; i++) Assert.True(source.TryRead(out _));
        File.Delete(video);
        clock.Restart();
        var e = Assert.Throws<CaptureException>(() => source.TryRead(out _));
        Assert.Equal("camera:test stopped delivering frames and did not come back within 3 s", e.Message);
        Assert.InRange(clock.Elapsed.TotalSeconds, 2.9, 6.0);
    }
}
