using System.Diagnostics;
using Assistant.Capture.Screen;
using Assistant.Tests;
using Xunit.Abstractions;

namespace Assistant.Inference.Tests.Ocr;

/// <summary>
/// Real screenshots: a terminal (xterm, light on dark) and a text editor (xedit, dark on light) showing a
/// known file on an Xvfb screen, captured through the assistant's own X11 screen source and read by OCR.
/// </summary>
public sealed class ScreenshotOcrTests(OcrFixture ocr, ITestOutputHelper output) : IClassFixture<OcrFixture>
{
    private static readonly string[] Shown =
    [
        "$ make build",
        "gcc -O2 -Wall -o server main.c net.c",
        "main.c:42:13: warning: unused variable 'count'",
        "net.c:118:5: error: 'socket_fd' undeclared",
        "make: *** [Makefile:12: server] Error 1",
        "$ python3 deploy.py --env staging",
        "Traceback (most recent call last):",
        "  File \"deploy.py\", line 27, in <module>",
        "ConnectionError: timed out after 30 seconds",
    ];

    [Fact]
    public void A_terminal_screenshot_is_read_with_at_most_5_percent_character_errors()
    {
        var file = WriteShown();
        double cer = ReadScreen(900, 300, "xterm",
            ["-geometry", "90x14+0+0", "-fa", "DejaVu Sans Mono", "-fs", "11", "-bg", "#1e1e1e", "-fg", "#d0d0d0", "-e", "sh", "-c", $"cat '{file}'; sleep 120"]);
        Assert.True(cer <= 0.05, $"terminal CER {100 * cer:F2}% exceeds 5%");
    }

    [Fact]
    public void A_text_editor_screenshot_is_read_with_at_most_5_percent_character_errors()
    {
        var file = WriteShown();
        double cer = ReadScreen(700, 400, "xedit", ["-geometry", "700x400+0+0", "-fn", "9x15", file]);
        Assert.True(cer <= 0.05, $"editor CER {100 * cer:F2}% exceeds 5%");
    }

    private static string WriteShown()
    {
        var file = Path.Combine(Path.GetTempPath(), $"assistant-ocr-{Guid.NewGuid():N}.txt");
        File.WriteAllLines(file, Shown);
        return file;
    }

    /// <summary>Runs the program on a fresh screen, waits until its picture is steady, reads it; returns the CER of the shown lines.</summary>
    private double ReadScreen(int width, int height, string program, string[] args)
    {
        using var xvfb = new XvfbServer(120, width, height);
        var psi = new ProcessStartInfo(program, args) { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.Environment["DISPLAY"] = xvfb.Display;
        using var app = Process.Start(psi) ?? throw new InvalidOperationException($"{program} did not start");
        try
        {
            using var screen = new X11ScreenSource(xvfb.Display);
            var frame = Steady(screen);
            var read = ocr.Reader.Read(frame.Rgb, frame.Width, frame.Height);
            var rows = read.Text.Split('\n').Select(Collapse).ToList();
            output.WriteLine($"{program}: read {read.Lines.Count} lines in {(read.Detect + read.Recognize).TotalMilliseconds:F0} ms:\n{read.Text}");
            // Each shown line against the closest line read (the window's own labels and menus are extra lines).
            long errors = 0, chars = 0;
            foreach (var line in Shown.Select(Collapse))
            {
                errors += rows.Min(r => TextLines.EditDistance(r, line));
                chars += line.Length;
            }
            double cer = (double)errors / chars;
            output.WriteLine($"{program}: CER {100 * cer:F2}% ({errors} edits / {chars} chars)");
            return cer;
        }
        finally
        {
            app.Kill(entireProcessTree: true);
            app.WaitForExit(5000);
        }
    }

    /// <summary>Runs of spaces (a terminal's indentation) count as one.</summary>
    private static string Collapse(string s) => string.Join(' ', s.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    /// <summary>The first frame that is not blank and equals the one 300 ms before it (the program has drawn).</summary>
    private static Capture.Frame Steady(X11ScreenSource screen)
    {
        byte[]? previous = null;
        for (int i = 0; i < 100; i++)
        {
            Assert.True(screen.TryRead(out var frame));  // a screen never ends
            bool drawn = frame.Rgb.AsSpan().IndexOfAnyExcept(frame.Rgb[0]) >= 0;
            if (drawn && previous is not null && frame.Rgb.AsSpan().SequenceEqual(previous)) return frame;
            previous = drawn ? (byte[])frame.Rgb.Clone() : null;
            Thread.Sleep(300);
        }
        throw new InvalidOperationException("the screen never settled");
    }
}
