// OCR benchmark: character error rate and lines per second on rendered lines (the OCR test's seed), the
// space-restoring threshold swept on lines of another seed, and batched against one-crop recognition on a
// many-line image, as ratios taken in one run. Usage:
//   dotnet run -c Release --project bench/Ocr -- [--lines N] [--batching-only] [--ocr-models DIR] [--json]
using System.Diagnostics;
using System.Text.Json;
using Assistant.Capture;
using Assistant.Inference;
using Assistant.Inference.Ocr;
using Assistant.Tests;

var cli = new Assistant.Bench.BenchArgs(args);
int lineCount = cli.Int("--lines", 200);
var models = OcrModels.Locate(cli.Has("--ocr-models") ? cli.Get("--ocr-models", "") : null);
var factory = new SessionFactory(new SessionConfig(ExecutionProvider.Cpu));
var work = Path.Combine(Path.GetTempPath(), "assistant-bench-ocr");
var results = new List<Dictionary<string, object>>();

(double Cer, double LinesPerSecond) Measure(OcrReader reader, IReadOnlyList<TextLineImage> lines)
{
    var frames = lines.Select(l => ImageFile.Load(l.Path)).ToList();
    reader.Read(frames[0].Rgb, frames[0].Width, frames[0].Height);  // warm-up
    long errors = 0, chars = 0;
    var clock = Stopwatch.StartNew();
    for (int i = 0; i < lines.Count; i++)
    {
        var text = reader.Read(frames[i].Rgb, frames[i].Width, frames[i].Height).Text;
        errors += TextLines.EditDistance(text, lines[i].Text);
        chars += lines[i].Text.Length;
    }
    return ((double)errors / chars, lines.Count / clock.Elapsed.TotalSeconds);
}

bool measureLines = !cli.Has("--batching-only");
// (1) The test set: seed 7, as in OcrAccuracyTests.
if (measureLines)
{
    var testLines = TextLines.Render(Path.Combine(work, "test"), lineCount, 7);
    using (var reader = OcrReader.Load(factory, models))
    {
        var (cer, lps) = Measure(reader, testLines);
        results.Add(new() { ["bench"] = "ocr_rendered_lines", ["seed"] = 7, ["lines"] = lineCount, ["cer"] = cer, ["lines_per_s"] = lps });
    }

    // (2) The margin around each detected box and the space-restoring threshold (1 = none restored), swept
    // together on lines of seed 11, not the test's.
    var devLines = TextLines.Render(Path.Combine(work, "dev"), Math.Min(lineCount, 120), 11);
    foreach (var pad in new[] { 0f, 0.1f, 0.2f, 0.3f })
        foreach (var p in new[] { 1f, 0.1f, 0.05f })
        {
            using var reader = OcrReader.Load(factory, models, new OcrOptions(SpaceProbability: p, CropPadding: pad));
            var (cer, _) = Measure(reader, devLines);
            results.Add(new() { ["bench"] = "ocr_dev_sweep", ["seed"] = 11, ["crop_padding"] = pad, ["space_probability"] = p, ["cer"] = cer });
        }
}

// (3) Batched recognition: one image of 24 lines, recognition time per image at batch 1 against batch 8.
var page = Path.Combine(work, "page.png");
{
    var rng = new Random(3);
    var parts = new List<string>();
    for (int i = 0; i < 24; i++)
    {
        parts.Add(Path.Combine(work, $"page-{i:D2}.png"));
        TextLines.RenderText(TextLines.Line(rng), parts[^1], "DejaVu Sans", 16, "black", "white");
    }
    TextLines.Stack(parts, page, "white");
}
var pageFrame = ImageFile.Load(page);
// Reps alternate between batch sizes, so drift in the machine's load hits each alike.
int[] batchSizes = [1, 2, 4, 8];
var readers = batchSizes.Select(b => OcrReader.Load(factory, models, new OcrOptions(BatchSize: b))).ToList();
var boxes = readers[0].Detector.Detect(pageFrame.Rgb, pageFrame.Width, pageFrame.Height)
    .Select(b => OcrReader.Pad(b.Rect, readers[0].Options.CropPadding, pageFrame.Width, pageFrame.Height)).ToList();
var times = batchSizes.Select(_ => new List<double>()).ToList();
for (int r = 0; r < 12; r++)
    for (int i = 0; i < readers.Count; i++)
    {
        var clock = Stopwatch.StartNew();
        readers[i].Recognizer.Recognize(pageFrame.Rgb, pageFrame.Width, pageFrame.Height, boxes);
        if (r > 0) times[i].Add(clock.Elapsed.TotalMilliseconds);
    }
var recognizeMs = new Dictionary<int, double>();
for (int i = 0; i < readers.Count; i++)
{
    recognizeMs[batchSizes[i]] = times[i].Order().ElementAt(times[i].Count / 2);
    results.Add(new() { ["bench"] = "ocr_recognize_page", ["batch"] = batchSizes[i], ["crops"] = boxes.Count, ["median_ms"] = recognizeMs[batchSizes[i]] });
    readers[i].Dispose();
}
results.Add(new() { ["bench"] = "ocr_batching", ["batch8_over_batch1"] = recognizeMs[8] / recognizeMs[1], ["batch2_over_batch1"] = recognizeMs[2] / recognizeMs[1], ["batch4_over_batch1"] = recognizeMs[4] / recognizeMs[1] });

if (cli.Has("--json")) Console.WriteLine(JsonSerializer.Serialize(results));
else
    foreach (var r in results)
        Console.WriteLine(string.Join("  ", r.Select(kv => kv.Value is double x ? $"{kv.Key}={x:F4}" : $"{kv.Key}={kv.Value}")));
return 0;
