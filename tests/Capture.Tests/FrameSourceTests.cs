using Assistant.Capture.World;

namespace Assistant.Capture.Tests;

public sealed class FrameSourceTests
{
    private static string FolderOf(int images)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"assistant-src-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        for (int i = 0; i < images; i++)
            PngFile.Write(WorldScene.RenderFrame(WorldScene.Generate(i), 32), Path.Combine(dir, $"{i:D3}.png"));
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "not an image");
        return dir;
    }

    [Fact]
    public void Folder_HandsOverImagesInNameOrder_ThenEnds()
    {
        using var source = ImageFilesSource.Folder(FolderOf(3), loop: false);
        var frames = new List<Frame>();
        while (source.TryRead(out var f)) frames.Add(f);
        Assert.Equal(3, frames.Count);
        Assert.Equal(WorldScene.RenderFrame(WorldScene.Generate(1), 32).Rgb, frames[1].Rgb);
        Assert.True(frames[2].Timestamp > frames[0].Timestamp);
    }

    [Fact]
    public void Folder_Looping_StartsAgain()
    {
        using var source = ImageFilesSource.Folder(FolderOf(2), loop: true);
        var frames = Enumerable.Range(0, 5).Select(_ => { Assert.True(source.TryRead(out var f)); return f; }).ToList();
        Assert.Equal(frames[0].Rgb, frames[2].Rgb);
        Assert.Equal(frames[1].Rgb, frames[3].Rgb);
    }

    [Fact]
    public void Folder_WithoutImages_OrMissing_IsAnError()
    {
        var empty = Path.Combine(Path.GetTempPath(), $"assistant-empty-{Guid.NewGuid():N}");
        Directory.CreateDirectory(empty);
        Assert.Contains("no images", Assert.Throws<CaptureException>(() => ImageFilesSource.Folder(empty, false)).Message);
        Assert.Contains("not found", Assert.Throws<CaptureException>(() => ImageFilesSource.Folder(empty + "-gone", false)).Message);
    }

    [Fact]
    public void Folder_AnImageBrokenMidRun_ThrowsOnThatFrameOnly()
    {
        var dir = FolderOf(3);
        File.WriteAllBytes(Path.Combine(dir, "001.png"), [1, 2, 3]);
        using var source = ImageFilesSource.Folder(dir, loop: false);
        Assert.True(source.TryRead(out _));
        Assert.Throws<CaptureException>(() => source.TryRead(out _));
        Assert.True(source.TryRead(out _));
        Assert.False(source.TryRead(out _));
    }

    [Fact]
    public void Folder_SeesFilesAddedWhileItRuns_OnceThroughAndLooping()
    {
        // Once through: a file added before the end is read before it ends (the list was read once before).
        var dir = FolderOf(2);
        using (var once = ImageFilesSource.Folder(dir, loop: false))
        {
            Assert.True(once.TryRead(out _));
            PngFile.Write(WorldScene.RenderFrame(WorldScene.Generate(7), 32), Path.Combine(dir, "000-added.png"));  // sorts before 001
            Assert.True(once.TryRead(out _));
            Assert.True(once.TryRead(out var added));
            Assert.Equal(WorldScene.RenderFrame(WorldScene.Generate(7), 32).Rgb, added.Rgb);
            Assert.False(once.TryRead(out _));
        }
        // Looping: the next pass holds the new file and not the deleted ones.
        var loopDir = FolderOf(1);
        using var looping = ImageFilesSource.Folder(loopDir, loop: true);
        Assert.True(looping.TryRead(out _));
        PngFile.Write(WorldScene.RenderFrame(WorldScene.Generate(9), 32), Path.Combine(loopDir, "zzz.png"));
        File.Delete(Path.Combine(loopDir, "000.png"));
        Assert.True(looping.TryRead(out var next));
        Assert.Equal(WorldScene.RenderFrame(WorldScene.Generate(9), 32).Rgb, next.Rgb);
    }

    [Fact]
    public void Folder_EmptiedOrDeletedWhileLooping_IsAnErrorPerFrame_AndRecoversWhenFilesComeBack()
    {
        var dir = FolderOf(1);
        using var looping = ImageFilesSource.Folder(dir, loop: true);
        Assert.True(looping.TryRead(out _));
        File.Delete(Path.Combine(dir, "000.png"));
        Assert.Contains("no images", Assert.Throws<CaptureException>(() => looping.TryRead(out _)).Message);
        PngFile.Write(WorldScene.RenderFrame(WorldScene.Generate(3), 32), Path.Combine(dir, "back.png"));
        Assert.True(looping.TryRead(out _));
        Directory.Delete(dir, recursive: true);
        Assert.Contains("is gone", Assert.Throws<CaptureException>(() => looping.TryRead(out _)).Message);
    }

    [Fact]
    public void Folder_Looping_ReportsABrokenFileOnce_ThenSkipsIt_UntilItChanges()
    {
        var dir = FolderOf(2);
        var bad = Path.Combine(dir, "001.png");
        File.WriteAllBytes(bad, [1, 2, 3]);
        using var source = ImageFilesSource.Folder(dir, loop: true);
        Assert.True(source.TryRead(out _));                                        // 000
        Assert.Throws<CaptureException>(() => source.TryRead(out _));             // 001, reported
        for (int i = 0; i < 3; i++) Assert.True(source.TryRead(out _));           // 000 again and again: 001 skipped
        PngFile.Write(WorldScene.RenderFrame(WorldScene.Generate(5), 32), bad);  // mended
        File.SetLastWriteTimeUtc(bad, DateTime.UtcNow.AddMinutes(1));
        var seen = Enumerable.Range(0, 2).Select(_ => { Assert.True(source.TryRead(out var f)); return f.Rgb; }).ToList();
        Assert.Contains(seen, rgb => rgb.SequenceEqual(WorldScene.RenderFrame(WorldScene.Generate(5), 32).Rgb));
        // Every file broken: one error per call, not a spin.
        File.WriteAllBytes(Path.Combine(dir, "000.png"), [4, 5, 6]);
        File.WriteAllBytes(bad, [7, 8]);
        for (int i = 0; i < 4; i++) Assert.Throws<CaptureException>(() => source.TryRead(out _));
        Assert.Contains("no readable images", Assert.Throws<CaptureException>(() => source.TryRead(out _)).Message);
    }

    [Fact]
    public void Still_RepeatsOneImage_AndRejectsABadOneUpFront()
    {
        var dir = FolderOf(1);
        using var source = ImageFilesSource.Still(Path.Combine(dir, "000.png"));
        Assert.True(source.TryRead(out var a));
        Assert.True(source.TryRead(out var b));
        Assert.Equal(a.Rgb, b.Rgb);
        Assert.Throws<CaptureException>(() => ImageFilesSource.Still(Path.Combine(dir, "notes.txt")));
    }

    [Fact]
    public void World_IsEndless_AndTracksTheCurrentStep()
    {
        using var source = new WorldFrameSource(new WorldSource(5, 0.01), 32);
        for (int i = 0; i < 3; i++) Assert.True(source.TryRead(out _));
        Assert.Equal(2, source.Current);
    }
}
