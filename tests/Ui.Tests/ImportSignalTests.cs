using Assistant.Tests;

namespace Assistant.Ui.Tests;

/// <summary>
/// A signal to <c>assistant models import</c> ends it with its code and leaves nothing of the import (issue 31,
/// finding 2: the child was killed outright and its hidden scratch folder stayed).
/// </summary>
public sealed class ImportSignalTests
{
    [Theory]
    [InlineData("TERM", 143)]
    [InlineData("INT", 130)]
    public async Task ASignalDuringAnImport_LeavesNoScratchFolder_AndNoParentItMade(string signal, int exitCode)
    {
        var made = HfCheckpoints.Get("clip-qwen2-bf16-shards");
        int landed = 0;
        // -1: once the importer has written the manifest (its last file), i.e. while the engine checks the set, before it is moved.
        foreach (var afterMs in new[] { 0, 50, 150, -1 })
        {
            var root = Path.Combine(Path.GetTempPath(), $"assistant-import-signal-{Guid.NewGuid():N}");
            Directory.CreateDirectory(root);
            var parent = Path.Combine(root, "a", "b");
            var target = Path.Combine(parent, "set");
            await using var p = AssistantProcess.Start(["models", "import", made.Checkpoint, "--out", target]);
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (!(Directory.Exists(parent) && Directory.EnumerateDirectories(parent, ".set.partial-*").Any()) && !p.HasExited && DateTime.UtcNow < deadline)
                await Task.Delay(5);
            if (afterMs >= 0) await Task.Delay(afterMs);
            else
                while (!p.HasExited && DateTime.UtcNow < deadline && !Directory.Exists(target)
                       && !Directory.EnumerateDirectories(parent, ".set.partial-*").Any(d => File.Exists(Path.Combine(d, "manifest.json"))))
                    await Task.Delay(2);
            await p.SignalAsync(signal);
            int code = await p.WaitForExitAsync(30);
            var left = Directory.Exists(parent) ? Directory.EnumerateDirectories(parent, ".set.partial-*").ToList() : [];
            Assert.True(left.Count == 0, $"left {string.Join(", ", left)}; stderr: {p.Err}");
            if (File.Exists(Path.Combine(target, "manifest.json")))
            {
                Assert.True(code is 0 || code == exitCode, $"exit {code}");  // it finished before the signal: the set is whole
                continue;
            }
            Assert.Equal(exitCode, code);
            Assert.False(Directory.Exists(Path.Combine(root, "a")), $"the parents made for --out stayed; stderr: {p.Err}");
            Assert.DoesNotContain("Traceback", p.Err);
            landed++;
            Directory.Delete(root, recursive: true);
        }
        Assert.True(landed >= 1, "no signal landed during an import");
    }
}
