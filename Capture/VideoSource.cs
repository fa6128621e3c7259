using System.Diagnostics.CodeAnalysis;
using OpenCvSharp;

namespace Assistant.Capture;

/// <summary>
/// Frames from a video file or a camera through OpenCV's VideoCapture, converted from BGR to RGB. A file
/// ends (or loops). A camera that stops delivering (unplugged, taken by another program) is closed and
/// reopened every 250 ms until it comes back (<see cref="Recovered"/> says so) or <see cref="ReopenWithin"/>
/// passes, which is a <see cref="CaptureException"/> the live loop logs and stops or skips on, per its flag.
/// Owns the capture and its frame buffer.
/// </summary>
public sealed class VideoSource : IFrameSource
{
    private static readonly TimeSpan RetryEvery = TimeSpan.FromMilliseconds(250);
    private VideoCapture _capture;
    private readonly Func<VideoCapture>? _reopen;
    private readonly Mat _bgr = new();
    private readonly bool _loop;
    private long _count;

    private VideoSource(VideoCapture capture, string name, bool loop, Func<VideoCapture>? reopen, TimeSpan reopenWithin)
    {
        _capture = capture;
        Name = name;
        _loop = loop;
        _reopen = reopen;
        ReopenWithin = reopenWithin;
    }

    /// <summary>How long a lost device is retried before it counts as gone (devices only).</summary>
    public TimeSpan ReopenWithin { get; }

    /// <summary>Times a lost device came back.</summary>
    public int Reopens { get; private set; }

    /// <summary>Raised on the reading thread when a lost device comes back, with a one-line message.</summary>
    public event Action<string>? Recovered;

    /// <summary>"video:PATH" or "camera:N".</summary>
    public string Name { get; }

    /// <summary>Frames per second the file or camera reports (0 when unknown).</summary>
    public double Fps => _capture.Fps;

    /// <summary>A video file through OpenCV; <paramref name="loop"/> starts it again at its end. An unreadable file is a <see cref="CaptureException"/>.</summary>
    public static VideoSource File(string path, bool loop)
    {
        RegularFile.Check(path, "video", long.MaxValue);  // streamed, so any size; but a FIFO would block FFmpeg's open
        var capture = Open(() => new VideoCapture(path));
        if (!capture.IsOpened())
        {
            capture.Dispose();
            throw new CaptureException($"cannot open video {path}: not a format this OpenCV build reads");
        }
        CheckFrameSize(capture, $"video {path}");
        return new VideoSource(capture, $"video:{path}", loop, reopen: null, TimeSpan.Zero);
    }

    /// <param name="width">Requested frame width (0 keeps the camera's default); likewise height and fps.</param>
    /// <param name="reopenWithin">How long a camera that stops delivering is retried (default 10 s).</param>
    /// <param name="index">The camera's device index.</param>
    /// <param name="height">Requested frame height (0: the camera's default).</param>
    /// <param name="fps">Requested frame rate (0: the camera's default).</param>
    public static VideoSource Camera(int index, int width = 0, int height = 0, double fps = 0, TimeSpan? reopenWithin = null) =>
        Device(() =>
        {
            var capture = new VideoCapture(index);
            if (width > 0) capture.Set(VideoCaptureProperties.FrameWidth, width);
            if (height > 0) capture.Set(VideoCaptureProperties.FrameHeight, height);
            if (fps > 0) capture.Set(VideoCaptureProperties.Fps, fps);
            return capture;
        }, $"camera:{index}", reopenWithin ?? TimeSpan.FromSeconds(10), $"camera {index} is not available (no device, or it is in use)");

    /// <summary>
    /// A live device opened by <paramref name="open"/> (and reopened by it after a loss): a camera, or in tests
    /// a video file standing in for one.
    /// </summary>
    public static VideoSource Device(Func<VideoCapture> open, string name, TimeSpan reopenWithin, string? unavailable = null)
    {
        var capture = Open(open);
        if (!capture.IsOpened())
        {
            capture.Dispose();
            throw new CaptureException(unavailable ?? $"{name} is not available");
        }
        CheckFrameSize(capture, name);
        return new VideoSource(capture, name, loop: false, open, reopenWithin);
    }

