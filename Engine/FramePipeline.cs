using System.Diagnostics;
using System.Runtime.CompilerServices;
using Assistant.Capture;
using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>
/// What runs one frame (ARCHITECTURE.md, "One frame"); the live session's game loop calls it once a frame. Keeps
/// the scene gate (a 16x16 thumbnail against the last encoded frame's: a new picture is preprocessed only when it
/// changed) and the answer policy (continue the answer in flight, restart it in live mode when the picture changed,
/// let it finish in snapshot mode); everything a model caches between frames (features, the prompt's text, the
/// query embedding, the visual tokens) is its <see cref="Conversation"/>'s, made per the set's prompt layout. No part
/// of this class depends on which model kind or layout a set has. The conversation holds this pipeline's own
/// <see cref="InferenceLease"/>, so another pipeline, a calibration or an evaluation on the same set cannot change
/// what it cached. Not thread-safe: one caller at a time; the set must outlive the pipeline.
/// </summary>
public sealed class FramePipeline : IDisposable
{
    private readonly ModelSet _models;
    private readonly Conversation _conversation;  // lifetime: this pipeline's (with its lease)
    private readonly SceneGate _gate;  // lifetime: this pipeline's (with its frame kernels)
    private string? _query;
    private long _frames;
    private Answer? _answer;
    private (AnswerOptions Options, GenerationOptions Generation)? _generation;

    /// <summary>An answer being decoded across frames: the state continuing it, and what it was started with.</summary>
    private sealed class Answer(DecoderState model, CompressorState compressor, AnswerDecoder decoder, long startedAt) : IDisposable
    {
        public DecoderState Model { get; } = model;
        public CompressorState Compressor { get; } = compressor;
        public AnswerDecoder Decoder { get; } = decoder;
        public System.Text.StringBuilder SoFar { get; } = new();
        public long StartedAt { get; } = startedAt;
        public void Dispose() => Decoder.Dispose();
    }

    /// <param name="models">The set; its sessions are shared, its mutable state is leased for this pipeline alone.</param>
    /// <param name="sceneChangeThreshold">Mean absolute thumbnail difference (0..255) above which the vision encoder runs again.</param>
    public FramePipeline(ModelSet models, double sceneChangeThreshold = 1.0)
    {
        _models = models;
        _gate = new SceneGate(models, sceneChangeThreshold);
        _conversation = new Conversation(models);
    }

    /// <summary>The scene-change threshold this pipeline was made with.</summary>
    public double SceneChangeThreshold => _gate.Threshold;

    /// <summary>How often each stage ran so far.</summary>
    public LoopCounters Counters =>
        new(_frames, _conversation.Runs.Vision, _conversation.Runs.Questions, _conversation.Runs.Compressor, _conversation.PrefixPrefills);

    /// <summary>Time this pipeline spent inside ONNX Runtime's Run (the overhead benchmark divides by it).</summary>
    public TimeSpan RunTime => _conversation.RunTime;

    /// <summary>The current query, normalised; null until <see cref="SetQuery"/>.</summary>
    public string? Query => _query;

    /// <summary>The logits of this pipeline's latest decoder run under <paramref name="config"/> (tests compare cached and fresh frames).</summary>
    internal float[] LastLogits(AskConfig config) => DecoderState(config).LastLogits;

    /// <summary>This pipeline's state of the decoder <paramref name="config"/> names (tests count its work).</summary>
    internal DecoderState DecoderState(AskConfig config) => _conversation.Decoder(config.Resolve(_models).Decoder);

    /// <summary>Sets the question; the conversation remakes what depends on it. Bad text is an <see cref="EngineException"/>.</summary>
    public void SetQuery(string query)
    {
        var q = WorldQuery.Normalize(AskPipeline.ValidateQuery(query), _models.Manifest.World);
        if (q == _query) return;
        _query = q;
        _conversation.SetQuestion(q);
    }

    /// <summary>
    /// The next frame is a new picture, whatever its thumbnail says: it is encoded, and what came from the last one is
    /// not reused (an evaluation asks about unrelated scenes through one pipeline, where two may share a thumbnail).
    /// </summary>
    internal void NewPicture()
    {
        _conversation.PictureChanged();
        _answer?.Dispose();
        _answer = null;
    }

    private GenerationOptions Generation(AskConfig config)
    {
        var options = config.Answer ?? AnswerOptions.Default;
        if (_generation is not { } g || g.Options != options)
            _generation = g = (options, options.ToGeneration(_models));
        return g.Generation;
    }

