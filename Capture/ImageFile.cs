using StbImageSharp;

namespace Assistant.Capture;

/// <summary>Still images from disk (PNG, JPEG, BMP, GIF, TGA, PSD, HDR) decoded to RGB.</summary>
public static class ImageFile
{
    /// <summary>Largest accepted side, so a crafted header cannot ask for gigabytes.</summary>
    public const int MaxSide = 16384;

    /// <summary>Decodes an image file; a missing or broken one is a one-line <see cref="CaptureException"/>.</summary>
    public static Frame Load(string path)
    {
        if (!File.Exists(path)) throw new CaptureException($"image not found: {path}");
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CaptureException($"cannot read image {path}: {e.Message}", inner: e);
        }
        if (bytes.Length == 0) throw new CaptureException($"image is empty (0 bytes): {path}");
        return Decode(bytes, path);
    }

    /// <summary>Decodes image bytes; <paramref name="name"/> names them in errors.</summary>
    public static Frame Decode(byte[] bytes, string name)
    {
        ImageInfo? info;
        try
        {
            info = ImageInfo.FromStream(new MemoryStream(bytes));
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException)
        {
            info = null;
        }
        if (info is not { } i || i.Width <= 0 || i.Height <= 0)
            throw new CaptureException($"not a readable image (PNG, JPEG, BMP, GIF, TGA): {name}");
        if (i.Width > MaxSide || i.Height > MaxSide)
            throw new CaptureException($"image {name} is {i.Width}x{i.Height}; the largest accepted side is {MaxSide}");
        try
        {
            var img = ImageResult.FromMemory(bytes, ColorComponents.RedGreenBlue);
            return new Frame(img.Data, img.Width, img.Height, TimeSpan.Zero);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException or IndexOutOfRangeException)
        {
            throw new CaptureException($"corrupt image {name}: {e.Message}", inner: e);
        }
    }
}