    /// <summary>
    /// Frames are bounded like still images (<see cref="ImageFile.MaxPixels"/>), from the stream's own header before
    /// a frame is decoded (issue 31: a 3 MB MJPEG of 16000 x 16000 frames took 4.2 GB and then said only "ended
    /// after 0 frames"). A frame that grows past it later is refused in <see cref="TryRead"/>.
    /// </summary>
    private static void CheckFrameSize(VideoCapture capture, string name)
    {
        long width = (long)capture.Get(VideoCaptureProperties.FrameWidth), height = (long)capture.Get(VideoCaptureProperties.FrameHeight);
        if (width * height > ImageFile.MaxPixels)
        {
            capture.Dispose();
            throw new CaptureException(TooLarge(name, width, height));
        }
    }

    private static string TooLarge(string name, long width, long height) =>
        $"{name} has frames of {width}x{height} ({width * height / 1e6:F0} MP); the limit is {ImageFile.MaxPixels / 1e6:F0} MP a frame";

    private static VideoCapture Open(Func<VideoCapture> open)
    {
        try
        {
            // OpenCV logs its own warnings to the process's stderr (three lines for a missing camera); the failure
            // reaches the user as one CaptureException line instead. OPENCV_LOG_LEVEL set by the user wins.
            if (Environment.GetEnvironmentVariable("OPENCV_LOG_LEVEL") is null)
                Cv2.SetLogLevel(OpenCvSharp.LogLevel.SILENT);
            // FFmpeg's decoders log every damaged macroblock of a broken video to stderr ("[h264 @ 0x...] error
            // while decoding MB 0 4"); OpenCV reads this level when its FFmpeg backend first opens. -8: quiet.
            NativeEnvironment.Default("OPENCV_FFMPEG_LOGLEVEL", "-8");
            return open();
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or OpenCVException)
        {
            throw new CaptureException($"OpenCV could not start ({e.GetType().Name}): on Debian, apt-get install libgtk-3-0", inner: e);
        }
    }

    /// <summary>The next frame; false at the end of a file. A camera that stops is reopened until <c>reopenWithin</c>, then fails.</summary>
    public bool TryRead([MaybeNullWhen(false)] out Frame frame)
    {
        if (!_capture.Read(_bgr) || _bgr.Empty())
        {
            if (_reopen is not null) return Reopen(out frame);
            if (_loop && _count > 0)
            {
                _capture.Set(VideoCaptureProperties.PosFrames, 0);
                if (_capture.Read(_bgr) && !_bgr.Empty()) return Convert(out frame);
            }
            frame = null;
            return false;
        }
        return Convert(out frame);
    }

    /// <summary>The device stopped: close it and open it again until it delivers a frame or the time is up.</summary>
    private bool Reopen(out Frame frame)
    {
        var lost = System.Diagnostics.Stopwatch.StartNew();
        _capture.Dispose();
        while (true)
        {
            _capture = Open(_reopen!);
            if (_capture.IsOpened() && _capture.Read(_bgr) && !_bgr.Empty())
            {
                Reopens++;
                Recovered?.Invoke($"{Name} came back after {lost.Elapsed.TotalSeconds:F1} s");
                return Convert(out frame);
            }
            _capture.Dispose();
            if (lost.Elapsed >= ReopenWithin)
            {
                _capture = new VideoCapture();  // an unopened one, so Dispose stays simple
                throw new CaptureException($"{Name} stopped delivering frames and did not come back within {ReopenWithin.TotalSeconds:G3} s");
            }
            Thread.Sleep(RetryEvery);
        }
    }

    private bool Convert(out Frame frame)
    {
        if ((long)_bgr.Rows * _bgr.Cols > ImageFile.MaxPixels) throw new CaptureException(TooLarge(Name, _bgr.Cols, _bgr.Rows));
        using var rgb = new Mat();
        Cv2.CvtColor(_bgr, rgb, ColorConversionCodes.BGR2RGB);
        int rows = rgb.Rows, cols = rgb.Cols;  // each property read is a native call
        var bytes = new byte[rows * cols * 3];
        if (rgb.IsContinuous()) System.Runtime.InteropServices.Marshal.Copy(rgb.Data, bytes, 0, bytes.Length);
        else
            for (int y = 0; y < rows; y++)
                System.Runtime.InteropServices.Marshal.Copy(rgb.Ptr(y), bytes, y * cols * 3, cols * 3);
        double fps = _capture.Fps > 0 ? _capture.Fps : 30;
        frame = new Frame(bytes, cols, rows, TimeSpan.FromSeconds(_count++ / fps));
        return true;
    }

    /// <summary>Releases the capture.</summary>
    public void Dispose()
    {
        _bgr.Dispose();
        _capture.Dispose();
    }
}
