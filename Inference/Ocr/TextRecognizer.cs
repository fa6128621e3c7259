using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference.Ocr;

/// <summary>The text of one crop and the mean probability of its characters (1 for an empty string).</summary>
public readonly record struct RecognizedText(string Text, float Confidence);

/// <summary>
/// PaddleOCR v4 text recognition (SVTR + CTC): crops resized to 48 px high keeping their aspect ratio,
/// batched by similar width and padded on the right, then greedy CTC over the model's classes
/// (0 = blank, 1..N = the dictionary's lines, N + 1 = space). Owns its session; the input buffer grows to
/// the largest batch seen and is reused.
/// </summary>
public sealed class TextRecognizer : IDisposable
{
    /// <summary>The height every crop is resized to.</summary>
    public const int InputHeight = 48;
    /// <summary>PaddleOCR's training width: narrower batches are padded up to it.</summary>
    public const int MinBatchWidth = 320;
    /// <summary>Longest input width (a 80:1 line); wider crops are squeezed rather than split.</summary>
    public const int MaxWidth = 3840;
    private static readonly float[] Half = [0.5f, 0.5f, 0.5f];
    private readonly InferenceSession _session;
    private readonly string _file;
    private readonly string _inputName, _outputName;
    private readonly CtcDecoder _ctc;
    private readonly RunOptions _run = new();
    private float[] _input = [];

    internal TextRecognizer(InferenceSession session, string file, CtcDecoder ctc, int batchSize)
    {
        _ctc = ctc;
        BatchSize = batchSize;
        _session = session;
        _file = file;
        _inputName = session.InputMetadata.Keys.Single();
        _outputName = session.OutputMetadata.Keys.Single();
        var classCount = session.OutputMetadata[_outputName].Dimensions[^1];
        if (classCount > 0 && classCount != _ctc.Classes.Count)
            throw new InferenceException($"{file} has {classCount} classes but the dictionary gives {_ctc.Classes.Count} (blank + {_ctc.Classes.Count - 2} + space)");
    }

    /// <summary>Crops per run (sorted by aspect ratio first).</summary>
    public int BatchSize { get; }

    /// <summary>Reads a dictionary file: one character per line, blank lines at the end ignored.</summary>
    public static string[] LoadDictionary(string path)
    {
        var lines = File.ReadAllText(path).Replace("\r\n", "\n").Split('\n');
        int n = lines.Length;
        while (n > 0 && lines[n - 1].Length == 0) n--;
        if (n == 0) throw new InferenceException($"OCR dictionary is empty: {path}");
        return lines[..n];
    }

    /// <summary>The text in each of <paramref name="crops"/> of an RGB image, in the same order.</summary>
    public RecognizedText[] Recognize(ReadOnlySpan<byte> rgb, int width, int height, IReadOnlyList<PixelRect> crops)
    {
        int batchSize = BatchSize;
        var results = new RecognizedText[crops.Count];
        // Similar aspect ratios share a batch, so little of each batch is padding.
        var order = Enumerable.Range(0, crops.Count).OrderBy(i => (double)crops[i].Width / crops[i].Height).ToArray();
        for (int start = 0; start < order.Length; start += batchSize)
        {
            int count = Math.Min(batchSize, order.Length - start);
            var widths = new int[count];
            int batchWidth = MinBatchWidth;
            for (int b = 0; b < count; b++)
            {
                var r = crops[order[start + b]];
                if (r.Width <= 0 || r.Height <= 0 || r.Right > width || r.Bottom > height)
                    throw new InferenceException($"OCR crop {r} lies outside the {width}x{height} image");
                widths[b] = Math.Clamp((int)Math.Ceiling(InputHeight * (double)r.Width / r.Height), 1, MaxWidth);
                batchWidth = Math.Max(batchWidth, widths[b]);
            }
            int plane = 3 * InputHeight * batchWidth;
            if (_input.Length < count * plane) _input = new float[count * plane];
            var input = _input.AsSpan(0, count * plane);
            input.Clear();  // 0 after normalisation is mid grey: the padding PaddleOCR trained with
            for (int b = 0; b < count; b++)
                OcrImage.ResizeNormalize(rgb, width, crops[order[start + b]], input.Slice(b * plane, plane),
                    batchWidth, InputHeight, widths[b], InputHeight, Half, Half);
            var batch = Run(count, batchWidth);
            for (int b = 0; b < count; b++) results[order[start + b]] = batch[b];
        }
        return results;
    }

    private RecognizedText[] Run(int count, int batchWidth)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance,
            _input.AsMemory(0, count * 3 * InputHeight * batchWidth), [count, 3, InputHeight, batchWidth]);
        using (var outputs = OrtCall.Run(_session, _run, [_inputName], [input], [_outputName], _file))
        {
            var shape = outputs[0].GetTensorTypeAndShape().Shape;
            if (shape.Length != 3 || shape[0] != count || shape[2] != _ctc.Classes.Count)
                throw new InferenceException($"{_file} returned shape [{string.Join(", ", shape)}], expected [{count}, T, {_ctc.Classes.Count}]");
            int steps = (int)shape[1], classes = (int)shape[2];
            var probs = outputs[0].GetTensorDataAsSpan<float>();
            var results = new RecognizedText[count];
            for (int b = 0; b < count; b++)
                results[b] = _ctc.Decode(probs.Slice(b * steps * classes, steps * classes), steps);
            return results;
        }
    }

    /// <summary>Frees the session.</summary>
    public void Dispose()
    {
        _run.Dispose();
        _session.Dispose();
    }
}
