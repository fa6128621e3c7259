using Assistant.Shaders;
using Assistant.Tests;
using StbImageSharp;

namespace Assistant.Shaders.Tests;

public sealed class PreprocessTests
{
    private static readonly float[] Mean = [0.48145466f, 0.4578275f, 0.40821073f];
    private static readonly float[] Std = [0.26862954f, 0.26130258f, 0.27577711f];

    [Fact]
    public void ResizeNormalize_MatchesPyTorchBilinearOnTheGoldenImage()
    {
        var img = ImageResult.FromMemory(File.ReadAllBytes(Golden.Tiny.ImagePath), ColorComponents.RedGreenBlue);
        Assert.NotEqual(64, img.Width);  // the golden image is not the model size, so resizing is exercised
        var dst = new float[3 * 64 * 64];
        Preprocess.ResizeNormalize(img.Data, img.Width, img.Height, 64, Mean, Std, dst);
        Assert.True(Golden.MaxAbsDiff(dst, Golden.Tiny.PixelValues) < 1e-5f);
    }

    [Fact]
    public void ResizeNormalize_SameSizeIsAPureNormalisation()
    {
        var rgb = new byte[4 * 4 * 3];
        for (int i = 0; i < rgb.Length; i++) rgb[i] = (byte)(i * 5);
        var dst = new float[3 * 16];
        Preprocess.ResizeNormalize(rgb, 4, 4, 4, Mean, Std, dst);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
                for (int c = 0; c < 3; c++)
                {
                    float expected = (rgb[(y * 4 + x) * 3 + c] / 255f - Mean[c]) / Std[c];
                    Assert.InRange(dst[c * 16 + y * 4 + x] - expected, -1e-5f, 1e-5f);
                }
    }

    [Fact]
    public void ResizeNormalize_UniformImageStaysUniform()
    {
        var rgb = Enumerable.Repeat((byte)200, 7 * 5 * 3).ToArray();
        var dst = new float[3 * 9 * 9];
        Preprocess.ResizeNormalize(rgb, 7, 5, 9, Mean, Std, dst);
        for (int c = 0; c < 3; c++)
            Assert.All(dst.Skip(c * 81).Take(81), v => Assert.InRange(v - (200 / 255f - Mean[c]) / Std[c], -1e-5f, 1e-5f));
    }

    [Fact]
    public void ResizeNormalize_CenterCrop_ResizesOnlyTheCentredSquare()
    {
        // A 6 x 4 frame whose columns 1..4 (the centred 4 x 4 square) hold their column index and the edges 250: at
        // size 4 the crop is an identity copy of the square, and no edge pixel reaches it; without the crop they do.
        var rgb = new byte[6 * 4 * 3];
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 6; x++)
                for (int c = 0; c < 3; c++) rgb[(y * 6 + x) * 3 + c] = x is 0 or 5 ? (byte)250 : (byte)(10 * x);
        var cropped = new float[3 * 16];
        Preprocess.ResizeNormalize(rgb, 6, 4, 4, Mean, Std, cropped, centerCrop: true);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
                Assert.Equal((10 * (x + 1) / 255f - Mean[0]) / Std[0], cropped[y * 4 + x], 4);
        var squashed = new float[3 * 16];
        Preprocess.ResizeNormalize(rgb, 6, 4, 4, Mean, Std, squashed);
        Assert.True(squashed[0] > cropped[0] + 1);  // the left edge's 250 is in the squashed frame's first column
    }

    [Fact]
    public void ResizeNormalize_RejectsShortBuffers()
    {
        Assert.Throws<ArgumentException>(() => Preprocess.ResizeNormalize(new byte[10], 4, 4, 4, Mean, Std, new float[48]));
        Assert.Throws<ArgumentException>(() => Preprocess.ResizeNormalize(new byte[48], 4, 4, 4, Mean, Std, new float[10]));
    }
}
