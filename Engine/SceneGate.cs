using Assistant.Capture;
using Assistant.Inference;
using Assistant.Shaders;

namespace Assistant.Engine;

/// <summary>
/// The frame pipeline's scene gate: a 16x16 thumbnail of each frame against the last encoded frame's (mean absolute
/// difference, 0..255), and a changed picture's preprocessing into the vision state's pixels. Each kernel runs as an
/// ONNX graph on the set's provider where that measured faster than its C# kernel (<see cref="ModelSet.FrameGraphUse"/>:
/// the thumbnail everywhere, preprocessing off the CPU). Owns those graphs' sessions (Dispose). One thread at a time.
/// </summary>
internal sealed class SceneGate : IDisposable
{
    private const int ThumbSide = 16;
    private readonly float[] _thumb = new float[ThumbSide * ThumbSide * 3];
    private readonly float[] _lastThumb = new float[ThumbSide * ThumbSide * 3];
    private readonly float[] _mean, _std;  // the manifest's normalisation, as the preprocessing kernel takes it
    private readonly FrameKernels? _kernels;
    private readonly bool _thumbnailOnGraph, _preprocessOnGraph;

    public SceneGate(ModelSet models, double threshold)
    {
        if (!(threshold >= 0)) throw new EngineException($"scene-change threshold must be >= 0, got {threshold}");
        Threshold = threshold;
        _mean = [.. models.Vision.Spec.Mean];
        _std = [.. models.Vision.Spec.Std];
        (_thumbnailOnGraph, _preprocessOnGraph) = models.FrameGraphUse;
        _kernels = models.LoadFrameKernels(FrameGraphs.PreprocessGraph, FrameGraphs.ThumbnailGraph);
    }

    /// <summary>Mean absolute thumbnail difference above which a frame is a new picture.</summary>
    public double Threshold { get; }

    /// <summary>
    /// Whether <paramref name="frame"/> is a new picture: always when nothing is encoded (<paramref name="encoded"/>
    /// false), else when its thumbnail moved more than the threshold; <paramref name="change"/> is the metric
    /// (infinite with nothing encoded).
    /// </summary>
    public bool Changed(Frame frame, bool encoded, out float change)
    {
        if (_thumbnailOnGraph) _kernels!.Thumbnail(frame.Rgb, frame.Width, frame.Height, ThumbSide, _thumb);
        else SceneChange.Thumbnail(frame.Rgb, frame.Width, frame.Height, ThumbSide, _thumb);
        change = encoded ? SceneChange.MeanAbsDiff(_thumb, _lastThumb) : float.PositiveInfinity;
        return !encoded || change > Threshold;
    }

    /// <summary>Resizes and normalises <paramref name="frame"/> into <paramref name="vision"/>'s pixels.</summary>
    public void Preprocess(Frame frame, VisionState vision)
    {
        var vs = vision.Spec;
        if (_preprocessOnGraph)
            _kernels!.Preprocess(frame.Rgb, frame.Width, frame.Height, FrameGraphs.Region(frame.Width, frame.Height, vs.Crop == "center"), _mean, _std, vision);
        else
            Shaders.Preprocess.ResizeNormalize(frame.Rgb, frame.Width, frame.Height, vs.ImageSize, _mean, _std, vision.PixelBuffer, vs.Crop == "center");
    }

    /// <summary>The last frame checked was encoded: later frames are compared with its thumbnail.</summary>
    public void Encoded() => _thumb.CopyTo(_lastThumb, 0);

    /// <summary>Frees the frame kernels' sessions.</summary>
    public void Dispose() => _kernels?.Dispose();
}
