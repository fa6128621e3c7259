using Assistant.Capture.World;
using Assistant.Engine;

namespace Assistant.Ui;

/// <summary>The one --source syntax shared by <c>live</c> and <c>capture</c>.</summary>
internal static class Sources
{
    /// <summary>Opens a source from its --source text: world[:SEED], folder:PATH, file:PATH (still or video), camera:N, screen[:X,Y,W,H].</summary>
    public static Capture.IFrameSource Open(string text, bool loop, double speed, int size)
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
