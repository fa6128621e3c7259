namespace Assistant.Engine;

/// <summary>Where a query goes: the visual path (vision encoder, QueCC, decoder) or OCR.</summary>
public enum QueryRoute
{
    /// <summary>The vision encoder, QueCC and the decoder.</summary>
    Visual,
    /// <summary>Text recognition: the answer is the text read.</summary>
    Ocr,
}

/// <summary>A routing decision and the rule that made it (shown on the timing line).</summary>
public sealed record RouteDecision(QueryRoute Route, string Rule)
{
    /// <summary>"route ocr (rule)".</summary>
    public override string ToString() => $"route {(Route == QueryRoute.Ocr ? "ocr" : "visual")} ({Rule})";
}

/// <summary>
/// Sends text-heavy queries to OCR and visual ones to QueCC. The paper found that reading text keeps
/// gaining from more visual tokens where reasoning saturates at 1-4, so a handful of QueCC tokens cannot
/// read a screen; OCR can. Rules, first match wins (docs/OCR.md lists them with examples):
/// 1. quoted text in the query ("is 'Save' greyed out?") -> OCR;
/// 2. a reading verb (read, say, says, written, spell, transcribe, ...) -> OCR;
/// 3. a noun for something written (text, word, error, message, title, label, number, price, version, ...) -> OCR;
/// 4. otherwise -> visual.
/// </summary>
public static class QueryRouter
{
    private static readonly HashSet<string> ReadingVerbs =
        ["read", "reads", "reading", "say", "says", "said", "saying", "written", "write", "writes", "spell", "spelled", "spelt", "transcribe", "ocr"];

    private static readonly HashSet<string> WrittenThings =
    [
        "text", "texts", "word", "words", "letter", "letters", "character", "characters", "error", "errors", "message", "messages",
        "warning", "warnings", "title", "titles", "heading", "headline", "label", "labels", "caption", "subtitle", "subtitles", "sign",
        "number", "numbers", "digit", "digits", "code", "line", "lines", "version", "price", "prices", "cost", "total", "date",
        "time", "url", "link", "email", "address", "name", "filename", "path", "menu", "button", "tab", "page", "paragraph",
        "sentence", "quote", "notification", "dialog", "dialogue", "password", "username", "phone",
    ];

    /// <summary>The automatic route of <paramref name="query"/>: OCR for a question about written things, else visual; with the rule that decided.</summary>
    public static RouteDecision Route(string query)
    {
        if (HasQuotedText(query)) return new RouteDecision(QueryRoute.Ocr, "quoted text");
        var words = Words(query);
        foreach (var w in words)
            if (ReadingVerbs.Contains(w)) return new RouteDecision(QueryRoute.Ocr, $"reading verb '{w}'");
        foreach (var w in words)
            if (WrittenThings.Contains(w)) return new RouteDecision(QueryRoute.Ocr, $"written thing '{w}'");
        return new RouteDecision(QueryRoute.Visual, "no text cue");
    }

    /// <summary>Parses --route: auto (the rules), visual or ocr (forced).</summary>
    public static RouteDecision Decide(string query, string mode) => mode switch
    {
        "auto" => Route(query),
        "visual" => new RouteDecision(QueryRoute.Visual, "forced"),
        "ocr" => new RouteDecision(QueryRoute.Ocr, "forced"),
        _ => throw new EngineException($"--route must be auto, visual or ocr, got '{mode}'"),
    };

    private static List<string> Words(string query)
    {
        var words = new List<string>();
        var current = new System.Text.StringBuilder();
        foreach (var c in query.ToLowerInvariant().Append(' '))
        {
            if (char.IsLetterOrDigit(c)) current.Append(c);
            else if (current.Length > 0)
            {
                words.Add(current.ToString());
                current.Clear();
            }
        }
        return words;
    }

    /// <summary>Text between a pair of quotes ('...' or "..." or typographic ones), not an apostrophe inside a word.</summary>
    private static bool HasQuotedText(string query)
    {
        foreach (var (open, close) in new[] { ('"', '"'), ('\u201C', '\u201D'), ('\'', '\''), ('\u2018', '\u2019') })
        {
            for (int i = 0; i < query.Length; i++)
            {
                if (query[i] != open || (i > 0 && char.IsLetterOrDigit(query[i - 1]))) continue;  // it's = apostrophe
                int j = query.IndexOf(close, i + 1);
                if (j > i + 1 && (j + 1 >= query.Length || !char.IsLetterOrDigit(query[j + 1]))) return true;
            }
        }
        return false;
    }
}