    /// <summary>The scene gate and a changed picture's preprocessing, then the conversation's stale links (vision, text, compressor).</summary>
    private TurnWork Prepare(Frame frame, AskConfig config, StageTimings timings, FrameStats stats)
    {
        if (_query is null) throw new EngineException("no query: ask a question first");
        var (model, compressor) = config.Resolve(_models);
        _frames++;
        long t = Stopwatch.GetTimestamp();
        if (_gate.Changed(frame, _conversation.HasFeatures, out var change))
        {
            _gate.Preprocess(frame, _conversation.Vision);
            _conversation.PictureChanged();
        }
        stats.SceneChange = change;
        timings.Add(Stage.Preprocess, t);
        var turn = _conversation.Prepare(model, compressor);
        timings.Familiarity = stats.Familiarity = _conversation.FamiliarityScore is { } score ? new(score, _models.Manifest.Domain!.Threshold) : null;
        if (turn.VisionRan)
        {
            _gate.Encoded();
            timings.AddTicks(Stage.Vision, turn.VisionTicks);
        }
        if (turn.PrefixPrefilled || turn.QuestionPrepared) timings.AddTicks(Stage.QueryPrefill, turn.TextTicks);
        if (turn.QuestionPrepared) timings.QueryTokens = turn.QuestionTokens;
        if (turn.CompressorRan) timings.AddTicks(Stage.Compress, turn.CompressTicks);
        (stats.VisionRan, stats.QueryPrefilled, stats.CompressorRan) = (turn.VisionRan, turn.QuestionPrepared, turn.CompressorRan);
        return turn;
    }

    /// <summary>Streams the answer about <paramref name="frame"/> to the current query, reusing whatever is still valid.</summary>
    public async IAsyncEnumerable<AnswerToken> AnswerAsync(Frame frame, AskConfig config, StageTimings timings, FrameStats stats,
        [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var turn = Prepare(frame, config, timings, stats);
        // A state decodes one sequence at a time, so an answer in flight from RunFrame ends here.
        _answer?.Dispose();
        _answer = null;
        var generation = Generation(config);
        long t = Stopwatch.GetTimestamp();
        timings.VisualPositions = _conversation.AnswerPositions;
        timings.PromptTokens = _conversation.PromptPositions;
        var answer = new AnswerDecoder(turn.Decoder, _models.Tokenizer, _conversation.BeginAnswer(generation.MaxNewTokens), generation);
        timings.Add(Stage.VisualPrefill, t);
        t = Stopwatch.GetTimestamp();
        await foreach (var token in Generator.StreamAsync(() => answer, cancellation))
        {
            timings.DecodedTokens++;
            timings.Add(Stage.Decode, t);
            yield return new AnswerToken(token.Id, token.Text);
            t = Stopwatch.GetTimestamp();  // time spent by the consumer is not decode time
        }
        timings.Add(Stage.Decode, t);
        (timings.Repetitive, timings.ReachedTokenLimit, timings.Confidence) = (answer.Ending == AnswerEnd.Repetition, answer.Ending == AnswerEnd.TokenLimit, answer.Confidence);
    }

    /// <summary>
    /// One frame of a live answer: stages 1-4 as needed, then at most <paramref name="maxTokens"/> answer tokens.
    /// The answer is restarted on this frame when none is in flight, when the query or configuration changed, when
    /// the last one finished, or (live mode) when the picture changed; otherwise decoding continues where it stopped.
    /// </summary>
    public FrameOutcome RunFrame(Frame frame, AskConfig config, int maxTokens, AnswerMode mode, StageTimings timings, FrameStats stats,
        CancellationToken cancellation = default)
    {
        if (maxTokens < 1) throw new EngineException($"tokens per frame must be at least 1, got {maxTokens}");
        var turn = Prepare(frame, config, timings, stats);
        bool restart = _answer is null || _answer.Decoder.Done || stats.QueryPrefilled || !ReferenceEquals(_answer.Model, turn.Decoder)
                       || !ReferenceEquals(_answer.Compressor, turn.Compressor) || (mode == AnswerMode.Live && stats.CompressorRan);
        if (restart)
        {
            var generation = Generation(config);
            long tp = Stopwatch.GetTimestamp();
            _answer?.Dispose();
            _answer = null;
            timings.VisualPositions = _conversation.AnswerPositions;
            var sequence = _conversation.BeginAnswer(generation.MaxNewTokens);
            _answer = new Answer(turn.Decoder, turn.Compressor, new AnswerDecoder(turn.Decoder, _models.Tokenizer, sequence, generation), _frames - 1);
            timings.Add(Stage.VisualPrefill, tp);
        }
        var a = _answer!;
        var ids = new List<int>();
        var text = new System.Text.StringBuilder();
        long t = Stopwatch.GetTimestamp();
        while (ids.Count < maxTokens)
        {
            cancellation.ThrowIfCancellationRequested();
            if (!a.Decoder.TryNext(out var token)) break;
            ids.Add(token.Id);
            text.Append(token.Text);
        }
        a.SoFar.Append(text);
        timings.DecodedTokens += ids.Count;
        timings.Add(Stage.Decode, t);
        bool repetitive = a.Decoder.Ending == AnswerEnd.Repetition;
        timings.Repetitive = repetitive;
        return new FrameOutcome(ids, text.ToString(), a.SoFar.ToString(), a.Decoder.Done, restart, a.StartedAt, repetitive, a.Decoder.Confidence);
    }

    /// <summary>Ends the answer in flight, frees the conversation (its caches and lease) and the frame kernels.</summary>
    public void Dispose()
    {
        _answer?.Dispose();
        _answer = null;
        _conversation.Dispose();
        _gate.Dispose();
    }
}
