using System.Diagnostics;
using Assistant.Tests;
using Xunit.Abstractions;

namespace Assistant.Capture.Tests;

/// <summary>
/// The image part of the fuzz suite (issue 20): every case of <see cref="HostileFiles.Images"/>, read from a file as
/// `ask --image` and a folder source would, is a picture or one <see cref="CaptureException"/> of one line, within
/// 5 s and 500 MB allocated; never another exception. The counts per category go to the test log.
/// </summary>
[Collection("fuzz")]
public sealed class ImageFuzzTests(ITestOutputHelper log)
{
    [Fact]
    public void EveryHostileImage_IsAPictureOrOneCaptureError_InBoundedTimeAndMemory()
    {
        var folder = Directory.CreateTempSubdirectory("assistant-fuzz-").FullName;
        var counts = new SortedDictionary<string, (int Decoded, int Refused)>();
        var cases = HostileFiles.Images();
        for (int i = 0; i < cases.Count; i++)
        {
            var c = cases[i];
            var path = HostileFiles.Write(c, folder, $"case{i:D4}");
            bool decoded = FuzzCase.Run(c.Name, () =>
            {
                var frame = ImageFile.Load(path);
                Assert.Equal(frame.Width * frame.Height * 3, frame.Rgb.Length);
            }, e => e is CaptureException, e => Assert.False(e.Message.Contains('\n'), $"{c.Name}: a two-line error"));
            if (decoded && c.Category == "truncated") log.WriteLine($"decoded: {c.Name}");
            var (d, r) = counts.GetValueOrDefault(c.Category);
            counts[c.Category] = decoded ? (d + 1, r) : (d, r + 1);
            File.Delete(path);
        }
        foreach (var (category, (d, r)) in counts) log.WriteLine($"images, {category}: {d + r} cases ({d} decoded, {r} refused), seed {HostileFiles.Seed}");
        // Cases that cannot be a picture never are one.
        Assert.Equal(0, counts["huge declared size"].Decoded);
        Assert.True(counts["truncated"].Decoded == 0, "a truncated file was answered from partial pixels");
        Assert.True(cases.Count >= 250, $"only {cases.Count} cases");
    }

    [Fact]
    public void SpecialFiles_AreOneErrorEach_WithoutBlocking()
    {
        var dir = Directory.CreateTempSubdirectory("assistant-fuzz-special-").FullName;
        var fifo = Path.Combine(dir, "fifo.png");
        Tool.Run("mkfifo", [fifo]);
        var empty = Path.Combine(dir, "empty.png");
        File.WriteAllBytes(empty, []);
        var toZero = Path.Combine(dir, "zero.png");
        File.CreateSymbolicLink(toZero, "/dev/zero");
        var dangling = Path.Combine(dir, "dangling.png");
        File.CreateSymbolicLink(dangling, Path.Combine(dir, "nothing-here.png"));
        var special = new[] { fifo, empty, toZero, dangling, "/dev/zero", "/dev/urandom", "/dev/null", "/proc/self/status", dir };
        foreach (var path in special)
        {
            var clock = Stopwatch.StartNew();
            long before = GC.GetTotalAllocatedBytes();
            var e = Assert.Throws<CaptureException>(() => ImageFile.Load(path));
            Assert.DoesNotContain('\n', e.Message);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"{path}: took {clock.Elapsed.TotalSeconds:F1} s");
            // Nothing is read from any of them: a link to /dev/zero was read to the 256 MB cap before.
            long allocated = GC.GetTotalAllocatedBytes() - before;
            Assert.True(allocated < 1L << 20, $"{path}: allocated {allocated >> 10} KB");
        }
        log.WriteLine($"images, special files: {special.Length} cases, all refused");
    }
}
