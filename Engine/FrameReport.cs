using System.Text.Json;
using System.Text.Json.Serialization;
using Assistant.Capture;
using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>
/// A frame's picture as the session saw it, for observers that show it (the overlay's preview). Immutable:
/// the session never writes into a picture it has handed over. Encoding runs on the caller's thread.
/// </summary>
public sealed class FramePicture
{
    private readonly Frame _frame;

    internal FramePicture(Frame frame) => _frame = frame;

    /// <summary>The capture layer's frame (for the engine's own stages).</summary>
    internal Frame Frame => _frame;

    /// <summary>Decodes an image file (PNG, JPEG, BMP, GIF, TGA, WebP, TIFF); a missing or broken one is a one-line error.</summary>
    public static FramePicture Load(string path) => new(ImageFile.Load(path));

    /// <summary>Decodes an encoded image (PNG, JPEG, BMP, GIF, TGA, WebP, TIFF) held in memory, e.g. from a request; <paramref name="name"/> names it in errors.</summary>
    public static FramePicture Decode(byte[] bytes, string name) => new(ImageFile.Decode(bytes, name));

    /// <summary>A picture from packed RGB bytes (row-major, width x height x 3), e.g. for a benchmark of an observer.</summary>
    public static FramePicture FromRgb(byte[] rgb, int width, int height, TimeSpan timestamp = default)
    {
        if (width < 1 || height < 1 || rgb.Length != width * height * 3)
            throw new EngineException($"a {width} x {height} picture needs {width * height * 3} RGB bytes, got {rgb.Length}");
        return new FramePicture(new Frame(rgb, width, height, timestamp));
    }

    /// <summary>Width in pixels.</summary>
    public int Width => _frame.Width;

    /// <summary>Height in pixels.</summary>
    public int Height => _frame.Height;

    /// <summary>When the source captured it.</summary>
    public TimeSpan Timestamp => _frame.Timestamp;

    /// <summary>The picture as PNG bytes (exact).</summary>
    public byte[] EncodePng() => Capture.World.PngFile.Encode(_frame);

    /// <summary>The picture as JPEG bytes (small, for large frames).</summary>
    public byte[] EncodeJpeg() => Capture.World.PngFile.EncodeJpeg(_frame);

    /// <summary>Writes it as a PNG file.</summary>
    public void SavePng(string path) => Capture.World.PngFile.Write(_frame, path);
}

/// <summary>
/// Everything one frame of a live session did, made once at the end of the frame and never changed: the
/// question and answer, the stages and caches, the configuration and the loop's timing. Observers (the
/// record file, the HUD, the overlay) read it; none can change what the next frame does. Its JSON (the names
/// below) is the one frame message: a record file's frame line and the overlay's WebSocket message and
/// <c>/api/state</c> are this serialized, nothing renamed.
/// </summary>
public sealed record FrameReport
{
    // Required members matter to readers, not to writing: without this, System.Text.Json refuses the required,
    // [JsonIgnore]d in-memory members (Choice, Picture, ...) even when it only writes.
    private static readonly JsonSerializerOptions Json = new()
    {
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver
        {
            Modifiers = { info => { foreach (var p in info.Properties) p.IsRequired = false; } },
        },
    };

    /// <summary>The one frame message, as UTF-8 JSON (the overlay's WebSocket and <c>/api/state</c>).</summary>
    public byte[] ToUtf8Json() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    /// <summary>The one frame message, as a JSON line (the record file).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Frame index in the run, from 0 (a lost frame keeps its index).</summary>
    [JsonPropertyName("frame")] public required long Index { get; init; }

    /// <summary>The source's timestamp of the picture, seconds.</summary>
    [JsonPropertyName("captured_s")] public required double CapturedSeconds { get; init; }

    /// <summary>Where the picture came from when the source names it (the file, for image files and folders); null otherwise (see <see cref="CapturedSeconds"/>).</summary>
    [JsonPropertyName("origin")] public string? Origin { get; init; }

    /// <summary>Where the picture came from, for a person: the file, or the capture time.</summary>
    [JsonIgnore] public string OriginText => Origin ?? $"t={CapturedSeconds:F2} s";

