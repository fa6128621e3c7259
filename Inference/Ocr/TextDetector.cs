using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference.Ocr;

/// <summary>A detected text region in image pixels, with the mean text probability inside it.</summary>
public readonly record struct TextBox(PixelRect Rect, float Score);

/// <summary>How the detector sizes its input and turns the probability map into boxes (PaddleOCR's DB defaults).</summary>
public sealed record DetectorOptions(
    int MaxSide = 1920,
    int MinSide = 96,
    float Threshold = 0.3f,
    float BoxThreshold = 0.6f,
    float UnclipRatio = 1.5f,
    int MinBoxSide = 3);

/// <summary>
/// PaddleOCR v4 text detection (a DB network): RGB image -> text-probability map at the input's size ->
/// one box per connected region above <see cref="DetectorOptions.Threshold"/>, grown back by DB's unclip
/// distance (area x ratio / perimeter). Boxes are axis-aligned: screen text is horizontal, and rotated
/// text is out of scope. Owns its session; buffers grow to the largest input seen and are reused.
/// </summary>
public sealed class TextDetector : IDisposable
{
    private static readonly float[] MeanBgr = [0.485f, 0.456f, 0.406f];
    private static readonly float[] StdBgr = [0.229f, 0.224f, 0.225f];
    private readonly InferenceSession _session;
    private readonly string _file;
    private readonly string _inputName, _outputName;
    private readonly RunOptions _run = new();
    private float[] _input = [];
    private int[] _labels = [];
    private int[] _stack = [];

    internal TextDetector(InferenceSession session, string file, DetectorOptions options)
    {
        _session = session;
        _file = file;
        Options = options;
        _inputName = session.InputMetadata.Keys.Single();
        _outputName = session.OutputMetadata.Keys.Single();
    }

    /// <summary>The settings fixed at load.</summary>
    public DetectorOptions Options { get; }

    /// <summary>The network's input size for a width x height image: scaled to fit the side limits, multiples of 32.</summary>
    public (int Width, int Height) InputSize(int width, int height)
    {
        double scale = 1.0;
        if (Math.Max(width, height) > Options.MaxSide) scale = (double)Options.MaxSide / Math.Max(width, height);
        else if (Math.Min(width, height) < Options.MinSide) scale = Math.Min((double)Options.MinSide / Math.Min(width, height), (double)Options.MaxSide / Math.Max(width, height));
        static int Round32(double v) => Math.Max(32, (int)Math.Round(v / 32.0) * 32);
        return (Round32(width * scale), Round32(height * scale));
    }

    /// <summary>Text boxes of an RGB image (row-major, 3 bytes per pixel), in no particular order.</summary>
    public IReadOnlyList<TextBox> Detect(ReadOnlySpan<byte> rgb, int width, int height)
    {
        if (width <= 0 || height <= 0 || rgb.Length < width * height * 3)
            throw new InferenceException($"OCR input must be a non-empty RGB image, got {width}x{height} with {rgb.Length} bytes");
        var (w, h) = InputSize(width, height);
        if (_input.Length < 3 * w * h) _input = new float[3 * w * h];
        OcrImage.ResizeNormalize(rgb, width, new PixelRect(0, 0, width, height), _input, w, h, w, h, MeanBgr, StdBgr);
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _input.AsMemory(0, 3 * w * h), [1, 3, h, w]);
        using (var outputs = OrtCall.Run(_session, _run, [_inputName], [input], [_outputName], _file))
        {
            var shape = outputs[0].GetTensorTypeAndShape().Shape;
            if (shape.Length != 4 || shape[2] != h || shape[3] != w)
                throw new InferenceException($"{_file} returned a map of shape [{string.Join(", ", shape)}], expected [1, 1, {h}, {w}]");
            return Boxes(outputs[0].GetTensorDataAsSpan<float>(), w, h, (float)width / w, (float)height / h, width, height);
        }
    }

    /// <summary>Connected regions of the thresholded map (4-neighbour flood fill), scored, unclipped and scaled to the image.</summary>
    private List<TextBox> Boxes(ReadOnlySpan<float> prob, int w, int h, float sx, float sy, int width, int height)
    {
        int n = w * h;
        if (_labels.Length < n) { _labels = new int[n]; _stack = new int[n]; }
        var labels = _labels.AsSpan(0, n);
        labels.Clear();
        var boxes = new List<TextBox>();
        int next = 0;
        for (int start = 0; start < n; start++)
        {
            if (labels[start] != 0 || prob[start] <= Options.Threshold) continue;
            next++;
            int top = 0, count = 0;
            double sum = 0;
            int minX = w, maxX = -1, minY = h, maxY = -1;
            _stack[top++] = start;
            labels[start] = next;
            while (top > 0)
            {
                int p = _stack[--top];
                int x = p % w, y = p / w;
                count++;
                sum += prob[p];
                if (x < minX) minX = x;
                if (x > maxX) maxX = x;
                if (y < minY) minY = y;
                if (y > maxY) maxY = y;
                if (x > 0) Push(p - 1, prob, labels, next, ref top);
                if (x < w - 1) Push(p + 1, prob, labels, next, ref top);
                if (y > 0) Push(p - w, prob, labels, next, ref top);
                if (y < h - 1) Push(p + w, prob, labels, next, ref top);
            }
            int bw = maxX - minX + 1, bh = maxY - minY + 1;
            float score = (float)(sum / count);
            if (Math.Min(bw, bh) < Options.MinBoxSide || score < Options.BoxThreshold) continue;
            // DB predicts a shrunk kernel of each text region; grow it back by area * ratio / perimeter.
            double d = (double)bw * bh * Options.UnclipRatio / (2.0 * (bw + bh));
            int x0 = (int)Math.Floor((minX - d) * sx), x1 = (int)Math.Ceiling((maxX + 1 + d) * sx);
            int y0 = (int)Math.Floor((minY - d) * sy), y1 = (int)Math.Ceiling((maxY + 1 + d) * sy);
            var rect = new PixelRect(x0, y0, x1 - x0, y1 - y0).ClipTo(width, height);
            if (rect.Width >= Options.MinBoxSide && rect.Height >= Options.MinBoxSide) boxes.Add(new TextBox(rect, score));
        }
        return boxes;
    }

    private void Push(int q, ReadOnlySpan<float> prob, Span<int> labels, int label, ref int top)
    {
        if (labels[q] != 0 || prob[q] <= Options.Threshold) return;
        labels[q] = label;
        _stack[top++] = q;
    }

    /// <summary>Frees the session.</summary>
    public void Dispose()
    {
        _run.Dispose();
        _session.Dispose();
    }
}
