using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// The frame kernels as graphs on the set's execution provider (the graphs come from Shaders/graphs; see
/// Shaders.FrameGraphs): the frame is handed over once as 8-bit pixels, and the crop, resize and normalisation, and
/// the scene-change thumbnail, run where the tower runs. Its outputs come back to the caller's buffers, so it is
/// a drop-in for the C# kernels. The small inputs (region, sizes, normalisation, thumbnail weights) are made once
/// and rewritten; the frame's tensor is made per call over the frame's own bytes. One caller, one thread at a time.
/// Lifetime: a lease of the set's two sessions (<see cref="ModelSet.LoadFrameKernels"/>, made once per set, since a
/// CUDA session takes tens of milliseconds to make); owns only its small tensors.
/// </summary>
public sealed class FrameKernels : IDisposable
{
    private static readonly string[] PreprocessInputs = ["rgb", "region", "sizes", "scale", "shift"], PreprocessOutputs = ["pixel_values"];
    private static readonly string[] ThumbnailInputs = ["rgb", "rows", "columns"], ThumbnailOutputs = ["thumbnail"];
    private readonly InferenceSession _preprocess, _thumbnail;
    private readonly RunOptions _run = new();
    private readonly long[] _region = new long[4], _sizes = new long[4];
    private readonly float[] _scale = new float[3], _shift = new float[3];
    private readonly OrtValue _regionValue, _sizesValue, _scaleValue, _shiftValue;
    private float[] _rows = [], _columns = [];
    private (int Width, int Height, int Side) _weightsFor;
    private OrtValue? _rowsValue, _columnsValue;

    private FrameKernels(InferenceSession preprocess, InferenceSession thumbnail)
    {
        (_preprocess, _thumbnail) = (preprocess, thumbnail);
        _regionValue = OrtValue.CreateTensorValueFromMemory(_region, [4]);
        _sizesValue = OrtValue.CreateTensorValueFromMemory(_sizes, [4]);
        _scaleValue = OrtValue.CreateTensorValueFromMemory(_scale, [3]);
        _shiftValue = OrtValue.CreateTensorValueFromMemory(_shift, [3]);
    }

    /// <summary>Opens both graphs on <paramref name="factory"/>'s provider; a graph that does not load is one line.
    /// The caller owns the sessions.</summary>
    internal static (InferenceSession Preprocess, InferenceSession Thumbnail) Open(SessionFactory factory, byte[] preprocessGraph, byte[] thumbnailGraph)
    {
        var preprocess = factory.Create(preprocessGraph, "the preprocessing graph");
        try
        {
            return (preprocess, factory.Create(thumbnailGraph, "the thumbnail graph"));
        }
        catch
        {
            preprocess.Dispose();
            throw;
        }
    }

    internal static FrameKernels Lease((InferenceSession Preprocess, InferenceSession Thumbnail) sessions) => new(sessions.Preprocess, sessions.Thumbnail);

    /// <summary>Stopwatch ticks inside ONNX Runtime's Run, both graphs, over this object's life.</summary>
    public long RunTicks { get; private set; }

    /// <summary>
    /// What Shaders.Preprocess.ResizeNormalize does, into <paramref name="vision"/>'s pixel buffer: the region
    /// (top, left, height, width) of the width x height frame resized to the tower's side, then (v / 255 - mean) / std.
    /// </summary>
    public void Preprocess(byte[] rgb, int width, int height, (int Top, int Left, int Height, int Width) region,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> std, VisionState vision) =>
        Preprocess(rgb, width, height, region, mean, std, vision.PixelArray, vision.Spec.ImageSize);

