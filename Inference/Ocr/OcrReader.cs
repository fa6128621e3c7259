using System.Diagnostics;

namespace Assistant.Inference.Ocr;

/// <summary>One line of text read from an image: what it says, where it is, how sure the recogniser was.</summary>
public sealed record OcrLine(string Text, PixelRect Box, float Confidence);

/// <summary>The lines of one image in reading order, with the time each stage took.</summary>
public sealed record OcrResult(IReadOnlyList<OcrLine> Lines, TimeSpan Detect, TimeSpan Recognize)
{
    /// <summary>The lines joined: a space between boxes on one row, a newline between rows.</summary>
    public string Text
    {
        get
        {
            var sb = new System.Text.StringBuilder();
            for (int i = 0; i < Lines.Count; i++)
            {
                if (i > 0) sb.Append(OcrReader.SameRow(Lines[i - 1].Box, Lines[i].Box) ? ' ' : '\n');
                sb.Append(Lines[i].Text);
            }
            return sb.ToString();
        }
    }
}

/// <summary>Every OCR setting, fixed when the reader loads.</summary>
/// <param name="SpaceProbability">see <see cref="CtcDecoder"/>; 1 turns space restoring off.</param>
/// <param name="MinConfidence">lines read with a lower mean character probability are dropped (PaddleOCR's drop score).</param>
/// <param name="CropPadding">margin added on every side of a detected box before recognition, as a fraction of its height.</param>
/// <param name="BatchSize">recognition crops per run; null: 1 on the CPU (measured faster there, see
/// docs/PERFORMANCE.md), 8 on a GPU provider.</param>
/// <param name="Detector">Detection settings (null: the defaults).</param>
public sealed record OcrOptions(DetectorOptions? Detector = null, float SpaceProbability = 0.1f, float MinConfidence = 0.5f,
    float CropPadding = 0.1f, int? BatchSize = null)
{
    /// <summary>The detection settings in force.</summary>
    public DetectorOptions DetectorOrDefault => Detector ?? new DetectorOptions();

    /// <summary>Recognition crops per run on <paramref name="provider"/>.</summary>
    public int BatchSizeFor(ExecutionProvider provider) => BatchSize ?? (provider == ExecutionProvider.Cpu ? 1 : 8);
}

/// <summary>
/// Detection then recognition: the text of an RGB image as lines in reading order (rows top to bottom,
/// boxes left to right within a row). Lines the recogniser is unsure of (below <see cref="OcrOptions.MinConfidence"/>)
/// or that read as nothing are dropped, so an image without text gives no lines. Owns both models.
/// </summary>
public sealed class OcrReader : IDisposable
{
    private OcrReader(TextDetector detector, TextRecognizer recognizer, OcrModels models, OcrOptions options)
    {
        Options = options;
        Detector = detector;
        Recognizer = recognizer;
        Models = models;
    }

    /// <summary>The detection model.</summary>
    public TextDetector Detector { get; }
    /// <summary>The recognition model.</summary>
    public TextRecognizer Recognizer { get; }
    /// <summary>The files it was loaded from.</summary>
    public OcrModels Models { get; }
    /// <summary>The settings fixed at load.</summary>
    public OcrOptions Options { get; }

    /// <summary>Loads both models through <paramref name="factory"/> (so on its execution provider).</summary>
    public static OcrReader Load(SessionFactory factory, OcrModels models, OcrOptions? options = null)
    {
        options ??= new OcrOptions();
        int batchSize = options.BatchSizeFor(factory.Provider);
        if (batchSize is < 1 or > 64) throw new InferenceException($"OCR batch size must be in 1..64, got {batchSize}");
        var dictionary = TextRecognizer.LoadDictionary(models.Dictionary);
        var detectorSession = factory.Create(models.Detector);
        try
        {
            var recognizerSession = factory.Create(models.Recognizer);
            try
            {
                return new OcrReader(new TextDetector(detectorSession, models.Detector, options.DetectorOrDefault),
                    new TextRecognizer(recognizerSession, models.Recognizer, new CtcDecoder(dictionary, options.SpaceProbability), batchSize),
                    models, options);
            }
            catch
            {
                recognizerSession.Dispose();
                throw;
            }
        }
        catch
        {
            detectorSession.Dispose();
            throw;
        }
    }

    /// <summary>The text lines of an RGB image in reading order, with boxes and confidences.</summary>
    public OcrResult Read(ReadOnlySpan<byte> rgb, int width, int height)
    {
        var clock = Stopwatch.StartNew();
        var boxes = Detector.Detect(rgb, width, height);
        var detect = clock.Elapsed;
        var ordered = ReadingOrder(boxes.Select(b => b.Rect).ToList());
        var crops = ordered.Select(r => Pad(r, Options.CropPadding, width, height)).ToList();
        var texts = Recognizer.Recognize(rgb, width, height, crops);
        var lines = new List<OcrLine>(ordered.Count);
        for (int i = 0; i < ordered.Count; i++)
        {
            var text = texts[i].Text.Trim();
            if (text.Length > 0 && texts[i].Confidence >= Options.MinConfidence) lines.Add(new OcrLine(text, ordered[i], texts[i].Confidence));
        }
        return new OcrResult(lines, detect, clock.Elapsed - detect);
    }

    /// <summary>
    /// The recogniser reads a detected box better with a margin around it: DB's boxes hug the glyphs, and
    /// with none the gaps between words lose to the blank (see docs/PERFORMANCE.md for the sweep).
    /// </summary>
    public static PixelRect Pad(PixelRect box, float fraction, int width, int height)
    {
        int p = (int)MathF.Round(fraction * box.Height);
        return new PixelRect(box.X - p, box.Y - p, box.Width + 2 * p, box.Height + 2 * p).ClipTo(width, height);
    }

    /// <summary>Two boxes are on one row when they overlap vertically by half the shorter one's height.</summary>
    public static bool SameRow(PixelRect a, PixelRect b)
    {
        int overlap = Math.Min(a.Bottom, b.Bottom) - Math.Max(a.Y, b.Y);
        return overlap * 2 >= Math.Min(a.Height, b.Height);
    }

    /// <summary>Rows from top to bottom (a box joins the row whose first box it shares), each left to right.</summary>
    public static List<PixelRect> ReadingOrder(List<PixelRect> boxes)
    {
        var rows = new List<List<PixelRect>>();
        foreach (var box in boxes.OrderBy(b => b.CentreY))
        {
            var row = rows.Count > 0 && SameRow(rows[^1][0], box) ? rows[^1] : null;
            if (row is null) rows.Add(row = []);
            row.Add(box);
        }
        return rows.SelectMany(r => r.OrderBy(b => b.X)).ToList();
    }

    /// <summary>Frees both models.</summary>
    public void Dispose()
    {
        Detector.Dispose();
        Recognizer.Dispose();
    }
}
