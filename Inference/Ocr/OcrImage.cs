namespace Assistant.Inference.Ocr;

/// <summary>A rectangle in image pixels: [X, X + Width) x [Y, Y + Height).</summary>
public readonly record struct PixelRect(int X, int Y, int Width, int Height)
{
    /// <summary>X + Width.</summary>
    public int Right => X + Width;
    /// <summary>Y + Height.</summary>
    public int Bottom => Y + Height;
    /// <summary>The vertical centre.</summary>
    public float CentreY => Y + Height * 0.5f;

    /// <summary>This rectangle clipped to a width x height image (possibly empty).</summary>
    public PixelRect ClipTo(int width, int height)
    {
        int x0 = Math.Clamp(X, 0, width), y0 = Math.Clamp(Y, 0, height);
        int x1 = Math.Clamp(Right, 0, width), y1 = Math.Clamp(Bottom, 0, height);
        return new PixelRect(x0, y0, x1 - x0, y1 - y0);
    }
}

/// <summary>
/// The one pixel path of the OCR models: a region of an RGB image, resized bilinearly (pixel centres
/// aligned, as OpenCV's INTER_LINEAR) into a CHW float tensor in BGR order (PaddleOCR's models were trained
/// on OpenCV's BGR images), each channel as (v / 255 - mean) / std.
/// </summary>
internal static class OcrImage
{
    /// <param name="dst">(3, dstHeight, dstWidth); only the top-left outWidth x outHeight is written.</param>
    /// <param name="rgb">Source pixels, row-major RGB.</param>
    /// <param name="width">Source width in pixels.</param>
    /// <param name="region">The part of the source to read.</param>
    /// <param name="dstWidth">Destination tensor width.</param>
    /// <param name="dstHeight">Destination tensor height.</param>
    /// <param name="outWidth">Width actually written.</param>
    /// <param name="outHeight">Height actually written.</param>
    /// <param name="meanBgr">Per-channel mean, BGR order.</param>
    /// <param name="stdBgr">Per-channel deviation, BGR order.</param>
    public static void ResizeNormalize(ReadOnlySpan<byte> rgb, int width, PixelRect region, Span<float> dst,
        int dstWidth, int dstHeight, int outWidth, int outHeight, ReadOnlySpan<float> meanBgr, ReadOnlySpan<float> stdBgr)
    {
        float sx = (float)region.Width / outWidth, sy = (float)region.Height / outHeight;
        int plane = dstWidth * dstHeight;
        Span<float> scale = stackalloc float[3], offset = stackalloc float[3];
        for (int c = 0; c < 3; c++)
        {
            scale[c] = 1f / (255f * stdBgr[c]);
            offset[c] = -meanBgr[c] / stdBgr[c];
        }
        for (int j = 0; j < outHeight; j++)
        {
            float fy = Math.Clamp((j + 0.5f) * sy - 0.5f, 0f, region.Height - 1);
            int y0 = (int)fy, y1 = Math.Min(y0 + 1, region.Height - 1);
            float wy = fy - y0;
            int row0 = (region.Y + y0) * width, row1 = (region.Y + y1) * width;
            for (int i = 0; i < outWidth; i++)
            {
                float fx = Math.Clamp((i + 0.5f) * sx - 0.5f, 0f, region.Width - 1);
                int x0 = (int)fx, x1 = Math.Min(x0 + 1, region.Width - 1);
                float wx = fx - x0;
                int a = (row0 + region.X + x0) * 3, b = (row0 + region.X + x1) * 3;
                int c0 = (row1 + region.X + x0) * 3, d = (row1 + region.X + x1) * 3;
                int o = j * dstWidth + i;
                for (int ch = 0; ch < 3; ch++)
                {
                    int src = 2 - ch;  // BGR out of RGB
                    float top = rgb[a + src] + (rgb[b + src] - rgb[a + src]) * wx;
                    float bottom = rgb[c0 + src] + (rgb[d + src] - rgb[c0 + src]) * wx;
                    dst[ch * plane + o] = (top + (bottom - top) * wy) * scale[ch] + offset[ch];
                }
            }
        }
    }
}
