using System.Diagnostics;
using System.Security.Cryptography;
using Assistant.Tests;

namespace Assistant.Inference.Tests;

/// <summary>The pinned OCR and VAD files: hashed only when they are regular files of a sane size (issue 20).</summary>
public sealed class PinnedFileTests
{
    [Fact]
    public void SpecialFilesInPlaceOfAPinnedModel_AreOneLine_WithoutBlockingOrReadingForever()
    {
        var dir = Directory.CreateTempSubdirectory("assistant-pinned-").FullName;
        var fifo = Path.Combine(dir, "fifo.onnx");
        Tool.Run("mkfifo", [fifo]);   // blocked the hash before
        var zero = Path.Combine(dir, "zero.onnx");
        File.CreateSymbolicLink(zero, "/dev/zero");  // hashed without end before
        var dangling = Path.Combine(dir, "dangling.onnx");
        File.CreateSymbolicLink(dangling, Path.Combine(dir, "absent.onnx"));
        var empty = Path.Combine(dir, "empty.onnx");
        File.WriteAllBytes(empty, []);
        foreach (var path in new[] { fifo, zero, dangling, empty, dir })
        {
            var clock = Stopwatch.StartNew();
            var e = Assert.Throws<InferenceException>(() => PinnedFile.Verify(path, new string('0', 64), "fetch it"));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"{path}: {clock.Elapsed.TotalSeconds:F1} s");
            Assert.DoesNotContain('\n', e.Message);
            Assert.Contains("fetch it", e.Message);
        }
    }

    [Fact]
    public void ARegularFile_IsHashed_AndAWrongOneNamed()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("assistant-pinned-").FullName, "model.onnx");
        File.WriteAllBytes(path, [1, 2, 3]);
        var sha = Convert.ToHexStringLower(SHA256.HashData(new byte[] { 1, 2, 3 }));
        Assert.Equal(path, PinnedFile.Verify(path, sha, "fetch it"));
        var link = path + ".link";
        File.CreateSymbolicLink(link, path);
        Assert.Equal(link, PinnedFile.Verify(link, sha, "fetch it"));  // a link to a good file is fine
        Assert.Contains("not the pinned", Assert.Throws<InferenceException>(() => PinnedFile.Verify(path, new string('0', 64), "fetch it")).Message);
    }
}
