namespace Assistant.Shaders;

/// <summary>
/// CPU reference kernels for the scene-change gate: a small box-averaged thumbnail of a frame, and the mean
/// absolute difference between two thumbnails (0..255). Cheap enough to run on every frame; the vision
/// encoder runs only when the difference says the picture changed.
/// </summary>
public static class SceneChange
{
    /// <summary>Averages <paramref name="rgb"/> (width x height x 3) into a side x side x 3 thumbnail.</summary>
    public static void Thumbnail(ReadOnlySpan<byte> rgb, int width, int height, int side, Span<float> destination)
    {
        if (width <= 0 || height <= 0 || side <= 0) throw new ArgumentException($"bad sizes {width}x{height} -> {side}");
        if (rgb.Length < width * height * 3) throw new ArgumentException("frame buffer too small", nameof(rgb));
        if (destination.Length < side * side * 3) throw new ArgumentException("thumbnail buffer too small", nameof(destination));
        destination[..(side * side * 3)].Clear();
        Span<int> counts = side * side <= 1024 ? stackalloc int[side * side] : new int[side * side];
        counts.Clear();
        // The thumbnail column of each source column, worked out once rather than per pixel (this runs every frame).
        Span<int> columns = width <= 4096 ? stackalloc int[width] : new int[width];
        for (int x = 0; x < width; x++) columns[x] = (int)((long)x * side / width);
        for (int y = 0; y < height; y++)
        {
            int rowCell = (int)((long)y * side / height) * side;
            var row = rgb.Slice(y * width * 3, width * 3);
            for (int x = 0; x < width; x++)
            {
                int cell = rowCell + columns[x];
                int p = 3 * x;
                destination[3 * cell] += row[p];
                destination[3 * cell + 1] += row[p + 1];
                destination[3 * cell + 2] += row[p + 2];
                counts[cell]++;
            }
        }
        for (int c = 0; c < side * side; c++)
            if (counts[c] > 0)
                for (int k = 0; k < 3; k++) destination[3 * c + k] /= counts[c];
    }

    /// <summary>Mean absolute difference of two thumbnails, in 0..255 units.</summary>
    public static float MeanAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException("thumbnails differ in size");
        float sum = 0;
        for (int i = 0; i < a.Length; i++) sum += MathF.Abs(a[i] - b[i]);
        return a.Length == 0 ? 0 : sum / a.Length;
    }
}
