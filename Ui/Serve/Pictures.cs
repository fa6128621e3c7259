namespace Assistant.Ui.Serve;

/// <summary>
/// Turns a request's <c>image_url</c> into encoded bytes: a <c>data:</c> URI (base64), or, only with
/// <c>--allow-paths DIR</c>, a local path or <c>file://</c> URL that resolves (links followed) to a regular file inside
/// DIR. Remote URLs are never fetched: a server that fetches what a request names can be made to reach anything the
/// machine can.
/// </summary>
internal sealed class Pictures(string? allowedFolder, long maxBytes)
{
    private readonly string? _allowed = allowedFolder is null ? null : Resolve(Path.TrimEndingDirectorySeparator(Path.GetFullPath(allowedFolder)));

    public RequestImage Read(string url)
    {
        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase)) return DataUri(url);
        if (url.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            throw Bad("remote image URLs are not fetched: send the picture itself as a data: URI (data:image/png;base64,...)");
        string path = url.StartsWith("file://", StringComparison.OrdinalIgnoreCase)
            ? (Uri.TryCreate(url, UriKind.Absolute, out var u) ? u.LocalPath : throw Bad("not a file URL"))
            : url;
        if (_allowed is null)
            throw Bad("local image paths are refused: send the picture as a data: URI, or start the server with --allow-paths DIR");
        return LocalFile(path);
    }

    private RequestImage DataUri(string url)
    {
        int comma = url.IndexOf(',');
        if (comma < 0 || !url[..comma].EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
            throw Bad("an image data: URI must be base64: data:image/png;base64,...");
        var payload = url.AsSpan(comma + 1);
        if ((long)payload.Length * 3 / 4 > maxBytes) throw Bad($"the picture is over {maxBytes >> 20} MB");
        var bytes = new byte[payload.Length * 3 / 4 + 3];
        if (!Convert.TryFromBase64Chars(payload, bytes, out int written)) throw Bad("the image data: URI is not valid base64");
        return new RequestImage(bytes[..written], "the request's image");
    }

    private RequestImage LocalFile(string path)
    {
        string full;
        try
        {
            // Every link on the way resolved, folders and the file: a link inside the allowed folder may point anywhere.
            full = Resolve(Path.GetFullPath(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw Bad($"cannot read the image path: {e.Message}");
        }
        if (!full.StartsWith(_allowed + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw Bad("the image path is outside the folder --allow-paths names");
        var file = new FileInfo(full);
        if (!file.Exists) throw Bad("the image path names no file");
        if (file.Length > maxBytes) throw Bad($"the picture is over {maxBytes >> 20} MB");
        try
        {
            return new RequestImage(File.ReadAllBytes(full), Path.GetFileName(full));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Bad($"cannot read the image path: {e.Message}");
        }
    }

    /// <summary>
    /// The path with every link along it resolved: at the first component that is a link, the walk starts again from its
    /// target with the rest of the path (the target's own folders may be links too), until none is left.
    /// </summary>
    private static string Resolve(string full)
    {
        for (int hops = 0; hops < 40; hops++)
        {
            string current = Path.GetPathRoot(full)!;
            var parts = full[current.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
            int i = 0;
            for (; i < parts.Length; i++)
            {
                current = Path.Combine(current, parts[i]);
                FileSystemInfo fsi = Directory.Exists(current) ? new DirectoryInfo(current) : new FileInfo(current);
                if (fsi.LinkTarget is not null && fsi.ResolveLinkTarget(returnFinalTarget: true) is { } target)
                {
                    full = Path.Combine([target.FullName, .. parts[(i + 1)..]]);
                    break;
                }
            }
            if (i == parts.Length) return current;
        }
        throw new IOException("too many symbolic links on the way");
    }

    private static ApiException Bad(string message) => new(400, message, param: "messages");
}
