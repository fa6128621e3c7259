namespace Assistant.Capture;

/// <summary>
/// The check every input file of Capture and Engine passes before it is opened (Inference has its own, which
/// also confines a set's files to its folder): it exists, is not a folder, and, once symbolic links are
/// followed, is a regular, non-empty file under a size cap. A FIFO, a device (/dev/zero) or a /proc file
/// reports length 0 and is refused unopened, so it can neither block nor stream without end; a link reports
/// its own length, so it is judged by its target.
/// </summary>
public static class RegularFile
{
    /// <summary>The target's <see cref="FileInfo"/>; a one-line <see cref="CaptureException"/> naming <paramref name="what"/> otherwise.</summary>
    public static FileInfo Check(string path, string what, long maxBytes)
    {
        if (Directory.Exists(path)) throw new CaptureException($"{what} {path} is a folder, not a file");
        var info = new FileInfo(path);
        if (!info.Exists) throw new CaptureException($"{what} not found: {path}");
        if (info.LinkTarget is not null)
            info = File.ResolveLinkTarget(path, returnFinalTarget: true) is FileInfo { Exists: true } target ? target
                : throw new CaptureException($"{what} not found: {path} is a link to nothing");
        if (info.Length == 0) throw new CaptureException($"{what} {path} is empty (0 bytes) or not a regular file");
        if (info.Length > maxBytes) throw new CaptureException($"{what} {path} is {Size(info.Length)}; the limit is {Size(maxBytes)}");
        return info;
    }

    /// <summary>All of <paramref name="stream"/>, read in chunks; null as soon as it holds more than <paramref name="cap"/> bytes.</summary>
    internal static byte[]? ReadAtMost(Stream stream, long cap)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (buffer.Length + n > cap) return null;
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    /// <summary>"1.5 MB", "12 KB", "7 B".</summary>
    public static string Size(long bytes) =>
        bytes >= 1 << 20 ? $"{bytes / (double)(1 << 20):0.#} MB" : bytes >= 1 << 10 ? $"{bytes / 1024.0:0.#} KB" : $"{bytes} B";
}
