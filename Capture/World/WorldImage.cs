using StbImageWriteSharp;

namespace Assistant.Capture.World;

/// <summary>Writes frames to PNG (for <c>assistant world render</c> and captures).</summary>
public static class PngFile
{
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
}
