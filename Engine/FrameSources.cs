using Assistant.Capture.World;

namespace Assistant.Engine;

/// <summary>The one --source syntax shared by <c>live</c> and <c>capture</c>: a spec string to an open source.</summary>
public static class FrameSources
{
    /// <summary>What the syntax is, for help text and errors.</summary>
    public const string Syntax = "world, world:SEED, folder:PATH (images in name order), file:PATH (a still image or a video), camera:N, screen or screen:X,Y,W,H (X11)";

    /// <summary>Opens a source for reading frames one by one (<c>assistant capture</c>); the caller disposes it.</summary>
    /// <param name="text">The spec (<see cref="Syntax"/>).</param>
    /// <param name="loop">Folder or video: start again at the end.</param>
    /// <param name="speed">World object speed.</param>
    /// <param name="size">World frame side in pixels.</param>
    public static SourceReader OpenReader(string text, bool loop, double speed, int size) => new(Open(text, loop, speed, size));

    /// <summary>Opens a source from its --source text: world[:SEED], folder:PATH, file:PATH (still or video), camera:N, screen[:X,Y,W,H].</summary>
    internal static Capture.IFrameSource Open(string text, bool loop, double speed, int size)
    {
        if (text == "world") return new Capture.WorldFrameSource(new WorldSource(WorldDefinition.Splits["test"].Lo, speed), size);
        if (text.StartsWith("world:", StringComparison.Ordinal))
            return long.TryParse(text[6..], out var seed) && seed >= 0
                ? new Capture.WorldFrameSource(new WorldSource(seed, speed), size)
                : throw new EngineException($"unknown source '{text}': world:SEED needs a non-negative integer seed");
        if (text.StartsWith("folder:", StringComparison.Ordinal)) return Capture.ImageFilesSource.Folder(text[7..], loop);
        if (text.StartsWith("file:", StringComparison.Ordinal))
        {
            var path = text[5..];
            string[] stills = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga"];
            return stills.Contains(Path.GetExtension(path).ToLowerInvariant())
                ? Capture.ImageFilesSource.Still(path)
                : Capture.VideoSource.File(path, loop);
        }
        if (text.StartsWith("camera:", StringComparison.Ordinal))
            return int.TryParse(text[7..], out var index) && index >= 0
                ? Capture.VideoSource.Camera(index)
                : throw new EngineException($"unknown source '{text}': camera:N takes a device index, e.g. camera:0");
        if (text == "screen") return Capture.Screen.ScreenSources.Open();
        if (text.StartsWith("screen:", StringComparison.Ordinal))
            return TryParseRegion(text[7..], out var region)
                ? Capture.Screen.ScreenSources.Open(null, region)
                : throw new EngineException($"unknown source '{text}': screen:X,Y,W,H takes four integers");
        throw new EngineException($"unknown source '{text}': use world, world:SEED, folder:PATH, file:PATH (image or video), camera:N, screen or screen:X,Y,W,H");
    }

    /// <summary>X,Y,W,H as four integers (a screen region, as screen:... and --region write it).</summary>
    public static bool TryParseRegion(string text, out (int X, int Y, int Width, int Height) region)
    {
        var parts = text.Split(',');
        var v = new int[4];
        region = default;
        if (parts.Length != 4) return false;
        for (int i = 0; i < 4; i++)
            if (!int.TryParse(parts[i], out v[i])) return false;
        region = (v[0], v[1], v[2], v[3]);
        return true;
    }
}

/// <summary>An open frame source read one frame at a time, outside a live session. Owns the source.</summary>
public sealed class SourceReader : IDisposable
{
    private readonly Capture.IFrameSource _source;

    internal SourceReader(Capture.IFrameSource source) => _source = source;

    /// <summary>The source as the user named it.</summary>
    public string Name => _source.Name;

    /// <summary>The next frame; false when the source has ended. A failing source throws its one-line error.</summary>
    public bool TryRead([System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out FramePicture picture)
    {
        if (_source.TryRead(out var frame))
        {
            picture = new FramePicture(frame);
            return true;
        }
        picture = null;
        return false;
    }

    /// <summary>Closes the source.</summary>
    public void Dispose() => _source.Dispose();
}
