using System.Runtime.InteropServices;

namespace Assistant.Ui;

/// <summary>
/// Ending a tool child (tools/import_hf.py under <c>assistant models import</c>) so that nothing it wrote stays: it
/// is asked to stop with SIGTERM (its scratch folder and the parent folders it made are removed by its own handler),
/// and killed only if it has not ended within the grace; then whatever scratch the run left beside the target is
/// removed here too (a kill skips the tool's cleanup). Before this, the child was killed outright and its hidden
/// <c>.SET.partial-*</c> folder (gigabytes for a real checkpoint) stayed.
/// </summary>
internal static partial class ToolProcess
{
    private const int SigTerm = 15;

    /// <summary>What is beside the target before the run: the scratch folders of other runs, and the
    /// first folder of its path that exists (every one below it is the run's to remove).</summary>
    public sealed record Before(string Target, HashSet<string> Scratch, string ExistingAncestor)
    {
        public static Before Of(string target)
        {
            var full = Path.GetFullPath(target);
            var ancestor = Path.GetDirectoryName(full)!;
            while (!Directory.Exists(ancestor) && Path.GetDirectoryName(ancestor) is { } up) ancestor = up;
            return new(full, [.. ScratchOf(full)], ancestor);
        }
    }

    /// <summary>SIGTERM, a wait of up to <paramref name="grace"/>, then a kill; then the run's scratch is removed.</summary>
    public static void Stop(System.Diagnostics.Process process, Before before, TimeSpan grace)
    {
        try
        {
            if (!process.HasExited)
            {
                if ((OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) && Kill(process.Id, SigTerm) == 0) process.WaitForExit(grace);
                if (!process.HasExited) process.Kill(entireProcessTree: true);
                process.WaitForExit(grace);
            }
        }
        catch (InvalidOperationException) { }  // it ended meanwhile
        RemoveLeftovers(before);
    }

    /// <summary>Removes the run's scratch folders beside the target and, while empty, the folders its path gained.</summary>
    public static void RemoveLeftovers(Before before)
    {
        foreach (var dir in ScratchOf(before.Target).Where(d => !before.Scratch.Contains(d)))
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        if (Directory.Exists(before.Target)) return;  // finished after all: the set is whole
        for (var dir = Path.GetDirectoryName(before.Target); dir is not null && dir.Length > before.ExistingAncestor.Length; dir = Path.GetDirectoryName(dir))
        {
            if (!Directory.Exists(dir)) continue;
            if (Directory.EnumerateFileSystemEntries(dir).Any()) break;
            try { Directory.Delete(dir); } catch (IOException) { break; }
        }
    }

    private static IEnumerable<string> ScratchOf(string target)
    {
        var parent = Path.GetDirectoryName(target);
        if (parent is null || !Directory.Exists(parent)) return [];
        return Directory.EnumerateDirectories(parent, $".{Path.GetFileName(target)}.partial-*");
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
