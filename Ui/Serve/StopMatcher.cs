namespace Assistant.Ui.Serve;

/// <summary>
/// The request's stop strings over a streamed answer: text is released as soon as it cannot be the start of a stop
/// string, and the answer ends before the first stop string (which is not sent), as OpenAI's <c>stop</c> does.
/// </summary>
internal sealed class StopMatcher(IReadOnlyList<string> stops)
{
    private readonly System.Text.StringBuilder _held = new();

    /// <summary>The answer reached a stop string.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds a token's text; returns what may be sent now.</summary>
    public string Push(string text)
    {
        if (Stopped) return "";
        if (stops.Count == 0) return text;
        _held.Append(text);
        var held = _held.ToString();
        int first = -1;
        foreach (var s in stops)
        {
            int at = held.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && (first < 0 || at < first)) first = at;
        }
        if (first >= 0)
        {
            Stopped = true;
            _held.Clear();
            return held[..first];
        }
        // Keep the longest tail that is a prefix of some stop string; release the rest.
        int keep = 0;
        foreach (var s in stops)
            for (int k = Math.Min(s.Length - 1, held.Length); k > keep; k--)
                if (held.AsSpan(held.Length - k).SequenceEqual(s.AsSpan(0, k))) { keep = k; break; }
        _held.Clear().Append(held, held.Length - keep, keep);
        return held[..^keep];
    }

    /// <summary>A whole answer known at once, ended before its first stop string.</summary>
    public static string Cut(string text, IReadOnlyList<string> stops)
    {
        var matcher = new StopMatcher(stops);
        return matcher.Push(text) + matcher.Flush();
    }

    /// <summary>What is still held when the answer ends without a stop string.</summary>
    public string Flush()
    {
        var rest = Stopped ? "" : _held.ToString();
        _held.Clear();
        return rest;
    }
}
