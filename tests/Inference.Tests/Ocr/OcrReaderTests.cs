using Assistant.Inference.Ocr;
using Assistant.Tests;

namespace Assistant.Inference.Tests.Ocr;

public sealed class OcrReaderTests(OcrFixture ocr) : IClassFixture<OcrFixture>
{
    private static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "assistant-tests", "ocr-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    [Fact]
    public void An_image_without_text_gives_no_lines()
    {
        var blank = new byte[320 * 200 * 3];
        Array.Fill(blank, (byte)235);
        Assert.Empty(ocr.Reader.Read(blank, 320, 200).Lines);

        // Coloured shapes (a world scene) are not text either.
        var scene = Capture.World.WorldScene.RenderFrame(Capture.World.WorldScene.Generate(2_000_000), 256);
        Assert.Empty(ocr.Reader.Read(scene.Rgb, 256, 256).Lines);
    }

    [Fact]
    public void Lines_come_in_reading_order_with_boxes_inside_the_image()
    {
        var dir = TempDir();
        var first = Path.Combine(dir, "a.png");
        var second = Path.Combine(dir, "b.png");
        TextLines.RenderText("First line of the page", first, "DejaVu Sans", 20, "black", "white");
        TextLines.RenderText("then the second one", second, "DejaVu Sans", 20, "black", "white");
        var page = Path.Combine(dir, "page.png");
        TextLines.Stack([first, second], page, "white");
        var result = ocr.Read(page);
        Assert.Equal(["First line of the page", "then the second one"], result.Lines.Select(l => l.Text));
        Assert.True(result.Lines[0].Box.Bottom <= result.Lines[1].Box.Y + 4, "the first line is above the second");
        var frame = Capture.ImageFile.Load(page);
        Assert.All(result.Lines, l =>
        {
            Assert.InRange(l.Confidence, 0.5f, 1f);
            Assert.True(l.Box.X >= 0 && l.Box.Y >= 0 && l.Box.Right <= frame.Width && l.Box.Bottom <= frame.Height);
        });
        Assert.Equal("First line of the page\nthen the second one", result.Text);
    }

    [Fact]
    public void Reading_order_puts_rows_top_to_bottom_and_boxes_left_to_right()
    {
        var boxes = new List<PixelRect> { new(200, 52, 80, 20), new(10, 50, 90, 22), new(10, 10, 300, 20), new(120, 49, 60, 20) };
        Assert.Equal([boxes[2], boxes[1], boxes[3], boxes[0]], OcrReader.ReadingOrder(boxes));
    }

    [Fact]
    public void Batched_recognition_reads_the_same_text_as_one_crop_at_a_time()
    {
        var dir = TempDir();
        var lines = TextLines.Render(dir, 6, seed: 5);
        var parts = lines.Select(l => l.Path).ToList();
        var page = Path.Combine(dir, "page.png");
        TextLines.Stack(parts, page, "#f4f4f0");
        var frame = Capture.ImageFile.Load(page);
        var boxes = ocr.Reader.Detector.Detect(frame.Rgb, frame.Width, frame.Height).Select(b => b.Rect).ToList();
        using var batched = OcrReader.Load(new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)), ocr.Models, new OcrOptions(BatchSize: 4));
        var one = ocr.Reader.Recognizer.Recognize(frame.Rgb, frame.Width, frame.Height, boxes);
        var four = batched.Recognizer.Recognize(frame.Rgb, frame.Width, frame.Height, boxes);
        Assert.Equal(1, ocr.Reader.Recognizer.BatchSize);
        Assert.True(boxes.Count >= 6, $"expected at least 6 boxes, found {boxes.Count}");
        Assert.Equal(one.Select(r => r.Text), four.Select(r => r.Text));
    }

    [Fact]
    public void Bad_input_is_a_one_line_error()
    {
        var e = Assert.Throws<InferenceException>(() => ocr.Reader.Read(new byte[10], 10, 10));
        Assert.Contains("RGB image", e.Message);
        var outside = Assert.Throws<InferenceException>(() => ocr.Reader.Recognizer.Recognize(new byte[30 * 30 * 3], 30, 30, [new PixelRect(20, 0, 20, 10)]));
        Assert.Contains("outside", outside.Message);
        Assert.Throws<InferenceException>(() => OcrReader.Load(new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)), ocr.Models, new OcrOptions(BatchSize: 0)));
    }
}
