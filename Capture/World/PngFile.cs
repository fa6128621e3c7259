using StbImageWriteSharp;

namespace Assistant.Capture.World;

/// <summary>Writes frames to PNG (for <c>assistant world render</c> and captures).</summary>
public static class PngFile
{
    /// <summary>Writes <paramref name="frame"/> as a PNG file.</summary>
    public static void Write(Frame frame, string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        try
        {
            using var stream = File.Create(path);
            new ImageWriter().WritePng(frame.Rgb, frame.Width, frame.Height, ColorComponents.RedGreenBlue, stream);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CaptureException($"cannot write {path}: {e.Message}", inner: e);
        }
    }

    /// <summary>A frame as PNG bytes.</summary>
    public static byte[] Encode(Frame frame)
    {
        using var stream = new MemoryStream();
        new ImageWriter().WritePng(frame.Rgb, frame.Width, frame.Height, ColorComponents.RedGreenBlue, stream);
        return stream.ToArray();
    }

    /// <summary>A frame as JPEG bytes (the overlay's live preview: small and quick to encode).</summary>
    public static byte[] EncodeJpeg(Frame frame, int quality = 80)
    {
        using var stream = new MemoryStream();
        new ImageWriter().WriteJpg(frame.Rgb, frame.Width, frame.Height, ColorComponents.RedGreenBlue, stream, quality);
        return stream.ToArray();
    }
}
