using Assistant.Inference.Ocr;

namespace Assistant.Engine;

/// <summary>One line of text read from a picture, with its box (pixels) and the recogniser's confidence.</summary>
public sealed record ReadLine(string Text, int X, int Y, int Width, int Height, float Confidence);

/// <summary>The text of a picture in reading order, and what detection and recognition took.</summary>
public sealed record ReadResult(IReadOnlyList<ReadLine> Lines, string Text, TimeSpan Detect, TimeSpan Recognize);

/// <summary>
/// OCR behind Engine's door (PaddleOCR v4: detection, recognition, CTC): <c>read</c>, the OCR route of
/// <c>ask</c>, and <c>hotkey --mode read</c>. Owns its sessions.
/// </summary>
public sealed class TextReading : IDisposable
{
    private readonly OcrReader _reader;

    private TextReading(OcrReader reader) => _reader = reader;

    /// <summary>The OCR models (hash-checked) from <paramref name="directory"/> or the fetched cache, on <paramref name="ep"/>.</summary>
    public static TextReading Load(string? directory, string ep, Action<string>? note = null) =>
        new(OcrReader.Load(Providers.Factory(ep, note), OcrModels.Locate(directory)));

    /// <summary>Reads <paramref name="picture"/>.</summary>
    public ReadResult Read(FramePicture picture)
    {
        var f = picture.Frame;
        var r = _reader.Read(f.Rgb, f.Width, f.Height);
        return new ReadResult(r.Lines.Select(l => new ReadLine(l.Text, l.Box.X, l.Box.Y, l.Box.Width, l.Box.Height, l.Confidence)).ToList(), r.Text, r.Detect, r.Recognize);
    }

    /// <summary>Frees the sessions.</summary>
    public void Dispose() => _reader.Dispose();
}
