using System.Diagnostics;
using System.Runtime.CompilerServices;
using Assistant.Capture;
using Assistant.Inference;
using Assistant.Shaders;

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
    long AnswerStartedAt, bool Repetitive);

/// <summary>
/// Counters over a pipeline's life: how often each stage ran against how many frames it served.
/// <paramref name="PrefixPrefills"/>: runs of the text before the image (a chat set's template prefix, a world set's
/// query), each reused by every later frame until the decoder (or, for a world set, the query) changes.
/// </summary>
public sealed record LoopCounters(long Frames, long VisionRuns, long QueryPrefills, long CompressorRuns, long PrefixPrefills = 0);

/// <summary>
/// What runs one frame (ARCHITECTURE.md, "One frame"); the live session's game loop calls it once a frame.
/// Keeps, between frames: the last encoded frame's features (reused while a thumbnail metric says the scene
/// is unchanged), the compressed visual tokens (recomputed only when the frame or the query changed), and a
/// <see cref="Conversation"/> on the set's prompt layout, which caches the text before the image, the query
/// embedding and the constant text around the visual tokens, each per decoder and, where the layout puts the
/// question, per question. No part of this class depends on which layout a set has.
/// Every buffer those caches describe is this pipeline's own: it takes an <see cref="InferenceLease"/> of the
/// set when made and frees it on Dispose, so another pipeline, a calibration or an evaluation on the same set
/// cannot change them. Not thread-safe: one caller at a time; the set must outlive the pipeline.
/// </summary>
public sealed class FramePipeline : IDisposable
{
    private const int ThumbSide = 16;
    private readonly ModelSet _models;
    private readonly InferenceLease _lease;  // lifetime: this pipeline's; disposed with it
    private readonly Conversation _conversation;  // lifetime: this pipeline's; its caches live in the lease's states
    private readonly float[] _thumb = new float[ThumbSide * ThumbSide * 3];
    private readonly float[] _lastThumb = new float[ThumbSide * ThumbSide * 3];
    private readonly float[] _mean, _std;  // the manifest's normalisation, as the preprocessing kernel takes it
    // The frame kernels as graphs on the set's provider (the frame goes there as 8-bit pixels), each used where it
    // measured faster than its C# kernel (ModelSet.FrameGraphUse: the thumbnail everywhere, preprocessing off the
    // CPU); null when neither is. Owned by this pipeline.
    private readonly FrameKernels? _kernels;
    private readonly bool _thumbnailOnGraph, _preprocessOnGraph;
    private bool _haveFeatures;
    private string? _query;
    private CompressorState? _compressedBy;
    private bool _visualTokensValid;
    private long _frames, _visionRuns, _queryPrefills, _compressorRuns;
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
        if (!(sceneChangeThreshold >= 0)) throw new EngineException($"scene-change threshold must be >= 0, got {sceneChangeThreshold}");
        _models = models;
        SceneChangeThreshold = sceneChangeThreshold;
        _mean = [.. models.Vision.Spec.Mean];
        _std = [.. models.Vision.Spec.Std];
        (_thumbnailOnGraph, _preprocessOnGraph) = models.FrameGraphUse;
        _kernels = models.LoadFrameKernels(FrameGraphs.PreprocessGraph, FrameGraphs.ThumbnailGraph);
        _lease = models.Lease();
        _conversation = new Conversation(models);
    }

    /// <summary>The scene-change threshold this pipeline was made with.</summary>
    public double SceneChangeThreshold { get; }

    /// <summary>How often each stage ran so far.</summary>
    public LoopCounters Counters => new(_frames, _visionRuns, _queryPrefills, _compressorRuns, _conversation.PrefixPrefills);

    /// <summary>Time this pipeline spent inside ONNX Runtime's Run (the overhead benchmark divides by it).</summary>
    public TimeSpan RunTime => _lease.RunTime;

    /// <summary>The current query, normalised; null until <see cref="SetQuery"/>.</summary>
    public string? Query => _query;

    /// <summary>The logits of this pipeline's latest decoder run under <paramref name="config"/> (tests compare cached and fresh frames).</summary>
    internal float[] LastLogits(AskConfig config) => DecoderState(config).LastLogits;

    /// <summary>This pipeline's state of the decoder <paramref name="config"/> names (tests count its work).</summary>
    internal DecoderState DecoderState(AskConfig config) => _lease.Decoder(config.Resolve(_models).Decoder);

    /// <summary>
    /// Sets the question; a different one drops the visual tokens, and the conversation remakes what depends on it
    /// (per its layout). Bad text is an <see cref="EngineException"/>.
    /// </summary>
    public void SetQuery(string query)
    {
        var q = WorldQuery.Normalize(AskPipeline.ValidateQuery(query), _models.Manifest.World);
        if (q == _query) return;
        _query = q;
        _conversation.SetQuestion(q);
        _visualTokensValid = false;
    }

    /// <summary>
    /// The next frame is a new picture, whatever its thumbnail says: it is encoded, and what came from the last one is
    /// not reused (an evaluation asks about unrelated scenes through one pipeline, where two may share a thumbnail).
    /// </summary>
    internal void NewPicture()
    {
        _haveFeatures = false;
        _visualTokensValid = false;
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

    /// <summary>Stages 1-4 of a frame (scene gate, vision, query, compressor), each only when its inputs changed.</summary>
    private (DecoderState Model, CompressorState Compressor) Prepare(Frame frame, AskConfig config, StageTimings timings, FrameStats stats)
    {
        if (_query is null) throw new EngineException("no query: ask a question first");
        var (model, comp) = config.Resolve(_models);
        var lm = _lease.Decoder(model);
        var compressor = _lease.Compressor(comp);
        var vision = _lease.Vision;
        var vs = vision.Spec;
        _frames++;

        // 1-2. Scene-change gate on a thumbnail, then preprocessing and the vision encoder only if needed.
        long t = Stopwatch.GetTimestamp();
        if (_thumbnailOnGraph) _kernels!.Thumbnail(frame.Rgb, frame.Width, frame.Height, ThumbSide, _thumb);
        else SceneChange.Thumbnail(frame.Rgb, frame.Width, frame.Height, ThumbSide, _thumb);
        stats.SceneChange = _haveFeatures ? SceneChange.MeanAbsDiff(_thumb, _lastThumb) : float.PositiveInfinity;
        bool encode = !_haveFeatures || stats.SceneChange > SceneChangeThreshold;
        if (encode)
        {
            if (_preprocessOnGraph)
                _kernels!.Preprocess(frame.Rgb, frame.Width, frame.Height, FrameGraphs.Region(frame.Width, frame.Height, vs.Crop == "center"), _mean, _std, vision);
            else
                Preprocess.ResizeNormalize(frame.Rgb, frame.Width, frame.Height, vs.ImageSize, _mean, _std, vision.PixelBuffer, vs.Crop == "center");
        }
        timings.Add(Stage.Preprocess, t);
        if (encode)
        {
            t = Stopwatch.GetTimestamp();
            // Until this encode succeeds the old features describe nothing current: a failure here makes the
            // next frame encode again rather than reuse them.
            _haveFeatures = false;
            _visualTokensValid = false;
            vision.Encode();
            timings.Add(Stage.Vision, t);
            _thumb.CopyTo(_lastThumb, 0);
            _haveFeatures = true;
            _visualTokensValid = false;
            _visionRuns++;
            stats.VisionRan = true;
        }

        // 3. The prompt's text around the image, as the set's layout has it (Conversation): the part before the image
        // prefilled once and reused across frames, the question's part and the query embedding once per question.
        t = Stopwatch.GetTimestamp();
        var turn = _conversation.Prepare(lm);
        if (turn.PrefixPrefilled || turn.QuestionPrepared) timings.Add(Stage.QueryPrefill, t);
        if (turn.QuestionPrepared)
        {
            _visualTokensValid = false;
            timings.QueryTokens = turn.QuestionTokens;
            _queryPrefills++;
            stats.QueryPrefilled = true;
        }

        // 4. The compressor, only when the features, the query or the configuration changed.
        if (!_visualTokensValid || !ReferenceEquals(_compressedBy, compressor))
        {
            t = Stopwatch.GetTimestamp();
            compressor.Compress(vision.Features, vision.FeaturesMulti, vs.Patches, _conversation.QueryEmbedding);
            timings.Add(Stage.Compress, t);
            _compressedBy = compressor;
            _visualTokensValid = true;
            _compressorRuns++;
            stats.CompressorRan = true;
        }
        return (lm, compressor);
    }

    /// <summary>Streams the answer about <paramref name="frame"/> to the current query, reusing whatever is still valid.</summary>
    public async IAsyncEnumerable<AnswerToken> AnswerAsync(Frame frame, AskConfig config, StageTimings timings, FrameStats stats,
        [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var (lm, compressor) = Prepare(frame, config, timings, stats);
        // A state decodes one sequence at a time, so an answer in flight from RunFrame ends here.
        _answer?.Dispose();
        _answer = null;

        // 5. Visual prefill on top of the cached query, then decoding.
        var generation = Generation(config);
        long t = Stopwatch.GetTimestamp();
        var answer = new AnswerDecoder(lm, _models.Tokenizer, VisualPrefill(lm, compressor, generation.MaxNewTokens, timings), generation);
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
        timings.Repetitive = answer.Ending == AnswerEnd.Repetition;
    }

    /// <summary>
    /// The answer's prefill on top of the cached text before the image: the layout's opening markers, the V visual
    /// tokens and what follows them (Conversation.BeginAnswer), then decoding of up to <paramref name="maxNewTokens"/>.
    /// The caller owns the sequence.
    /// </summary>
    private DecodeSequence VisualPrefill(DecoderState lm, CompressorState compressor, int maxNewTokens, StageTimings timings)
    {
        int dim = lm.Spec.Dim, v = compressor.Compressor.Tokens;
        timings.VisualPositions = _conversation.AnswerPositions(v, dim);
        return _conversation.BeginAnswer(lm, compressor.VisualTokens.AsSpan(0, v * dim), maxNewTokens);
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
        var (lm, compressor) = Prepare(frame, config, timings, stats);
        bool restart = _answer is null || _answer.Decoder.Done || stats.QueryPrefilled || !ReferenceEquals(_answer.Model, lm)
                       || !ReferenceEquals(_answer.Compressor, compressor) || (mode == AnswerMode.Live && stats.CompressorRan);
        if (restart)
        {
            var generation = Generation(config);
            long tp = Stopwatch.GetTimestamp();
            _answer?.Dispose();
            _answer = null;
            var sequence = VisualPrefill(lm, compressor, generation.MaxNewTokens, timings);
            _answer = new Answer(lm, compressor, new AnswerDecoder(lm, _models.Tokenizer, sequence, generation), _frames - 1);
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
        return new FrameOutcome(ids, text.ToString(), a.SoFar.ToString(), a.Decoder.Done, restart, a.StartedAt, repetitive);
    }

    /// <summary>Ends the answer in flight, frees the prefix cache and the lease.</summary>
    public void Dispose()
    {
        _answer?.Dispose();
        _answer = null;
        _conversation.Dispose();
        _lease.Dispose();
        _kernels?.Dispose();
    }
}
