using Assistant.Inference.Ocr;

namespace Assistant.Inference.Tests.Ocr;

/// <summary>One OCR reader (the real PaddleOCR v4 models from the cache tools/fetch_models.sh fills) for a test class.</summary>
public sealed class OcrFixture : IDisposable
{
    public OcrFixture()
    {
        Models = OcrModels.Locate();
        Reader = OcrReader.Load(new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)), Models);
    }

    public OcrModels Models { get; }
    public OcrReader Reader { get; }

    public OcrResult Read(string png)
    {
        var frame = Capture.ImageFile.Load(png);
        return Reader.Read(frame.Rgb, frame.Width, frame.Height);
    }

    public void Dispose() => Reader.Dispose();
}
