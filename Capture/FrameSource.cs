using System.Diagnostics.CodeAnalysis;
using Assistant.Capture.World;

namespace Assistant.Capture;

/// <summary>
/// A source of frames for the live loop. <see cref="TryRead"/> hands over the newest frame; it returns false
/// when the source has ended (a file ran out, a folder was exhausted without looping). A source that fails
/// throws <see cref="CaptureException"/>. Owned by one loop and disposed by it.
/// </summary>
public interface IFrameSource : IDisposable
{
    /// <summary>What the user asked for, e.g. "folder:shots/".</summary>
    string Name { get; }

    /// <summary>The next frame; false when the source has ended. A failure is a <see cref="CaptureException"/>.</summary>
    bool TryRead([MaybeNullWhen(false)] out Frame frame);
}

/// <summary>The moving synthetic world: frame n is the world at step n (endless).</summary>
public sealed class WorldFrameSource(WorldSource world, int size) : IFrameSource
{
    private long _next;

    /// <summary>"world:SEED".</summary>
    public string Name => $"world:{world.Seed}";
    /// <summary>The moving world this source renders.</summary>
    public WorldSource World => world;

    /// <summary>World steps per second of frame time: frame n is stamped n / 30 s.</summary>
    public const double StepsPerSecond = 30;

    /// <summary>The world step of the frame most recently handed over.</summary>
    public long Current { get; private set; } = -1;

    /// <summary>The world step a frame from this source shows (from its timestamp; valid on any thread).</summary>
    public static long StepOf(Frame frame) => (long)Math.Round(frame.Timestamp.TotalSeconds * StepsPerSecond);

    /// <summary>Renders the next world step; never ends.</summary>
    public bool TryRead([MaybeNullWhen(false)] out Frame frame)
    {
        Current = _next++;
        frame = world.Render(Current, size, TimeSpan.FromSeconds(Current / StepsPerSecond));
        return true;
    }

    /// <summary>Nothing to free.</summary>
    public void Dispose() { }
}

/// <summary>
/// Still images from a folder in name order (PNG, JPEG, BMP, GIF, TGA, WebP, TIFF), once or looping; or one image file
/// repeated. A folder is listed again at the end of each pass, so files added while it runs are seen: once
/// through, the new names are read before it ends; looping, the next pass holds them (and not the deleted ones).
/// </summary>
public sealed class ImageFilesSource : IFrameSource
{
    private static readonly string[] Extensions = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".webp", ".tif", ".tiff"];
    private readonly string? _folder;  // null: one still file
    private readonly bool _loop;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (long Length, DateTime Written)> _broken = new(StringComparer.Ordinal);
    private string[] _files;
    private int _index;
    private long _count;

    private ImageFilesSource(string name, string? folder, string[] files, bool loop)
    {
        Name = name;
        _folder = folder;
        _files = files;
        _loop = loop;
    }

    /// <summary>What the user asked for, e.g. "folder:shots/".</summary>
    public string Name { get; }

    /// <summary>A folder's images; a folder with none is an error, not an empty run.</summary>
    public static ImageFilesSource Folder(string path, bool loop)
    {
        if (!Directory.Exists(path)) throw new CaptureException($"folder not found: {path}");
        var files = List(path);
        if (files.Length == 0) throw new CaptureException($"no images (PNG, JPEG, BMP, GIF, TGA, WebP, TIFF) in {path}");
        return new ImageFilesSource($"folder:{path}", path, files, loop);
    }

    private static string[] List(string folder) =>
        Directory.GetFiles(folder).Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order(StringComparer.Ordinal).ToArray();

    /// <summary>One image, handed over as every frame (a still camera).</summary>
    public static ImageFilesSource Still(string path)
    {
        ImageFile.Load(path);  // fail now, with the one-line reason, rather than on the first frame
        return new ImageFilesSource($"file:{path}", null, [path], loop: true);
    }

    /// <summary>
    /// The next image in name order; false after the last (unless looping). A broken or vanished file, and a
    /// folder that was deleted or emptied while looping, is a <see cref="CaptureException"/>: the loop's fault
    /// policy logs it and goes on to the next. A broken file is reported once: later passes skip it until it
    /// changes (size or time), so a looping folder does not log the same bad file on every pass.
    /// </summary>
    public bool TryRead([MaybeNullWhen(false)] out Frame frame)
    {
        for (int skipped = 0; ; skipped++)
        {
            if (_index >= _files.Length && !NextPass())
            {
                frame = null;
                return false;
            }
            var path = _files[_index++];
            _read.Add(path);
            if (_folder is not null && _broken.TryGetValue(path, out var stamp) && stamp == Stamp(path))
            {
                if (skipped > _files.Length)
                    throw new CaptureException($"no readable images in {_folder}: the {_broken.Count} there are broken (each was reported when first read)");
                continue;
            }
            Frame loaded;
            try
            {
                loaded = ImageFile.Load(path);
            }
            catch (CaptureException) when (_folder is not null)
            {
                _broken[path] = Stamp(path);
                throw;
            }
            _broken.Remove(path);
            frame = loaded with { Timestamp = TimeSpan.FromSeconds(_count++ / 30.0), Origin = path };
            return true;
        }
    }

    private static (long Length, DateTime Written) Stamp(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? (info.Length, info.LastWriteTimeUtc) : (-1, default);
    }

    /// <summary>At the end of a pass: the folder listed again. Looping, all of it; once through, the names not yet read.</summary>
    private bool NextPass()
    {
        _index = 0;
        if (_folder is null) return _loop;
        if (!Directory.Exists(_folder))
        {
            if (!_loop) return false;
            throw new CaptureException($"folder {_folder} is gone");
        }
        var listed = List(_folder);
        _files = _loop ? listed : listed.Where(f => !_read.Contains(f)).ToArray();
        if (_files.Length > 0) return true;
        if (!_loop) return false;
        throw new CaptureException($"no images (PNG, JPEG, BMP, GIF, TGA, WebP, TIFF) left in {_folder}");
    }

    /// <summary>Nothing to free: files are read whole, one at a time.</summary>
    public void Dispose() { }
}