    /// <summary>The same into <paramref name="destination"/>, 3 x <paramref name="size"/> x <paramref name="size"/> floats.</summary>
    public void Preprocess(byte[] rgb, int width, int height, (int Top, int Left, int Height, int Width) region,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> std, float[] destination, int size)
    {
        CheckFrame(rgb, width, height);
        if (size <= 0 || destination.Length != 3 * size * size) throw new ArgumentException($"{destination.Length} floats for a 3 x {size} x {size} picture");
        if (region.Top < 0 || region.Left < 0 || region.Height <= 0 || region.Width <= 0 || region.Top + region.Height > height || region.Left + region.Width > width)
            throw new ArgumentException($"region {region} is not inside the {width}x{height} frame");
        (_region[0], _region[1], _region[2], _region[3]) = (region.Top, region.Left, region.Height, region.Width);
        (_sizes[0], _sizes[1], _sizes[2], _sizes[3]) = (1, 3, size, size);
        for (int c = 0; c < 3; c++) (_scale[c], _shift[c]) = (1f / (255f * std[c]), -mean[c] / std[c]);
        using var frame = OrtValue.CreateTensorValueFromMemory(rgb, [height, width, 3]);
        using var output = OrtValue.CreateTensorValueFromMemory(destination, [1, 3, size, size]);
        RunTicks += OrtCall.Run(_preprocess, _run, PreprocessInputs, [frame, _regionValue, _sizesValue, _scaleValue, _shiftValue],
            PreprocessOutputs, [output], "the preprocessing graph");
    }

    /// <summary>What Shaders.SceneChange.Thumbnail does: the frame box-averaged into side x side x 3 floats.</summary>
    public void Thumbnail(byte[] rgb, int width, int height, int side, float[] destination)
    {
        CheckFrame(rgb, width, height);
        if (side <= 0 || side > 1024 || destination.Length != side * side * 3) throw new ArgumentException($"thumbnail of side {side} into {destination.Length} floats");
        if (_weightsFor != (width, height, side))
        {
            _rowsValue?.Dispose();
            _columnsValue?.Dispose();
            _rows = new float[side * height];
            _columns = new float[width * side];
            ThumbnailWeights(width, height, side, _rows, _columns);
            _rowsValue = OrtValue.CreateTensorValueFromMemory(_rows, [side, height]);
            _columnsValue = OrtValue.CreateTensorValueFromMemory(_columns, [width, side]);
            _weightsFor = (width, height, side);
        }
        using var frame = OrtValue.CreateTensorValueFromMemory(rgb, [height, width, 3]);
        using var output = OrtValue.CreateTensorValueFromMemory(destination, [side, side, 3]);
        RunTicks += OrtCall.Run(_thumbnail, _run, ThumbnailInputs, [frame, _rowsValue!, _columnsValue!], ThumbnailOutputs, [output], "the thumbnail graph");
    }

    /// <summary>
    /// The thumbnail graph's weights for a width x height frame: <paramref name="rows"/> [side, height] and
    /// <paramref name="columns"/> [width, side], each entry of a bin 1 / (the bin's size), with the bins of
    /// Shaders.SceneChange.Thumbnail (row y in bin floor(y side / height)); a bin with no rows or columns stays 0.
    /// </summary>
    public static void ThumbnailWeights(int width, int height, int side, Span<float> rows, Span<float> columns)
    {
        if (rows.Length < side * height || columns.Length < width * side) throw new ArgumentException("weight buffers too small");
        rows[..(side * height)].Clear();
        columns[..(width * side)].Clear();
        Span<int> rowCount = side <= 1024 ? stackalloc int[side] : new int[side], columnCount = side <= 1024 ? stackalloc int[side] : new int[side];
        rowCount.Clear();
        columnCount.Clear();
        for (int y = 0; y < height; y++) rowCount[(int)((long)y * side / height)]++;
        for (int x = 0; x < width; x++) columnCount[(int)((long)x * side / width)]++;
        for (int y = 0; y < height; y++)
        {
            int bin = (int)((long)y * side / height);
            rows[bin * height + y] = 1f / rowCount[bin];
        }
        for (int x = 0; x < width; x++)
        {
            int bin = (int)((long)x * side / width);
            columns[x * side + bin] = 1f / columnCount[bin];
        }
    }

    private static void CheckFrame(byte[] rgb, int width, int height)
    {
        if (width <= 0 || height <= 0 || rgb.Length != (long)width * height * 3)
            throw new ArgumentException($"{rgb.Length} bytes for a {width}x{height} RGB frame");
    }

    /// <summary>Frees this lease's small tensors (the sessions are the set's).</summary>
    public void Dispose()
    {
        foreach (var v in new[] { _regionValue, _sizesValue, _scaleValue, _shiftValue, _rowsValue, _columnsValue }) v?.Dispose();
        _run.Dispose();
    }
}
