namespace Assistant.Tests;

/// <summary>One rendered text line: the image file and the text drawn in it.</summary>
public sealed record TextLineImage(string Path, string Text, string Font, int PixelSize, bool DarkOnLight);

/// <summary>
/// Screen-like text lines (words, identifiers, numbers, paths, punctuation), deterministic from a seed,
/// rendered by ImageMagick with installed fonts (serif, sans, monospace) at 12-32 px, dark on light or
/// light on dark. The OCR tests and the OCR benchmark share them.
/// </summary>
public static class TextLines
{
    public static readonly string[] Fonts = ["DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "Nimbus Sans", "Nimbus Roman", "Nimbus Mono PS"];

    private static readonly string[] Words =
    [
        "the", "file", "was", "not", "found", "error", "warning", "open", "save", "close", "settings", "update",
        "download", "complete", "failed", "to", "connect", "server", "user", "password", "invalid", "request",
        "timeout", "after", "seconds", "retry", "build", "succeeded", "tests", "passed", "memory", "disk", "space",
        "low", "battery", "charging", "network", "available", "Welcome", "back", "Total", "Price", "Order",
        "Invoice", "Meeting", "Monday", "March", "Quarterly", "report", "draft", "version", "release", "notes",
        "Press", "Enter", "continue", "Cancel", "Apply", "OK", "Delete", "selected", "items", "permission",
        "denied", "Segmentation", "fault", "core", "dumped", "Traceback", "most", "recent", "call", "last",
    ];

    private static readonly string[] Tokens =
    [
        "config.json", "/usr/local/bin", "main.cs:42", "0x7f3a", "v2.13.1", "HTTP/1.1", "404", "$19.99", "12:45",
        "2026-03-14", "user@example.com", "C:/Users", "README.md", "--verbose", "75%", "(3/8)", "[OK]", "#1207",
        "x = y + 1;", "std::vector", "NullReferenceException", "errno=13", "3.14159", "ID-88213",
    ];

    /// <summary>A line of 2 to 9 words and tokens, first letter sometimes capitalised, sometimes ending in punctuation.</summary>
    public static string Line(Random rng)
    {
        int n = rng.Next(2, 10);
        var parts = new List<string>();
        for (int i = 0; i < n; i++)
            parts.Add(rng.NextDouble() < 0.25 ? Tokens[rng.Next(Tokens.Length)] : Words[rng.Next(Words.Length)]);
        if (rng.NextDouble() < 0.5) parts[0] = char.ToUpperInvariant(parts[0][0]) + parts[0][1..];
        var line = string.Join(' ', parts);
        return rng.Next(4) switch { 0 => line + ".", 1 => line + ":", _ => line };
    }

    /// <summary>Renders <paramref name="count"/> lines from <paramref name="seed"/> into <paramref name="dir"/> (two processes at a time).</summary>
    public static IReadOnlyList<TextLineImage> Render(string dir, int count, int seed)
    {
        Directory.CreateDirectory(dir);
        var rng = new Random(seed);
        var specs = new List<TextLineImage>();
        for (int i = 0; i < count; i++)
        {
            var font = Fonts[i % Fonts.Length];
            int px = 12 + rng.Next(21);
            bool dark = rng.Next(2) == 0;
            specs.Add(new TextLineImage(System.IO.Path.Combine(dir, $"line-{seed}-{i:D3}.png"), Line(rng), font, px, dark));
        }
        Parallel.ForEach(specs, new ParallelOptions { MaxDegreeOfParallelism = 2 }, RenderOne);
        return specs;
    }

    private static void RenderOne(TextLineImage spec)
    {
        // A little colour variety on each side of the contrast, as screens have.
        var (bg, fg) = spec.DarkOnLight ? ("#f4f4f0", spec.PixelSize % 2 == 0 ? "#101010" : "#1a2a6c") : ("#1e1e1e", spec.PixelSize % 2 == 0 ? "#e8e8e8" : "#9fe870");
        RenderText(spec.Text, spec.Path, spec.Font, spec.PixelSize, fg, bg);
    }

    /// <summary>Draws <paramref name="text"/> (newlines make several lines) with a 10 px border of the background.</summary>
    public static void RenderText(string text, string path, string font, int pixelSize, string fg, string bg)
    {
        Tool.Run("convert",
        [
            "-background", bg, "-fill", fg, "-font", FontFile(font), "-pointsize", pixelSize.ToString(),
            "label:" + text.Replace("%", "%%"),  // ImageMagick expands %-escapes in labels
            "-bordercolor", bg, "-border", "10", path,
        ]);
        if (!File.Exists(path)) throw new InvalidOperationException($"convert wrote no {path}");
    }

    /// <summary>Stacks images top to bottom, left-aligned, into one (a page of lines).</summary>
    public static void Stack(IEnumerable<string> images, string path, string bg)
    {
        Tool.Run("convert", [.. images, "-background", bg, "-gravity", "West", "-append", path]);
        if (!File.Exists(path)) throw new InvalidOperationException($"convert wrote no {path}");
    }

    /// <summary>The installed file of a font family (fc-match), so ImageMagick needs no font configuration of its own.</summary>
    public static string FontFile(string family)
    {
        var file = Tool.Run("fc-match", ["-f", "%{file}", family]).Trim();
        if (!File.Exists(file)) throw new InvalidOperationException($"font {family} is not installed (fc-match said '{file}')");
        return file;
    }

    /// <summary>Levenshtein distance between two strings.</summary>
    public static int EditDistance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
