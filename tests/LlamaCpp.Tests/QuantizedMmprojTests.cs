using System.Text.Json;
using Assistant.Tests;

namespace Assistant.LlamaCpp.Tests;

/// <summary>
/// tools/export_gguf.py --mmproj-quant writes the tower's and projector's matrices in ggml's Q8_0 and Q4_0 blocks,
/// which llama.cpp (libmtmd, its own block readers) must read as the values the writer meant. The reference is an
/// F32 mmproj holding those values (--as-f32, the blocks dequantized by the writer): llama.cpp's first logits on the
/// blocks must agree with its first logits on that, up to the activation rounding of ggml's quantized dot products,
/// and far more closely than with the original weights where the blocks changed them (4-bit: measured 0.14 against
/// 1.28). A wrong nibble order,
/// zero point or scale reads other values and fails both. SigLIP: the variant llama.cpp runs through its own vision
/// path (LlamaCppAgreementTests says why CLIP sets cannot).
/// </summary>
[Collection("llama.cpp")]
public sealed class QuantizedMmprojTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Theory]
    [InlineData("q8_0")]
    [InlineData("q4_0")]
    public void LlamaCppReadsTheBlocks_AsTheValuesTheyHold(string quant)
    {
        var made = HfCheckpoints.Get("siglip");
        var blocks = Path.Combine(made.Gguf, $"mmproj-{quant}.gguf");
        var values = Path.Combine(made.Gguf, $"mmproj-{quant}-f32.gguf");
        if (!File.Exists(blocks)) HfCheckpoints.Python("export_gguf.py", [made.Checkpoint, "--out", made.Gguf, "--mmproj-quant", quant]);
        if (!File.Exists(values)) HfCheckpoints.Python("export_gguf.py", [made.Checkpoint, "--out", made.Gguf, "--mmproj-quant", quant, "--as-f32"]);
        // A quarter (Q8_0, 34 bytes per 32 values) or an eighth (Q4_0, 18 bytes) of the F32 matrices' bytes.
        Assert.True(new FileInfo(blocks).Length < new FileInfo(made.MmprojGguf).Length * (quant == "q8_0" ? 0.5 : 0.35),
            $"{blocks} is {new FileInfo(blocks).Length} bytes against F32's {new FileInfo(made.MmprojGguf).Length}");

        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(made.Set, "golden", "golden.json")));
        var chat = JsonDocument.Parse(File.ReadAllText(Path.Combine(made.Set, "manifest.json"))).RootElement.GetProperty("prompt").GetProperty("chat");
        string before = chat.GetProperty("before_image").GetString()!;
        string after = chat.GetProperty("before_question").GetString()! + golden.RootElement.GetProperty("query").GetString()! +
                       chat.GetProperty("after_question").GetString()!;
        var image = Path.Combine(made.Set, "golden", "image.png");
        float[] Logits(string mmproj) => LlamaCpp.Answer(made.TextGguf, mmproj, image, before, after, 1).FirstLogits;

        var original = Logits(made.MmprojGguf);
        var held = Logits(values);
        var read = Logits(blocks);
        float spread = original.Max() - original.Min();
        float toValues = Golden.MaxAbsDiff(read, held), toOriginal = Golden.MaxAbsDiff(read, original), moved = Golden.MaxAbsDiff(held, original);
        output.WriteLine($"{quant}: max |first logit difference| blocks vs their values {toValues:G3}, vs the original weights {toOriginal:G3}; " +
                         $"the values vs the original {moved:G3}; spread {spread:F2}");
        Assert.True(moved > 0, "the blocks changed no weight: nothing was quantized");
        // ggml multiplies Q8_0 and Q4_0 blocks by activations rounded to Q8_0 blocks too: measured 0.141 (q8_0) and
        // 0.137 (q4_0) of a 4.0 spread on this tiny random model, the same for both, as that rounding would be.
        Assert.True(toValues < 0.06f * spread, $"{quant}: llama.cpp's logits on the blocks differ by {toValues} from those on their values (spread {spread})");
        if (quant == "q4_0")
            Assert.True(toValues < toOriginal / 3, $"q4_0: the blocks read {toValues} from their values but {toOriginal} from the original weights");
    }
}
