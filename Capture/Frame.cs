namespace Assistant.Capture;

/// <summary>
/// One captured picture: tightly packed RGB bytes, row-major, and when it was taken; <paramref name="Origin"/> names
/// where it came from when the source has a name for it (the file, for image files and folders), else null.
/// </summary>
public sealed record Frame(byte[] Rgb, int Width, int Height, TimeSpan Timestamp, string? Origin = null)
{
    /// <summary>Bytes per row.</summary>
    public int Stride => Width * 3;
}

/// <summary>The one user-facing failure of capture: an unreadable image, a source that is gone.</summary>
public sealed class CaptureException(string message, int exitCode = 2, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>What the command line exits with (2: bad input).</summary>
    public int ExitCode { get; } = exitCode;
}
