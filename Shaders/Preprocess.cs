namespace Assistant.Shaders;

/// <summary>
/// CPU reference kernel for the vision encoder's input: bilinear resize (half-pixel centres, no
/// antialiasing; PyTorch's <c>interpolate(mode="bilinear", align_corners=False)</c>), scale to [0, 1],
/// per-channel normalisation, HWC bytes to planar CHW floats. GPU kernels are tested against this one.
/// </summary>
public static class Preprocess
{
    /// <param name="rgb">Source pixels, row-major, 3 bytes per pixel (R, G, B).</param>
    /// <param name="destination">3 x size x size floats, channel planes in R, G, B order.</param>
    /// <param name="width">Source width in pixels.</param>
    /// <param name="height">Source height in pixels.</param>
    /// <param name="size">Destination side in pixels.</param>
    /// <param name="mean">Per-channel mean (R, G, B).</param>
    /// <param name="std">Per-channel deviation (R, G, B).</param>
    /// <param name="centerCrop">Resize only the centred square of side min(width, height), as CLIP's image processor
    /// does (shortest edge, then a centre crop); false: the whole frame is resized to the square.</param>
    public static void ResizeNormalize(ReadOnlySpan<byte> rgb, int width, int height, int size,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> std, Span<float> destination, bool centerCrop = false)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"image is {width}x{height}");
        if (rgb.Length < width * height * 3) throw new ArgumentException($"{rgb.Length} bytes for a {width}x{height} RGB image");
        if (destination.Length < 3 * size * size) throw new ArgumentException("destination too small", nameof(destination));
        // The source region: the whole frame, or its centred square. Rows keep the frame's stride.
        int stride = width * 3, regionW = width, regionH = height, regionLeft = 0, regionTop = 0;
        if (centerCrop)
        {
            regionW = regionH = Math.Min(width, height);
            (regionLeft, regionTop) = ((width - regionW) / 2, (height - regionH) / 2);
        }
        float sx = (float)regionW / size, sy = (float)regionH / size;
        int plane = size * size;
        Span<float> scale = [1f / (255f * std[0]), 1f / (255f * std[1]), 1f / (255f * std[2])];
        Span<float> shift = [-mean[0] / std[0], -mean[1] / std[1], -mean[2] / std[2]];
        // Column taps are the same on every row: worked out once (the loop runs on every encoded frame).
        Span<int> x0s = size <= 1024 ? stackalloc int[size] : new int[size];
        Span<int> x1s = size <= 1024 ? stackalloc int[size] : new int[size];
        Span<float> fxs = size <= 1024 ? stackalloc float[size] : new float[size];
        for (int x = 0; x < size; x++)
        {
            Source(x, sx, regionW, out int x0, out int x1, out float fx);
            (x0s[x], x1s[x], fxs[x]) = (x0 * 3, x1 * 3, fx);
        }
        for (int y = 0; y < size; y++)
        {
            Source(y, sy, regionH, out int y0, out int y1, out float fy);
            var row0 = rgb.Slice((regionTop + y0) * stride + regionLeft * 3, regionW * 3);
            var row1 = rgb.Slice((regionTop + y1) * stride + regionLeft * 3, regionW * 3);
            for (int x = 0; x < size; x++)
            {
                int p0 = x0s[x], p1 = x1s[x];
                float fx = fxs[x];
                for (int c = 0; c < 3; c++)
                {
                    float top = row0[p0 + c] + (row0[p1 + c] - row0[p0 + c]) * fx;
                    float bottom = row1[p0 + c] + (row1[p1 + c] - row1[p0 + c]) * fx;
                    float v = top + (bottom - top) * fy;
                    destination[c * plane + y * size + x] = v * scale[c] + shift[c];
                }
            }
        }
    }

    /// <summary>Half-pixel source coordinate, clamped at the edges as PyTorch does.</summary>
    private static void Source(int dst, float scale, int limit, out int i0, out int i1, out float frac)
    {
        float s = MathF.Max((dst + 0.5f) * scale - 0.5f, 0f);
        i0 = Math.Min((int)s, limit - 1);
        i1 = Math.Min(i0 + 1, limit - 1);
        frac = s - i0;
    }
}