    /// <summary>The question being answered.</summary>
    [JsonPropertyName("question")] public required string Question { get; init; }

    /// <summary>The answer so far, trimmed.</summary>
    [JsonPropertyName("answer")] public required string Answer { get; init; }

    /// <summary>The answer is complete.</summary>
    [JsonPropertyName("answer_done")] public required bool AnswerDone { get; init; }

    /// <summary>The answer started again on this frame.</summary>
    [JsonPropertyName("answer_restarted")] public required bool AnswerRestarted { get; init; }

    /// <summary>Answer tokens decoded on this frame.</summary>
    [JsonPropertyName("new_tokens")] public required int NewTokens { get; init; }

    /// <summary>The model's probability of the answer so far (the product of its tokens' probabilities).</summary>
    [JsonPropertyName("confidence")] public double? Confidence { get; init; }

    /// <summary>Whether the picture looks like the scenes a world set knows; null for a set that is not domain-checked (imported sets).</summary>
    [JsonPropertyName("familiar")] public bool? Familiar { get; init; }

    /// <summary>The picture's familiarity score (about 1 for the set's own kind of scene) against the set's threshold; null when not checked.</summary>
    [JsonPropertyName("familiarity")] public double? FamiliarityScore { get; init; }

    /// <summary>The true answer (world questions, on the frame the answer describes, once it is complete); null otherwise.</summary>
    [JsonPropertyName("truth")] public string? Truth { get; init; }

    /// <summary>Whether the answer equals <see cref="Truth"/>; null without a truth.</summary>
    [JsonPropertyName("correct")] public bool? Correct { get; init; }

    /// <summary>Correct answers over scored ones so far; null before the first.</summary>
    [JsonPropertyName("live_accuracy")] public double? LiveAccuracy { get; init; }

    /// <summary>The vision encoder ran.</summary>
    [JsonPropertyName("vision_ran")] public required bool VisionRan { get; init; }

    /// <summary>The query was prefilled.</summary>
    [JsonPropertyName("query_prefilled")] public required bool QueryPrefilled { get; init; }

    /// <summary>The compressor ran.</summary>
    [JsonPropertyName("compressor_ran")] public required bool CompressorRan { get; init; }

    /// <summary>The scene-change metric; null on the first frame.</summary>
    [JsonPropertyName("scene_change")] public float? SceneChange { get; init; }

    /// <summary>Per-stage wall time, ms (<see cref="StageTimings.Name"/> keys).</summary>
    [JsonPropertyName("timings_ms")] public required IReadOnlyDictionary<string, double> StageMs { get; init; }

    /// <summary>
    /// The frame's own work until this report was made, ms: the pipeline's stages and the session's bookkeeping (not
    /// waiting for the source or the pace). The observers run after the report exists, so their time is not in it; it
    /// is in the summary's frame percentiles and in the slow-frame count, which are measured once they have run.
    /// </summary>
    [JsonPropertyName("frame_ms")] public required double FrameMs { get; init; }

    /// <summary>Time inside ONNX Runtime's Run on this frame, ms (the rest of <see cref="FrameMs"/> is the engine's own).</summary>
    [JsonPropertyName("run_ms")] public required double RunMs { get; init; }

    /// <summary>Time spent getting the frame from the source (reading it, or waiting for the capture thread), ms; not part of <see cref="FrameMs"/>.</summary>
    [JsonPropertyName("acquire_ms")] public required double AcquireMs { get; init; }

    /// <summary>Time since the previous frame began, clamped to the session's maximum, ms.</summary>
    [JsonPropertyName("elapsed_ms")] public required double ElapsedMs { get; init; }

    /// <summary>Frames a second over the run so far.</summary>
    [JsonPropertyName("fps")] public required double Fps { get; init; }

    /// <summary>Frames take longer than the target frame time (set and cleared with hysteresis).</summary>
    [JsonPropertyName("running_slowly")] public required bool IsRunningSlowly { get; init; }

    /// <summary>Captured frames dropped so far because a newer one arrived first.</summary>
    [JsonPropertyName("dropped")] public required long Dropped { get; init; }

