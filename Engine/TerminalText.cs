namespace Assistant.Engine;

/// <summary>
/// Text from a model or a checkpoint made safe to print on a terminal (issue 31, finding 3). Any byte-level BPE model
/// can emit ESC, and a checkpoint's vocabulary can map a token to <c>ESC ] 0 ; title BEL ESC [2J</c>: printed raw, that
/// sets the window title, clears the screen and colours what follows. Every C0 and C1 control character but line feed
/// and tab is written as an escape (<c>\x1b</c>, <c>\r</c>); everything else, the answer's lines included, is kept.
/// For the console, the HUD and plain output only: <c>--json</c> and the record keep the exact text, JSON-escaped.
/// </summary>
public static class TerminalText
{
    /// <summary><paramref name="text"/> with its control characters other than \n and \t escaped.</summary>
    public static string Printable(string text)
    {
        int first = 0;
        while (first < text.Length && !Escaped(text[first])) first++;
        if (first == text.Length) return text;  // the usual case: nothing to do, nothing allocated
        var sb = new System.Text.StringBuilder(text.Length + 8);
        sb.Append(text, 0, first);
        for (int i = first; i < text.Length; i++)
        {
            char c = text[i];
            if (!Escaped(c)) sb.Append(c);
            else if (c == '\r') sb.Append("\\r");
            else sb.Append("\\x").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    private static bool Escaped(char c) => char.IsControl(c) && c is not ('\n' or '\t');
}
