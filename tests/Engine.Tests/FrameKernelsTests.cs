using Assistant.Capture;
using Assistant.Capture.World;
using Assistant.Inference;
using Assistant.Shaders;
using Assistant.Tests;

namespace Assistant.Engine.Tests;

/// <summary>
/// The frame kernels as ONNX graphs (Shaders/graphs, run by Inference.FrameKernels, what a GPU provider uses) held to
/// the C# kernels they replace there, on ONNX Runtime's CPU provider: within one 8-bit step after rounding.
/// </summary>
public sealed class FrameKernelsTests : IDisposable
{
    private readonly ModelSet _set = ModelSet.Load(Repo.TrainedModels,
        new SessionFactory(new SessionConfig(ExecutionProvider.Cpu) { FrameGraphs = true }));
    private readonly FrameKernels _kernels;

    public FrameKernelsTests() => _kernels = _set.LoadFrameKernels(FrameGraphs.PreprocessGraph, FrameGraphs.ThumbnailGraph)!;

    private static byte[] RandomFrame(int width, int height, int seed)
    {
        // Smooth gradients with noise: a photograph's mix of flat and busy regions.
        var rng = new Random(seed);
        var rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                    rgb[(y * width + x) * 3 + c] = (byte)Math.Clamp(255.0 * (x + c * y) / (width + height) + rng.Next(-40, 41), 0, 255);
        return rgb;
    }

    [Theory]
    [InlineData(80, 96, false, 1)]
    [InlineData(640, 480, true, 2)]
    [InlineData(640, 480, false, 3)]
    [InlineData(333, 517, true, 4)]
    [InlineData(17, 9, false, 5)]
    [InlineData(1280, 720, true, 6)]
    public void PreprocessGraph_MatchesTheKernel_WithinOneEightBitStep(int width, int height, bool crop, int seed)
    {
        var rgb = RandomFrame(width, height, seed);
        using var vision = _set.Vision.Lease();
        int size = vision.Spec.ImageSize, plane = size * size;
        float[] mean = [.. vision.Spec.Mean], std = [.. vision.Spec.Std];
        var reference = new float[3 * plane];
        Preprocess.ResizeNormalize(rgb, width, height, size, mean, std, reference, crop);
        vision.PixelBuffer.Fill(float.NaN);
        _kernels.Preprocess(rgb, width, height, FrameGraphs.Region(width, height, crop), mean, std, vision);
        var graph = vision.PixelBuffer.ToArray();
        double worst = 0;
        for (int i = 0; i < graph.Length; i++)
            worst = Math.Max(worst, Math.Abs(graph[i] - reference[i]) * 255 * std[i / plane]);  // in 8-bit steps
        Assert.True(worst <= 1.0, $"largest difference {worst:F4} of an 8-bit step");
        Assert.True(reference.Max() - reference.Min() > 1);  // a picture, not a constant
    }

    [Theory]
    [InlineData(64, 64, 16)]
    [InlineData(640, 480, 16)]
    [InlineData(333, 517, 16)]
    [InlineData(9, 7, 16)]  // fewer rows and columns than bins: empty bins stay 0, as in the kernel
    public void ThumbnailGraph_MatchesTheKernel(int width, int height, int side)
    {
        var rgb = RandomFrame(width, height, width + height);
        var reference = new float[side * side * 3];
        SceneChange.Thumbnail(rgb, width, height, side, reference);
        var graph = Enumerable.Repeat(float.NaN, side * side * 3).ToArray();
        _kernels.Thumbnail(rgb, width, height, side, graph);
        Assert.True(Golden.MaxAbsDiff(graph, reference) < 0.01f, $"largest difference {Golden.MaxAbsDiff(graph, reference)}");
        // Its scene-change metric (mean absolute difference, 0..255) is the kernel's.
        var other = RandomFrame(width, height, 99);
        var a = new float[graph.Length];
        var b = new float[graph.Length];
        SceneChange.Thumbnail(other, width, height, side, a);
        _kernels.Thumbnail(other, width, height, side, b);
        Assert.Equal(SceneChange.MeanAbsDiff(reference, a), SceneChange.MeanAbsDiff(graph, b), 2);
    }

    [Fact]
    public void ThumbnailWeights_AverageEachBinOnce()
    {
        const int width = 37, height = 23, side = 16;
        var rows = new float[side * height];
        var columns = new float[width * side];
        FrameKernels.ThumbnailWeights(width, height, side, rows, columns);
        for (int bin = 0; bin < side; bin++)
        {
            float rowSum = 0;
            for (int y = 0; y < height; y++) rowSum += rows[bin * height + y];
            Assert.Equal(1f, rowSum, 5);  // every bin of a 23-row frame has a row
        }
        for (int x = 0; x < width; x++)  // each column in exactly one bin
            Assert.Equal(1, Enumerable.Range(0, side).Count(bin => columns[x * side + bin] > 0));
    }

    [Fact]
    public void AFramePipelineOnTheGraphs_AnswersAsOnTheKernels()
    {
        // The GPU path of a frame, end to end, on the CPU: the same answers on a moving world, frame by frame.
        using var kernelsSet = ModelSet.Load(Repo.TrainedModels, new SessionFactory(new SessionConfig(ExecutionProvider.Cpu) { FrameGraphs = false }));
        var world = new WorldSource(2_000_900, 0.01);
        var question = WorldQuestions.Generate(2_000_900, 1, "count")[0].Text;
        List<string> Answers(ModelSet set)
        {
            using var pipeline = new FramePipeline(set);
            pipeline.SetQuery(question);
            var config = new AskConfig(Answer: new AnswerOptions(4));
            return [.. Enumerable.Range(0, 12).Select(f =>
                pipeline.RunFrame(world.Render(f, set.Manifest.World!.ImageSize), config, 8, AnswerMode.Live, new StageTimings(), new FrameStats()).AnswerSoFar)];
        }
        var onGraphs = Answers(_set);
        Assert.Equal(Answers(kernelsSet), onGraphs);
        Assert.All(onGraphs, a => Assert.False(string.IsNullOrWhiteSpace(a)));
    }

    [Fact]
    public void TheCpuPreparesWithTheKernel_AveragesWithTheGraph_AsMeasured()
    {
        // bench --preprocess on this machine's CPU: the C# resize 1.1-30x faster than its graph, the graph's thumbnail
        // 0.64-0.90 of the C# one's time; a GPU provider takes both graphs for towers from 224 px (not testable here).
        Assert.Equal((true, false), new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)).FrameGraphUse(336));
        Assert.Equal((true, true), new SessionFactory(new SessionConfig(ExecutionProvider.Cpu) { FrameGraphs = true }).FrameGraphUse(64));
        using var set = ModelSet.Load(Repo.TinyModels, new SessionFactory(new SessionConfig(ExecutionProvider.Cpu) { FrameGraphs = false }));
        Assert.Null(set.LoadFrameKernels(FrameGraphs.PreprocessGraph, FrameGraphs.ThumbnailGraph));
    }

    public void Dispose()
    {
        _kernels.Dispose();
        _set.Dispose();
    }
}
