using OpenCvSharp;

namespace Assistant.Capture;

/// <summary>
/// Frames from a video file or a camera through OpenCV's VideoCapture, converted from BGR to RGB. A file
/// ends (or loops); a camera that stops delivering is reported as a <see cref="CaptureException"/>, which the
/// live loop logs and either stops on or skips, per its flag. Owns the capture and its frame buffer.
/// </summary>
public sealed class VideoSource : IFrameSource
{
    private readonly VideoCapture _capture;
    private readonly Mat _bgr = new();
    private readonly bool _loop, _isCamera;
    private long _count;

    private VideoSource(VideoCapture capture, string name, bool loop, bool isCamera)
    {
        _capture = capture;
        Name = name;
        _loop = loop;
        _isCamera = isCamera;
    }

    public string Name { get; }

    /// <summary>Frames per second the file or camera reports (0 when unknown).</summary>
    public double Fps => _capture.Fps;

    public static VideoSource File(string path, bool loop)
    {
        if (!System.IO.File.Exists(path)) throw new CaptureException($"video not found: {path}");
        var capture = Open(() => new VideoCapture(path));
        if (!capture.IsOpened())
        {
            capture.Dispose();
            throw new CaptureException($"cannot open video {path}: not a format this OpenCV build reads");
        }
        return new VideoSource(capture, $"video:{path}", loop, isCamera: false);
    }

    /// <param name="width">Requested frame width (0 keeps the camera's default); likewise height and fps.</param>
    public static VideoSource Camera(int index, int width = 0, int height = 0, double fps = 0)
    {
        var capture = Open(() => new VideoCapture(index));
        if (!capture.IsOpened())
        {
            capture.Dispose();
            throw new CaptureException($"camera {index} is not available (no device, or it is in use)");
        }
        if (width > 0) capture.Set(VideoCaptureProperties.FrameWidth, width);
        if (height > 0) capture.Set(VideoCaptureProperties.FrameHeight, height);
        if (fps > 0) capture.Set(VideoCaptureProperties.Fps, fps);
        return new VideoSource(capture, $"camera:{index}", loop: false, isCamera: true);
    }

    private static VideoCapture Open(Func<VideoCapture> open)
    {
        try
        {
            // OpenCV logs its own warnings to the process's stderr (three lines for a missing camera); the failure
            // reaches the user as one CaptureException line instead. OPENCV_LOG_LEVEL set by the user wins.
            if (Environment.GetEnvironmentVariable("OPENCV_LOG_LEVEL") is null)
                Cv2.SetLogLevel(OpenCvSharp.LogLevel.SILENT);
            return open();
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or OpenCVException)
        {
            throw new CaptureException($"OpenCV could not start ({e.GetType().Name}): on Debian, apt-get install libgtk-3-0", inner: e);
        }
    }

    public bool TryRead(out Frame frame)
    {
        if (!_capture.Read(_bgr) || _bgr.Empty())
        {
            if (_isCamera) throw new CaptureException($"{Name} stopped delivering frames");
            if (_loop && _count > 0)
            {
                _capture.Set(VideoCaptureProperties.PosFrames, 0);
                if (_capture.Read(_bgr) && !_bgr.Empty()) return Convert(out frame);
            }
            frame = null!;
            return false;
        }
        return Convert(out frame);
    }

    private bool Convert(out Frame frame)
    {
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

    public void Dispose()
    {
        _bgr.Dispose();
        _capture.Dispose();
    }
}
