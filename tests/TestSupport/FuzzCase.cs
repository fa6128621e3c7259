using System.Diagnostics;

namespace Assistant.Tests;

/// <summary>
/// One fuzz case run under the suite's bounds: at most 5 s and 500 MB allocated (the fuzz collection runs alone,
/// so the process's allocation counter is the case's), and either a success or a user-facing failure; any other
/// exception fails the test naming the case and the seed.
/// </summary>
public static class FuzzCase
{
    /// <summary>Longest a case may take.</summary>
    public static readonly TimeSpan TimeBound = TimeSpan.FromSeconds(5);

    /// <summary>Most a case may allocate.</summary>
    public const long MemoryBound = 500L << 20;

    /// <summary>True when <paramref name="work"/> succeeded, false when it threw an exception <paramref name="userFacing"/> accepts (then given to <paramref name="checkRefusal"/>).</summary>
    public static async Task<bool> RunAsync(string what, Func<Task> work, Func<Exception, bool> userFacing, Action<Exception>? checkRefusal = null)
    {
        var clock = Stopwatch.StartNew();
        long before = GC.GetTotalAllocatedBytes();
        bool succeeded;
        try
        {
            await work();
            succeeded = true;
        }
        catch (Exception e) when (userFacing(e))
        {
            checkRefusal?.Invoke(e);
            succeeded = false;
        }
        catch (Exception e)
        {
            Assert.Fail($"{what} (seed {HostileFiles.Seed}): {e.GetType().Name}: {e.Message}");
            throw;
        }
        Assert.True(clock.Elapsed < TimeBound, $"{what}: took {clock.Elapsed.TotalSeconds:F1} s");
        long allocated = GC.GetTotalAllocatedBytes() - before;
        Assert.True(allocated < MemoryBound, $"{what}: allocated {allocated >> 20} MB");
        return succeeded;
    }

    /// <summary>The same for synchronous work.</summary>
    public static bool Run(string what, Action work, Func<Exception, bool> userFacing, Action<Exception>? checkRefusal = null) =>
        RunAsync(what, () => { work(); return Task.CompletedTask; }, userFacing, checkRefusal).GetAwaiter().GetResult();
}
