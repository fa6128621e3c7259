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
}
