using Assistant.Inference;

namespace Assistant.Inference.Tests;

/// <summary>
/// The session thread count when none is configured: physical cores from /proc/cpuinfo, within the usable ones
/// (ONNX Runtime's own default, half the hardware threads, ran this project's 2-core machines on one core).
/// </summary>
public sealed class CpuCoresTests
{
    private static string Processors(params (int Package, int Core)[] cpus) =>
        string.Join("\n\n", cpus.Select((c, i) =>
            $"processor\t: {i}\nvendor_id\t: AuthenticAMD\nphysical id\t: {c.Package}\nsiblings\t: {cpus.Length}\ncore id\t\t: {c.Core}\ncpu cores\t: 2")) + "\n";

    [Fact]
    public void TwoCoresWithoutSmt_AreTwoThreads()
    {
        Assert.Equal(2, CpuCores.Threads(Processors((0, 0), (0, 1)), usable: 2));
    }

    [Fact]
    public void TwoHardwareThreadsPerCore_CountOnce()
    {
        Assert.Equal(2, CpuCores.Threads(Processors((0, 0), (0, 1), (0, 0), (0, 1)), usable: 4));
    }

    [Fact]
    public void CoresOfTwoPackages_AreDistinct_AndTheUsableOnesBound()
    {
        var text = Processors((0, 0), (0, 1), (1, 0), (1, 1));
        Assert.Equal(4, CpuCores.Threads(text, usable: 4));
        Assert.Equal(3, CpuCores.Threads(text, usable: 3));  // an affinity mask or a cgroup quota
    }

    [Fact]
    public void ATextWithoutCoreIds_LeavesOnnxRuntimesDefault()
    {
        Assert.Equal(0, CpuCores.Threads("processor\t: 0\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd\n\nprocessor\t: 1\n", usable: 2));
        Assert.Equal(0, CpuCores.Threads("", usable: 2));
    }

    [Fact]
    public void ThisMachine_GetsItsPhysicalCores()
    {
        if (!OperatingSystem.IsLinux()) { Assert.Equal(0, CpuCores.DefaultIntraOpThreads); return; }
        int expected = CpuCores.Threads(File.ReadAllText("/proc/cpuinfo"), Environment.ProcessorCount);
        Assert.Equal(expected, CpuCores.DefaultIntraOpThreads);
        Assert.InRange(CpuCores.DefaultIntraOpThreads, 0, Environment.ProcessorCount);
    }
}
