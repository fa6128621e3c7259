namespace Assistant.Inference.Tests;

public sealed class ExecutionProviderTests
{
    [Theory]
    [InlineData("cpu", ExecutionProvider.Cpu)]
    [InlineData("CUDA", ExecutionProvider.Cuda)]
    [InlineData("dml", ExecutionProvider.Dml)]
    [InlineData("auto", ExecutionProvider.Auto)]
    public void Parse_KnowsEveryProvider(string text, ExecutionProvider expected) => Assert.Equal(expected, ExecutionProviders.Parse(text));

    [Fact]
    public void Parse_UnknownProvider_IsAnError() => Assert.Throws<InferenceException>(() => ExecutionProviders.Parse("tpu"));

    [Fact]
    public void Auto_OnThisCpuBuild_ResolvesToCpu()
    {
        Assert.Equal("cpu", ExecutionProviders.BuildFlavor);  // tests build the default (cpu) flavor
        Assert.Equal(ExecutionProvider.Cpu, ExecutionProviders.Resolve(ExecutionProvider.Auto));
    }

    [Fact]
    public void Dml_OffWindows_SaysItNeedsWindows()
    {
        Assert.False(OperatingSystem.IsWindows());
        var e = Assert.Throws<InferenceException>(() => ExecutionProviders.Resolve(ExecutionProvider.Dml));
        Assert.Contains("Windows", e.Message);
    }

    [Fact]
    public void Cuda_WithoutTheCudaBuild_NamesThePackageToInstall()
    {
        Assert.DoesNotContain("CUDAExecutionProvider", ExecutionProviders.Available());
        var e = Assert.Throws<InferenceException>(() => ExecutionProviders.Resolve(ExecutionProvider.Cuda));
        Assert.Contains("Microsoft.ML.OnnxRuntime.Gpu.Linux", e.Message);
    }

    [Theory]
    [InlineData("dml", ExecutionProvider.Dml, 0)]
    [InlineData("dml:1", ExecutionProvider.Dml, 1)]
    [InlineData("cuda:3", ExecutionProvider.Cuda, 3)]
    [InlineData("cpu", ExecutionProvider.Cpu, 0)]
    public void EpOption_TakesADeviceIndexForTheGpuProviders(string ep, ExecutionProvider provider, int device) =>
        Assert.Equal(new SessionConfig(provider, DeviceId: device), SessionConfig.FromOption(ep));

    [Theory]
    [InlineData("cpu:1", "takes no device index")]
    [InlineData("auto:0", "takes no device index")]
    [InlineData("dml:x", "device index 0..63")]
    [InlineData("dml:-1", "device index 0..63")]
    [InlineData("dml:64", "device index 0..63")]
    [InlineData("dml:", "device index 0..63")]
    public void EpOption_BadDeviceIndex_IsOneLine(string ep, string expected) =>
        Assert.Contains(expected, Assert.Throws<InferenceException>(() => SessionConfig.FromOption(ep)).Message);

    [Fact]
    public void DirectMLSettings_AreTheOnesItDocuments_MemoryPatternOff_Sequential_TheAdapterAsDeviceId()
    {
        // The dml package is not served here, so the options are checked as data: what CreateOptions applies.
        var dml = ProviderSettings.For(ExecutionProvider.Dml, SessionConfig.FromOption("dml:2").DeviceId);
        Assert.Equal("DML", dml.Name);
        Assert.False(dml.MemoryPattern);
        Assert.True(dml.Sequential);
        Assert.Equal(new Dictionary<string, string> { ["device_id"] = "2" }, dml.Options);
        var cpu = ProviderSettings.For(ExecutionProvider.Cpu, 0);
        Assert.Null(cpu.Name);
        Assert.False(cpu.MemoryPattern);  // measured: about 20 MB less held, no time lost (docs/PERFORMANCE.md)
        Assert.False(cpu.Sequential);
        Assert.True(ProviderSettings.For(ExecutionProvider.Cuda, 0).MemoryPattern);  // as the H200 run measured it
    }

    [Fact]
    public void GpuProviders_CopyInputsWhenBound_SoBindingsKeptAcrossRunsBindAgain()
    {
        // ONNX Runtime copies a host input into a device provider's memory when it is bound, not when it runs.
        Assert.True(ProviderSettings.For(ExecutionProvider.Cuda, 0).CopiesInputsAtBind);
        Assert.True(ProviderSettings.For(ExecutionProvider.Dml, 0).CopiesInputsAtBind);
        Assert.False(ProviderSettings.For(ExecutionProvider.Cpu, 0).CopiesInputsAtBind);
        Assert.False(new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)).CopiesInputsAtBind);
        Assert.True(new SessionFactory(new SessionConfig(ExecutionProvider.Cpu) { RebindInputs = true }).CopiesInputsAtBind);
    }
}
