using Assistant.Tests;
using Xunit.Abstractions;

namespace Assistant.Inference.Tests.Ocr;

/// <summary>Character error rate of the whole OCR path on 200 rendered lines (issue: at most 5%).</summary>
public sealed class OcrAccuracyTests(OcrFixture ocr, ITestOutputHelper output) : IClassFixture<OcrFixture>
{
    public const int TestSeed = 7;

    [Fact]
    public void Rendered_lines_are_read_with_at_most_5_percent_character_errors()
    {
        var dir = Path.Combine(Path.GetTempPath(), "assistant-tests", "ocr-lines-" + Guid.NewGuid().ToString("N"));
        var lines = TextLines.Render(dir, 200, TestSeed);
        long errors = 0, chars = 0;
        var byGroup = new Dictionary<string, (long Errors, long Chars)>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        foreach (var line in lines)
        {
            var read = ocr.Read(line.Path).Text;
            int e = TextLines.EditDistance(read, line.Text);
            errors += e;
            chars += line.Text.Length;
            foreach (var key in new[] { line.Font, line.DarkOnLight ? "dark on light" : "light on dark", line.PixelSize < 18 ? "12-17 px" : line.PixelSize < 25 ? "18-24 px" : "25-32 px" })
            {
                var g = byGroup.GetValueOrDefault(key);
                byGroup[key] = (g.Errors + e, g.Chars + line.Text.Length);
            }
            if (e > 0) output.WriteLine($"{line.Font} {line.PixelSize}px {(line.DarkOnLight ? "dark" : "light")}: '{line.Text}' read '{read}' ({e})");
        }
        double seconds = clock.Elapsed.TotalSeconds;
        double cer = (double)errors / chars;
        foreach (var (key, g) in byGroup.OrderBy(kv => kv.Key))
            output.WriteLine($"CER {key}: {100.0 * g.Errors / g.Chars:F2}% of {g.Chars} chars");
        output.WriteLine($"CER overall: {100 * cer:F2}% ({errors} edits / {chars} chars), {lines.Count / seconds:F1} lines/s");
        Directory.Delete(dir, recursive: true);
        Assert.True(cer <= 0.05, $"character error rate {100 * cer:F2}% exceeds 5%");
    }
}
