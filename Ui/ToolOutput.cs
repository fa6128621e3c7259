namespace Assistant.Ui;

/// <summary>
/// A tool child's output as it reaches our terminal (issue 31, findings 3 and 5): its text can carry a checkpoint's
/// strings (an error quoting a config value), so escape sequences are shown, not run; a line is cut at
/// <see cref="MaxLineChars"/> characters and at most <c>maxLines</c> lines pass as they come (an error of 1 MB on one
/// line printed 1 MB); past that, only the last <see cref="TailLines"/> are kept and printed at the end, so a tool's
/// closing summary is never the part left out. Carriage returns pass, so the tool's progress bars still redraw in
/// place. One stream, one writer.
/// </summary>
internal sealed class ToolOutput(TextWriter to, int maxLines = ToolOutput.MaxLines)
{
    public const int MaxLineChars = 400;
    public const int MaxLines = 60;
    public const int TailLines = 12;
    private readonly System.Text.StringBuilder _line = new();
    private readonly Queue<string> _tail = new();
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
        foreach (var line in _tail) to.WriteLine(line);
        to.Flush();
    }

    private void Flush(char end)
    {
        // The cut counts what is printed: escapes lengthen the line.
        var printed = Engine.TerminalText.Printable(_line.ToString());
        if (_cut || printed.Length > MaxLineChars) printed = printed[..Math.Min(printed.Length, MaxLineChars - 1)] + "…";
        if (end == '\n' && ++_lines > maxLines)
        {
            // past the cap: the last lines are kept for the end, the ones they push out are counted
            _tail.Enqueue(printed);
            if (_tail.Count > TailLines)
            {
                _tail.Dequeue();
                _dropped++;
            }
        }
        else if (_lines <= maxLines)
        {
            to.Write(printed);
            to.Write(end);
        }
        _line.Clear();
        _cut = false;
    }
}