    /// <summary>The (decoder, compressor, V) that ran; written flat, as <c>decoder</c>, <c>compressor</c> and <c>tokens</c>.</summary>
    [JsonIgnore] public required ModelChoice Choice { get; init; }

    /// <summary>The decoder.</summary>
    [JsonPropertyName("decoder")] public string Decoder => Choice.Decoder;

    /// <summary>The compressor kind.</summary>
    [JsonPropertyName("compressor")] public string Compressor => Choice.Compressor;

    /// <summary>V.</summary>
    [JsonPropertyName("tokens")] public int Tokens => Choice.Tokens;

    /// <summary>FLOPs of this configuration's frame with the query cached.</summary>
    [JsonPropertyName("flops")] public required double Flops { get; init; }

    /// <summary>The budget's FLOPs; null without a budget.</summary>
    [JsonPropertyName("budget_flops")] public double? BudgetFlops { get; init; }

    /// <summary>The controls in force (an observer may show newer ones with <c>report with { Controls = ... }</c>).</summary>
    [JsonPropertyName("controls")] public required SessionControls Controls { get; init; }

    /// <summary>Stage counters over the run so far.</summary>
    [JsonIgnore] public required LoopCounters Counters { get; init; }

    /// <summary>The picture.</summary>
    [JsonIgnore] public required FramePicture Picture { get; init; }

    /// <summary>The picture's width in pixels.</summary>
    [JsonPropertyName("width")] public int Width => Picture.Width;

    /// <summary>The picture's height in pixels.</summary>
    [JsonPropertyName("height")] public int Height => Picture.Height;
}

/// <summary>How a note is meant: information (stdout) or a warning or failure (stderr).</summary>
public enum NoteLevel
{
    /// <summary>What happened, as expected (a new question, a plan).</summary>
    Info,

    /// <summary>Something went wrong and was handled (a lost frame, an ignored control).</summary>
    Warning,
}

/// <summary>
/// A line the session has for its user, outside any frame report. <paramref name="Frame"/> and
/// <paramref name="Error"/> are set when a frame was lost (the record file writes them). <paramref name="Repeat"/>:
/// the same failure as the note before; a console shows only the first, and the count when the run moves on.
/// </summary>
public sealed record SessionNote(NoteLevel Level, string Message, long? Frame = null, string? Error = null, bool Repeat = false);

/// <summary>
/// Watches a live session. Called on the session's thread, in order, inside the frame (a slow observer makes
/// slow frames, which the session reports as running slowly): an observer that does real work hands it to a
/// thread of its own. Must not throw.
/// </summary>
public interface ISessionObserver
{
    /// <summary>One call per frame that ran.</summary>
    void OnFrame(FrameReport report);

    /// <summary>A note for the user.</summary>
    void OnNote(SessionNote note);

    /// <summary>The controls changed (also while paused, when no frame runs).</summary>
    void OnControls(SessionControls controls) { }
}

/// <summary>How a run ended.</summary>
public enum SessionEnd
{
    /// <summary>The frame count or duration was reached, or the source ended.</summary>
    Completed,

    /// <summary>Cancelled (Ctrl+C).</summary>
    Interrupted,

    /// <summary>The source failed under <see cref="SourceErrorPolicy.Stop"/>.</summary>
    SourceFailed,
}

/// <summary>Per-stage p50 and p95 over a run, ms.</summary>
public sealed record StagePercentiles(string Stage, double? P50, double? P95);

/// <summary>What a whole run did, returned when it ends.</summary>
public sealed record SessionSummary(
    SessionEnd End, long Frames, double Seconds, string Source, string Configuration, string Provider,
    (long Published, long Taken, long Dropped)? Capture, LoopCounters Counters,
    StagePercentiles FrameMs, IReadOnlyList<StagePercentiles> Stages, Accuracy? LiveAccuracy, int SlowFrames)
{
    /// <summary>Frames a second over the run.</summary>
    public double Fps => Frames / Math.Max(Seconds, 1e-9);

    /// <summary>The exit code: 0 completed, 130 interrupted, 1 a failed source.</summary>
    public int ExitCode => End switch { SessionEnd.Interrupted => 130, SessionEnd.SourceFailed => 1, _ => 0 };
}
