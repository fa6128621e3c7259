namespace Assistant.Ui;

/// <summary>
/// A tool child's output as it reaches our terminal (issue 31, findings 3 and 5): its text can carry a checkpoint's
/// strings (an error quoting a config value), so escape sequences are shown, not run; a line is cut at
/// <see cref="MaxLineChars"/> characters and at most <see cref="MaxLines"/> lines pass (an error of 1 MB on one line
/// printed 1 MB). Carriage returns pass, so the tool's progress bars still redraw in place. One stream, one writer.
/// </summary>
internal sealed class ToolOutput(TextWriter to)
{
    public const int MaxLineChars = 400;
    public const int MaxLines = 60;
    private readonly System.Text.StringBuilder _line = new();
    private int _lines, _dropped;
    private bool _cut;

    public void Write(ReadOnlySpan<char> chunk)
    {
        foreach (var c in chunk)
        {
            if (c is '\n' or '\r')
            {
                Flush(c);
                continue;
            }
            if (_line.Length >= MaxLineChars) { _cut = true; continue; }
            _line.Append(c);
        }
        to.Flush();
    }

    /// <summary>Writes what is pending and says how many lines were left out.</summary>
    public void Close()
    {
        if (_line.Length > 0) Flush('\n');
        if (_dropped > 0) to.WriteLine($"({_dropped} more lines of the tool's output not shown)");
        to.Flush();
    }

    private void Flush(char end)
    {
        if (end == '\n' && ++_lines > MaxLines)
        {
            _dropped++;
        }
        else
        {
            // The cut counts what is printed: escapes lengthen the line.
            var printed = Engine.TerminalText.Printable(_line.ToString());
            if (_cut || printed.Length > MaxLineChars) printed = printed[..Math.Min(printed.Length, MaxLineChars - 1)] + "…";
            to.Write(printed);
            to.Write(end);
        }
        _line.Clear();
        _cut = false;
    }
}
