using System.Text.Json.Serialization;

namespace Assistant.Engine;

/// <summary>What the live session does when its source fails.</summary>
public enum SourceErrorPolicy
{
    /// <summary>End the run cleanly (exit 1).</summary>
    Stop,

    /// <summary>Log the failure, lose the frame, and go on.</summary>
    Skip,
}

/// <summary>
/// Everything a live session is configured with, in one record (STYLE.md habit 7): typed defaults in
/// <see cref="Default"/>, the command line's overrides on top, and the effective record written as the first
/// line of every recording. <see cref="Validate"/> rejects what cannot run, each with one line.
/// </summary>
public sealed record LiveSessionOptions
{
    /// <summary>The defaults: the world's test split, 500 frames, live mode, the manifest's configuration.</summary>
    public static LiveSessionOptions Default { get; } = new();

    /// <summary>The source spec (<see cref="FrameSources.Syntax"/>).</summary>
    [JsonPropertyName("source")] public string Source { get; init; } = "world";

    /// <summary>Folder or video: start again at the beginning instead of ending.</summary>
    [JsonPropertyName("loop_source")] public bool LoopSource { get; init; }

    /// <summary>World object speed, canvas units per frame.</summary>
    [JsonPropertyName("world_speed")] public double WorldSpeed { get; init; } = 0.004;

    /// <summary>A fixed question; null on the world: its own questions, scored per frame.</summary>
    [JsonPropertyName("query")] public string? Query { get; init; }

    /// <summary>Frames to run; null: until the duration, the source's end or cancellation.</summary>
    [JsonPropertyName("frames")] public long? Frames { get; init; } = 500;

    /// <summary>Seconds to run; null: no time limit.</summary>
    [JsonPropertyName("duration_s")] public double? DurationSeconds { get; init; }

    /// <summary>Frames per world question.</summary>
    [JsonPropertyName("question_every")] public int QuestionEvery { get; init; } = 50;

    /// <summary>A decoder forced by name (null: the manifest's or the planner's).</summary>
    [JsonPropertyName("decoder")] public string? Decoder { get; init; }

    /// <summary>A compressor kind forced (null: the manifest's or the planner's); set for the whole session.</summary>
    [JsonPropertyName("compressor")] public string? Compressor { get; init; }

    /// <summary>A visual-token count forced (null: the manifest's or the planner's).</summary>
    [JsonPropertyName("tokens")] public int? Tokens { get; init; }

    /// <summary>Per-answer latency budget: the planner picks decoder and V (null: no budget).</summary>
    [JsonPropertyName("latency_ms")] public double? LatencyMs { get; init; }

    /// <summary>Answer tokens decoded per frame at most (null: what the budget leaves room for, else 64).</summary>
    [JsonPropertyName("tokens_per_frame")] public int? TokensPerFrame { get; init; }

    /// <summary>How answers are decoded: at most 8 tokens, greedy, stopping where the set says.</summary>
    [JsonPropertyName("answer")] public AnswerOptions Answer { get; init; } = new(8);

    /// <summary>What a changed picture does to the answer in flight.</summary>
    [JsonPropertyName("mode")] public AnswerMode Mode { get; init; } = AnswerMode.Live;

    /// <summary>Capture on a thread of its own at this rate; the loop takes the newest frame (null: read on the loop's thread).</summary>
    [JsonPropertyName("realtime_fps")] public double? RealtimeFps { get; init; }

    /// <summary>Pace the loop to this many frames a second (a frame that ends early waits; null: the capture rate, else as fast as it runs).</summary>
    [JsonPropertyName("target_fps")] public double? TargetFps { get; init; }

    /// <summary>Longest elapsed time one frame may account for (a pause or a stall beyond it is not caught up).</summary>
    [JsonPropertyName("max_elapsed_ms")] public double MaxElapsedMs { get; init; } = 500;

    /// <summary>What a failing source does to the run.</summary>
    [JsonPropertyName("on_source_error")] public SourceErrorPolicy OnSourceError { get; init; } = SourceErrorPolicy.Stop;

    /// <summary>The frame time the loop is held to, when there is one: the target rate, else the latency budget, else the capture period.</summary>
    [JsonIgnore]
    public TimeSpan? TargetFrameTime =>
        TargetFps is { } fps ? TimeSpan.FromSeconds(1 / fps)
        : LatencyMs is { } ms ? TimeSpan.FromMilliseconds(ms)
        : RealtimeFps is { } capture ? TimeSpan.FromSeconds(1 / capture)
        : null;

    /// <summary>Checks every value; the first bad one is an <see cref="EngineException"/> naming its option.</summary>
    public LiveSessionOptions Validate()
    {
        if (Frames is < 1) throw new EngineException($"--frames must be at least 1, got {Frames}");
        if (DurationSeconds is { } d && !(d > 0 && d <= 7 * 24 * 3600)) throw new EngineException($"--duration must be in (0, 604800] seconds, got {d}");
        if (QuestionEvery < 1) throw new EngineException($"--question-every must be at least 1, got {QuestionEvery}");
        if (TokensPerFrame is < 1) throw new EngineException($"--tokens-per-frame must be at least 1, got {TokensPerFrame}");
        Answer.Validate();
        if (RealtimeFps is { } r && !(r > 0 && r <= 1000)) throw new EngineException($"--realtime-fps must be in (0, 1000], got {r}");
        if (TargetFps is { } t && !(t > 0 && t <= 1000)) throw new EngineException($"--target-fps must be in (0, 1000], got {t}");
        if (!(MaxElapsedMs > 0)) throw new EngineException($"the elapsed-time clamp must be positive, got {MaxElapsedMs}");
        if (LatencyMs is { } l && !(l > 0)) throw new EngineException($"--latency-ms must be positive, got {l}");
        if (LatencyMs is not null && (Decoder is not null || Tokens is not null))
            throw new EngineException("--latency-ms chooses the decoder and V itself: drop --decoder/--tokens, or the budget");
        if (!double.IsFinite(WorldSpeed) || WorldSpeed < 0) throw new EngineException($"--speed must be a finite number >= 0, got {WorldSpeed}");
        return this;
    }
}

/// <summary>
/// The settings that can change while a session runs (the overlay's controls). Null decoder or V: "auto",
/// chosen by the budget through the planner, else the manifest's default.
/// </summary>
public sealed record SessionControls(
    [property: JsonPropertyName("latency_ms")] double? LatencyMs,
    [property: JsonPropertyName("decoder")] string? Decoder,
    [property: JsonPropertyName("tokens")] int? Tokens,
    [property: JsonPropertyName("mode")] string Mode,
    [property: JsonPropertyName("paused")] bool Paused);
