namespace Assistant.Engine;

/// <summary>What happened on one frame: which stages ran and which were served from a cache.</summary>
public sealed class FrameStats
{
    /// <summary>The vision encoder ran (the scene changed, or nothing was encoded yet).</summary>
    public bool VisionRan { get; internal set; }

    /// <summary>The query was prefilled (a new question, or another decoder).</summary>
    public bool QueryPrefilled { get; internal set; }

    /// <summary>The compressor ran (new features, query or configuration).</summary>
    public bool CompressorRan { get; internal set; }

    /// <summary>The thumbnail metric against the last encoded frame (0..255); infinite on the first frame.</summary>
    public float SceneChange { get; internal set; }

    /// <summary>How familiar the picture looks to a world set's encoder; null for a set that is not domain-checked.</summary>
    public PictureFamiliarity? Familiarity { get; internal set; }
}

/// <summary>What a changed picture does to an answer still being decoded.</summary>
public enum AnswerMode
{
    /// <summary>A changed scene restarts the answer, so it always describes the newest picture.</summary>
    Live,

    /// <summary>The answer in flight finishes about the frame it started on; the next one starts after it.</summary>
    Snapshot,
}

/// <summary>One token of an answer and the text it completes (empty mid-character or for a special token).</summary>
public readonly record struct AnswerToken(int Id, string Text);

/// <summary>
/// One frame of <see cref="FramePipeline.RunFrame"/>: the tokens decoded on it and the answer so far.
/// <paramref name="Repetitive"/>: the answer ended because it repeated itself (the guard cut it).
/// </summary>
public sealed record FrameOutcome(IReadOnlyList<int> NewTokenIds, string NewText, string AnswerSoFar, bool AnswerDone, bool AnswerRestarted,
    long AnswerStartedAt, bool Repetitive, double Confidence = 1);

/// <summary>
/// How familiar a picture looks to a world set's own encoder: its <paramref name="Score"/> (about 1 for the scenes the
/// set was trained on) against the set's <paramref name="Threshold"/>, calibrated on held-out scenes.
/// </summary>
public sealed record PictureFamiliarity(double Score, double Threshold)
{
    /// <summary>The picture looks like the scenes the set knows.</summary>
    public bool Familiar => Score <= Threshold;

    /// <summary>What a user is told about an unfamiliar picture.</summary>
    public const string Warning = "this picture does not look like the coloured-shape scenes this model set knows, so its answer means little; " +
                                  "a real checkpoint answers such pictures (docs/REAL_MODELS.md)";
}

/// <summary>
/// Counters over a pipeline's life: how often each stage ran against how many frames it served.
/// <paramref name="PrefixPrefills"/>: runs of the text before the image (a chat set's template prefix, a world set's
/// query), each reused by every later frame until the decoder (or, for a world set, the query) changes.
/// </summary>
public sealed record LoopCounters(long Frames, long VisionRuns, long QueryPrefills, long CompressorRuns, long PrefixPrefills = 0);
