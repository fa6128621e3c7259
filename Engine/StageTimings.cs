using System.Diagnostics;

namespace Assistant.Engine;

/// <summary>The stages of answering about one frame, in pipeline order.</summary>
public enum Stage
{
    /// <summary>Resize and normalise (only when the vision encoder runs).</summary>
    Preprocess,
    /// <summary>The vision encoder.</summary>
    Vision,
    /// <summary>The query's prefill (once per question).</summary>
    QueryPrefill,
    /// <summary>QueCC or the baseline compressor.</summary>
    Compress,
    /// <summary>The V + 2 visual positions on the cached query.</summary>
    VisualPrefill,
    /// <summary>Answer tokens.</summary>
    Decode,
}

/// <summary>Wall time per stage of one ask, and decode throughput. Filled by <see cref="AskPipeline"/>.</summary>
public sealed class StageTimings
{
    /// <summary>Every stage, in pipeline order (made once: Enum.GetValues allocates a new array per call).</summary>
    public static IReadOnlyList<Stage> All { get; } = Enum.GetValues<Stage>();

    private static readonly string[] Names = All.Select(Name).ToArray();
    private readonly double[] _ms = new double[All.Count];

    /// <summary>Ms spent in <paramref name="stage"/>.</summary>
    public double this[Stage stage] => _ms[(int)stage];

    /// <summary>Answer tokens produced (stop token excluded).</summary>
    public int DecodedTokens { get; internal set; }

    /// <summary>Query tokens prefilled (query-start token included).</summary>
    public int QueryTokens { get; internal set; }

    /// <summary>Positions in the visual prefill: V visual tokens plus the two vision markers.</summary>
    public int VisualPositions { get; internal set; }

    /// <summary>The answer ended because it repeated itself (the guard cut it); the engine logs a note.</summary>
    public bool Repetitive { get; internal set; }

    /// <summary>The model's probability of the answer it gave (the product of its tokens' probabilities); null before an answer.</summary>
    public double? Confidence { get; internal set; }

    /// <summary>How familiar the picture looked to a world set's encoder; null for a set that is not domain-checked.</summary>
    public PictureFamiliarity? Familiarity { get; internal set; }

    /// <summary>Every position the answer's first token attended to: the text before the picture, the markers, the V visual tokens, the text after.</summary>
    public int PromptTokens { get; internal set; }

    /// <summary>The answer stopped at its token limit (not at a stop token, the set's word limit or the repetition guard).</summary>
    public bool ReachedTokenLimit { get; internal set; }

    /// <summary>Answer tokens per second of decode time.</summary>
    public double DecodeTokensPerSecond => this[Stage.Decode] > 0 ? DecodedTokens / (this[Stage.Decode] / 1000.0) : 0;

    /// <summary>All stages together, ms.</summary>
    public double TotalMs => _ms.Sum();

    internal void Add(Stage stage, long startTimestamp) => _ms[(int)stage] += Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds;

    /// <summary>Adds <paramref name="ticks"/> Stopwatch ticks a stage took (measured by the layer that ran it).</summary>
    internal void AddTicks(Stage stage, long ticks) => _ms[(int)stage] += ticks * 1000.0 / Stopwatch.Frequency;

    /// <summary>Stage name to ms (rounded to the microsecond), in pipeline order.</summary>
    public IReadOnlyDictionary<string, double> ToDictionary()
    {
        var d = new Dictionary<string, double>(Names.Length);
        for (int i = 0; i < Names.Length; i++) d[Names[i]] = Math.Round(_ms[i], 3);
        return d;
    }

    /// <summary>The one name of each stage, as every report, record and plan writes it.</summary>
    public static string Name(Stage s) => s switch
    {
        Stage.Preprocess => "preprocess",
        Stage.Vision => "vision",
        Stage.QueryPrefill => "query_prefill",
        Stage.Compress => "quecc",
        Stage.VisualPrefill => "visual_prefill",
        Stage.Decode => "decode",
        _ => s.ToString(),
    };

    /// <summary>One line: every stage in ms, then decode tokens/s.</summary>
    public override string ToString() => Line(null);

    /// <summary>
    /// One line for a person: every stage in ms (the compressor's stage named for <paramref name="compressor"/>, the kind
    /// that ran, where it is known: the JSON keys keep the one name "quecc"), then decode tokens/s.
    /// </summary>
    public string Line(string? compressor) =>
        string.Join("  ", All.Select(s => $"{(s == Stage.Compress && compressor is not null ? compressor : Name(s))} {this[s]:F1} ms")) +
        $"  | decode {DecodedTokens} tok, {DecodeTokensPerSecond:F1} tok/s  | total {TotalMs:F1} ms";
}
