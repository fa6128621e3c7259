namespace Assistant.Inference;

/// <summary>
/// The one way a model set's files are found and opened: a path the manifest names must be relative, stay
/// inside the set's folder (after following symlinks), and be a regular file (a FIFO or a device reports
/// length 0 and is refused before it is opened); text files are read under a size cap.
/// </summary>
internal static class SetFile
{
    /// <summary>Largest manifest read (16 MB; the shipped ones are a few KB).</summary>
    public const long MaxManifestBytes = 16L << 20;

    /// <summary>Largest tokenizer file read (64 MB; a 150k-token vocabulary is a few MB).</summary>
    public const long MaxTokenizerBytes = 64L << 20;

    /// <summary>The full path of <paramref name="relative"/> in <paramref name="directory"/>, checked; <paramref name="what"/> names it in errors.</summary>
    public static string Resolve(string directory, string relative, string what)
    {
        if (string.IsNullOrWhiteSpace(relative) || Path.IsPathRooted(relative) || relative.Split('/', '\\').Contains(".."))
            throw new InferenceException($"manifest.json {what} '{relative}' must be a relative path inside the model folder");
        var root = Path.GetFullPath(directory);
        var path = Path.GetFullPath(Path.Combine(root, relative));
        return Regular(path, what, root);
    }

    /// <summary><paramref name="path"/> if it is a regular, non-empty file (inside <paramref name="root"/> once symlinks are followed, when given).</summary>
    public static string Regular(string path, string what, string? root = null)
    {
        var info = new FileInfo(path);
        if (System.IO.Directory.Exists(path)) throw new InferenceException($"{what} {path} is a folder, not a file");
        if (!info.Exists) throw new InferenceException($"{what} not found: {path}");
        // Judged by where it really is, every link on its way followed, folders included (a set whose text/ folder
        // was a link to another folder was answered from outside the set, issue 31), and the file's own link too: a
        // link reports its own length, so the checks are on its target (a link to /dev/zero is not a small file).
        var real = RealPath(path, what);
        if (root is not null && !real.StartsWith(RealPath(root, what).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new InferenceException($"{what} {path} links outside the model folder");
        info = new FileInfo(real);
        if (!info.Exists) throw new InferenceException($"{what} not found: {path} is a link to nothing");
        if (info.Length == 0) throw new InferenceException($"{what} {path} is empty or not a regular file");
        return path;
    }

    /// <summary>
    /// <paramref name="path"/> with every link along it followed, as realpath(3) gives it; a chain of more than 40
    /// links (a loop) is one line.
    /// </summary>
    public static string RealPath(string path, string what, int depth = 0)
    {
        if (depth > 40) throw new InferenceException($"{what} {path}: too many links (a loop?)");
        var full = Path.GetFullPath(path);
        var current = Path.GetPathRoot(full)!;
        foreach (var part in full[current.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            var next = Path.Combine(current, part);
            FileSystemInfo info = System.IO.Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            try
            {
                if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target)
                    next = RealPath(target.FullName, what, depth + 1);
            }
            catch (IOException)
            {
                throw new InferenceException($"{what} {path}: too many links (a loop?)");
            }
            current = next;
        }
        return current;
    }

    /// <summary>The file a path ends at: its final link target, or itself. A link reports its own length, not its target's.</summary>
    public static FileInfo Target(FileInfo info) =>
        info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target ? target : info;

    /// <summary>The text of a checked file, refused when it is larger than <paramref name="cap"/> bytes (also if it grows while read).</summary>
    public static string ReadText(string path, long cap, string what)
    {
        var info = new FileInfo(path);
        info = Target(info);
        if (info.Length > cap) throw new InferenceException($"{what} {path} is {info.Length >> 20} MB; the limit is {cap >> 20} MB");
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            var buffer = new char[81920];
            var text = new System.Text.StringBuilder();
            int n;
            while ((n = reader.Read(buffer, 0, buffer.Length)) > 0)
            {
                if (text.Length + n > cap) throw new InferenceException($"{what} {path} is larger than the {cap >> 20} MB limit");
                text.Append(buffer, 0, n);
            }
            return text.ToString();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InferenceException($"cannot read {what} {path}: {e.Message}", inner: e);
        }
    }
}
