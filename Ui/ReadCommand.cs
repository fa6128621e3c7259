using System.CommandLine;
using System.Text.Json;
using Assistant.Engine;

namespace Assistant.Ui;

/// <summary><c>assistant read --image PATH | --screen [--region X,Y,W,H]</c>: the text of an image or the screen, line by line.</summary>
internal static class ReadCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var image = new Option<string?>("--image") { Description = "image file (PNG, JPEG, BMP, GIF, TGA, WebP, TIFF)" };
        var screen = new Option<bool>("--screen") { Description = "read the X11 screen instead of a file" };
        var region = new Option<string?>("--region") { Description = "with --screen: only X,Y,W,H of it" };
        var display = new Option<string?>("--display") { Description = "with --screen: X display (default: $DISPLAY)" };
        var ocrModels = OcrModelsOption();
        var ep = Cli.EpOption();
        var json = Cli.JsonOption();
        var command = new Command("read", "Read the text of an image or the screen with OCR (PaddleOCR v4): one line per text line, with confidence.")
        {
            image, screen, region, display, ocrModels, ep, json,
        };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(image);
            bool fromScreen = parse.GetValue(screen);
            var regionText = parse.GetValue(region);
            if ((path is null) == !fromScreen)
                throw new EngineException("give exactly one of --image PATH or --screen");
            if (regionText is not null && !fromScreen) throw new EngineException("--region needs --screen");
            FramePicture frame;
            if (path is not null) frame = FramePicture.Load(path);
            else
            {
                using var source = ScreenCapture.Open(parse.GetValue(display), regionText is null ? null : ParseRegion(regionText));
                frame = source.Grab();
            }
            using var reader = LoadReader(parse.GetValue(ocrModels), parse.GetValue(ep)!, stderr);
            var result = reader.Read(frame);
            if (parse.GetValue(json)) stdout.WriteLine(Json(result, frame));
            else Print(result, stdout);
            return 0;
        });
        return command;
    }

    internal static Option<string?> OcrModelsOption() => new("--ocr-models")
    {
        Description = "folder with the PaddleOCR files (default: $ASSISTANT_OCR_MODELS, else the cache tools/fetch_models.sh fills)",
    };

    /// <summary>The OCR models, hash-checked, on the requested provider.</summary>
    internal static TextReading LoadReader(string? dir, string ep, TextWriter stderr) => TextReading.Load(dir, ep, stderr.WriteLine);

    internal static (int X, int Y, int Width, int Height) ParseRegion(string text) =>
        FrameSources.TryParseRegion(text, out var region) ? region : throw new EngineException($"--region takes X,Y,W,H as four integers, got '{text}'");

    internal static void Print(ReadResult result, TextWriter stdout)
    {
        foreach (var line in result.Lines)
            stdout.WriteLine($"{line.Text}\t(confidence {line.Confidence:F2}, box {line.X},{line.Y},{line.Width},{line.Height})");
        stdout.WriteLine($"{result.Lines.Count} lines  | detect {result.Detect.TotalMilliseconds:F1} ms  recognize {result.Recognize.TotalMilliseconds:F1} ms");
    }

    private static string Json(ReadResult result, FramePicture frame) => JsonSerializer.Serialize(new
    {
        width = frame.Width,
        height = frame.Height,
        lines = result.Lines.Select(l => new { text = l.Text, confidence = Math.Round(l.Confidence, 4), box = new[] { l.X, l.Y, l.Width, l.Height } }),
        detect_ms = Math.Round(result.Detect.TotalMilliseconds, 2),
        recognize_ms = Math.Round(result.Recognize.TotalMilliseconds, 2),
    });
}
