namespace Assistant.Engine;

/// <summary>
/// The one error path for the command line (STYLE.md habit 6): every user-facing failure of any layer
/// (Capture, Inference or Engine) is a one-line message and an exit code; anything else is internal.
/// </summary>
public static class UserErrors
{
    /// <summary>Longest message printed, in characters; a longer one is cut with an ellipsis.</summary>
    public const int MaxMessageChars = 400;

    /// <summary>
    /// <paramref name="message"/> made safe for one terminal line: line breaks, escape sequences and every other
    /// control or non-printable character are written as escapes (<c>\n</c>, <c>\x1b</c>, <c>\u200e</c>), so
    /// untrusted text echoed in an error (an option's value, a file name, a file's first bytes) can neither add
    /// lines nor drive the terminal; and at most <see cref="MaxMessageChars"/> characters.
    /// </summary>
    public static string OneLine(string message)
    {
        var sb = new System.Text.StringBuilder(Math.Min(message.Length, MaxMessageChars) + 8);
        foreach (var c in message)
        {
            var category = char.GetUnicodeCategory(c);
            string? escaped = c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when char.IsControl(c) => $"\\x{(int)c:x2}",
                _ when category is System.Globalization.UnicodeCategory.Format or System.Globalization.UnicodeCategory.LineSeparator
                    or System.Globalization.UnicodeCategory.ParagraphSeparator or System.Globalization.UnicodeCategory.OtherNotAssigned => $"\\u{(int)c:x4}",
                _ => null,
            };
            // The cut counts what is printed: an escape near the end must not carry the line past the limit.
            if (sb.Length + (escaped?.Length ?? 1) > MaxMessageChars)
            {
                sb.Append('…');
                break;
            }
            if (escaped is null) sb.Append(c);
            else sb.Append(escaped);
        }
        return sb.ToString();
    }

    /// <summary>The exit code of a user-facing failure (2: bad input; 1: a runtime failure), or null for an internal error.</summary>
    public static int? ExitCode(Exception e) => e switch
    {
        EngineException x => x.ExitCode,
        Inference.InferenceException x => x.ExitCode,
        Capture.CaptureException x => x.ExitCode,
        _ => null,
    };
}
