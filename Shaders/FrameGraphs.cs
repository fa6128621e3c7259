namespace Assistant.Shaders;

/// <summary>
/// The frame kernels as ONNX graphs, for an execution provider to run where the vision tower runs: a frame goes to
/// the provider once as 8-bit pixels (a quarter of the float upload) and is cropped, resized and normalised, or
/// averaged into the scene-change thumbnail, there. tools/frame_graphs.py writes them into Shaders/graphs/; they
/// are embedded in this assembly. The C# kernels (<see cref="Preprocess"/>, <see cref="SceneChange"/>) are their
/// reference: the tests hold each graph to its kernel within one 8-bit step.
/// </summary>
public static class FrameGraphs
{
    /// <summary>preprocess.onnx: rgb uint8 [H, W, 3], region int64 [4] (top, left, height, width), sizes int64 [4]
    /// (1, 3, S, S), scale and shift float [3] -> pixel_values float [1, 3, S, S].</summary>
    public static byte[] PreprocessGraph() => Read("preprocess.onnx");

    /// <summary>thumbnail.onnx: rgb uint8 [H, W, 3], rows float [T, H], columns float [W, T] -> thumbnail float [T, T, 3].</summary>
    public static byte[] ThumbnailGraph() => Read("thumbnail.onnx");

    /// <summary>The part of a width x height frame that <see cref="Preprocess.ResizeNormalize"/> resizes: the whole
    /// frame, or its centred square.</summary>
    public static (int Top, int Left, int Height, int Width) Region(int width, int height, bool centerCrop)
    {
        if (!centerCrop) return (0, 0, height, width);
        int side = Math.Min(width, height);
        return ((height - side) / 2, (width - side) / 2, side, side);
    }

    private static byte[] Read(string name)
    {
        using var stream = typeof(FrameGraphs).Assembly.GetManifestResourceStream("graphs/" + name)
            ?? throw new InvalidOperationException($"graphs/{name} is not embedded in {typeof(FrameGraphs).Assembly.GetName().Name}");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
