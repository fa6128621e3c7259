using System.Diagnostics;
using System.Runtime.CompilerServices;
using Assistant.Capture;
using Assistant.Inference;
using Assistant.Shaders;

namespace Assistant.Engine;

/// <summary>What happened on one frame: which stages ran and which were served from a cache.</summary>
public sealed class FrameStats
{
    public bool VisionRan { get; internal set; }
    public bool QueryPrefilled { get; internal set; }
    public bool CompressorRan { get; internal set; }
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

/// <summary>One frame of <see cref="FrameLoop.Step"/>: the tokens decoded on it and the answer so far.</summary>
public sealed record FrameStep(IReadOnlyList<GeneratedToken> Tokens, string AnswerSoFar, bool AnswerDone, bool AnswerRestarted, long AnswerStartedAt);

/// <summary>Counters over a loop's life: how often each stage ran against how many frames it served.</summary>
public sealed record LoopCounters(long Frames, long VisionRuns, long QueryPrefills, long CompressorRuns);

/// <summary>
/// The per-frame core of the engine (ARCHITECTURE.md, "One frame"). Keeps, between frames: the last encoded
/// frame's features (reused while a thumbnail metric says the scene is unchanged), the query's KV cache and
/// QueCC query embedding (computed once per query), and the compressed visual tokens (recomputed only when
/// the frame or the query changed). Each frame then prefills only the V + 2 visual positions on top of the
/// cached query and decodes the answer. Not thread-safe; one loop per model set at a time.
/// </summary>
public sealed class FrameLoop : IDisposable
{
    private const int ThumbSide = 16;
    private readonly ModelSet _models;
    private readonly float[] _thumb = new float[ThumbSide * ThumbSide * 3];
    private readonly float[] _lastThumb = new float[ThumbSide * ThumbSide * 3];
    private readonly float[] _mean, _std;  // the manifest's normalisation, as the preprocessing kernel takes it
    private bool _haveFeatures;
    private string? _query;
    private LanguageModel? _queryModel;
    private KvCache? _queryCache;
    private float[] _queryEmbedding = [];
    private Compressor? _compressedBy;
    private bool _visualTokensValid;
    private float[] _embeds = [];
    private long _frames, _visionRuns, _queryPrefills, _compressorRuns;
    private Answer? _answer;

    /// <summary>An answer being decoded across frames: the decoder continuing it, and what it was started with.</summary>
    private sealed class Answer(LanguageModel model, Compressor compressor, AnswerDecoder decoder, long startedAt) : IDisposable
    {
        public LanguageModel Model { get; } = model;
        public Compressor Compressor { get; } = compressor;
        public AnswerDecoder Decoder { get; } = decoder;
        public System.Text.StringBuilder SoFar { get; } = new();
        public long StartedAt { get; } = startedAt;
        public void Dispose() => Decoder.Dispose();
    }

    /// <param name="sceneChangeThreshold">Mean absolute thumbnail difference (0..255) above which the vision encoder runs again.</param>
    public FrameLoop(ModelSet models, double sceneChangeThreshold = 1.0)
    {
        if (!(sceneChangeThreshold >= 0)) throw new EngineException($"scene-change threshold must be >= 0, got {sceneChangeThreshold}");
        _models = models;
        SceneChangeThreshold = sceneChangeThreshold;
        _mean = [.. models.Vision.Spec.Mean];
        _std = [.. models.Vision.Spec.Std];
    }

    public double SceneChangeThreshold { get; }

    public LoopCounters Counters => new(_frames, _visionRuns, _queryPrefills, _compressorRuns);

    /// <summary>The current query; setting a different one drops the query cache and the visual tokens.</summary>
    public string? Query => _query;

    public void SetQuery(string query)
    {
        var q = WorldQuery.Normalize(AskPipeline.ValidateQuery(query), _models.Manifest.World);
        if (q == _query) return;
        _query = q;
        _queryCache?.Dispose();
        _queryCache = null;
        _queryModel = null;
        _visualTokensValid = false;
    }

    /// <summary>Stages 1-4 of a frame (scene gate, vision, query, compressor), each only when its inputs changed.</summary>
    private (LanguageModel Model, Compressor Compressor) Prepare(Frame frame, AskConfig config, StageTimings timings, FrameStats stats)
    {
        if (_query is null) throw new EngineException("no query: ask a question first");
        var (lm, compressor) = config.Resolve(_models);
        var vision = _models.Vision;
        var vs = vision.Spec;
        var tok = _models.Tokenizer;
        var prompt = _models.Manifest.Prompt;
        _frames++;

        // 1-2. Scene-change gate on a thumbnail, then preprocessing and the vision encoder only if needed.
        long t = Stopwatch.GetTimestamp();
        SceneChange.Thumbnail(frame.Rgb, frame.Width, frame.Height, ThumbSide, _thumb);
        stats.SceneChange = _haveFeatures ? SceneChange.MeanAbsDiff(_thumb, _lastThumb) : float.PositiveInfinity;
        bool encode = !_haveFeatures || stats.SceneChange > SceneChangeThreshold;
        if (encode)
        {
            Preprocess.ResizeNormalize(frame.Rgb, frame.Width, frame.Height, vs.ImageSize, _mean, _std, vision.PixelBuffer);
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

        // 3. The query: prefilled once per (query, decoder); its cache and embedding are reused across frames.
        if (_queryCache is null || !ReferenceEquals(_queryModel, lm))
        {
            t = Stopwatch.GetTimestamp();
            int[] ids = [tok.SpecialId(prompt.QueryStart), .. tok.Encode(_query)];
            Grow(ids.Length * lm.Spec.Dim);
            lm.Embed(ids, _embeds);
            _queryCache?.Dispose();
            using (var empty = lm.EmptyCache())
                _queryCache = lm.Forward(empty, _embeds, ids.Length);
            _queryEmbedding = lm.LastHidden.ToArray();
            _queryModel = lm;
            _visualTokensValid = false;
            timings.QueryTokens = ids.Length;
            timings.Add(Stage.QueryPrefill, t);
            _queryPrefills++;
            stats.QueryPrefilled = true;
        }

        // 4. The compressor, only when the features, the query or the configuration changed.
        if (!_visualTokensValid || !ReferenceEquals(_compressedBy, compressor))
        {
            t = Stopwatch.GetTimestamp();
            compressor.Compress(vision.Features, vision.FeaturesMulti, vs.Patches, _queryEmbedding);
            timings.Add(Stage.Compress, t);
            _compressedBy = compressor;
            _visualTokensValid = true;
            _compressorRuns++;
            stats.CompressorRan = true;
        }
        return (lm, compressor);
    }

    /// <summary>Streams the answer about <paramref name="frame"/> to the current query, reusing whatever is still valid.</summary>
    public async IAsyncEnumerable<GeneratedToken> AnswerAsync(Frame frame, AskConfig config, StageTimings timings, FrameStats stats,
        [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var (lm, compressor) = Prepare(frame, config, timings, stats);
        var tok = _models.Tokenizer;
        var prompt = _models.Manifest.Prompt;
        // A model decodes one sequence at a time, so an answer in flight from Step ends here.
        _answer?.Dispose();
        _answer = null;

        // 5. Visual prefill on top of the cached query, then decoding.
        var generation = config.Generation ?? GenerationOptions.Default;
        if (generation.StopTokens is null)
            generation = generation with { StopTokens = prompt.Stop.Select(tok.SpecialId).ToArray() };
        long t = Stopwatch.GetTimestamp();
        var answer = new AnswerDecoder(lm, tok, VisualPrefill(lm, compressor, generation.MaxNewTokens, timings), generation);
        timings.Add(Stage.VisualPrefill, t);
        t = Stopwatch.GetTimestamp();
        await foreach (var token in Generator.StreamAsync(() => answer, cancellation))
        {
            timings.DecodedTokens++;
            timings.Add(Stage.Decode, t);
            yield return token;
            t = Stopwatch.GetTimestamp();  // time spent by the consumer is not decode time
        }
        timings.Add(Stage.Decode, t);
    }

    /// <summary>
    /// [vision_start][V visual tokens][vision_end] on top of the cached query, then decoding of up to
    /// <paramref name="maxNewTokens"/> after it; the caller owns the sequence.
    /// </summary>
    private DecodeSequence VisualPrefill(LanguageModel lm, Compressor compressor, int maxNewTokens, StageTimings timings)
    {
        var tok = _models.Tokenizer;
        var prompt = _models.Manifest.Prompt;
        int dim = lm.Spec.Dim, v = compressor.Tokens;
        Grow((v + 2) * dim);
        lm.Embed([tok.SpecialId(prompt.VisionStart)], _embeds.AsSpan(0, dim));
        compressor.VisualTokens.AsSpan(0, v * dim).CopyTo(_embeds.AsSpan(dim));
        lm.Embed([tok.SpecialId(prompt.VisionEnd)], _embeds.AsSpan((v + 1) * dim, dim));
        timings.VisualPositions = v + 2;
        return lm.BeginDecode(_queryCache!, _embeds, v + 2, maxNewTokens);
    }

    /// <summary>
    /// One frame of a live answer: stages 1-4 as needed, then at most <paramref name="maxTokens"/> answer tokens.
    /// The answer is restarted on this frame when none is in flight, when the query or configuration changed, when
    /// the last one finished, or (live mode) when the picture changed; otherwise decoding continues where it stopped.
    /// </summary>
    public FrameStep Step(Frame frame, AskConfig config, int maxTokens, AnswerMode mode, StageTimings timings, FrameStats stats,
        CancellationToken cancellation = default)
    {
        if (maxTokens < 1) throw new EngineException($"tokens per frame must be at least 1, got {maxTokens}");
        var (lm, compressor) = Prepare(frame, config, timings, stats);
        var generation = config.Generation ?? GenerationOptions.Default;
        var stop = generation.StopTokens ?? _models.Manifest.Prompt.Stop.Select(_models.Tokenizer.SpecialId).ToArray();
        bool restart = _answer is null || _answer.Decoder.Done || stats.QueryPrefilled || !ReferenceEquals(_answer.Model, lm)
                       || !ReferenceEquals(_answer.Compressor, compressor) || (mode == AnswerMode.Live && stats.CompressorRan);
        if (restart)
        {
            long tp = Stopwatch.GetTimestamp();
            _answer?.Dispose();
            _answer = null;
            var sequence = VisualPrefill(lm, compressor, generation.MaxNewTokens, timings);
            _answer = new Answer(lm, compressor, new AnswerDecoder(lm, _models.Tokenizer, sequence, generation with { StopTokens = stop }), _frames - 1);
            timings.Add(Stage.VisualPrefill, tp);
        }
        var a = _answer!;
        var tokens = new List<GeneratedToken>();
        long t = Stopwatch.GetTimestamp();
        while (tokens.Count < maxTokens)
        {
            cancellation.ThrowIfCancellationRequested();
            if (!a.Decoder.TryNext(out var token)) break;
            tokens.Add(token);
            a.SoFar.Append(token.Text);
        }
        timings.DecodedTokens += tokens.Count;
        timings.Add(Stage.Decode, t);
        return new FrameStep(tokens, a.SoFar.ToString(), a.Decoder.Done, restart, a.StartedAt);
    }

    private void Grow(int floats)
    {
        if (_embeds.Length < floats) _embeds = new float[Math.Max(floats, 2 * _embeds.Length)];
    }

    public void Dispose()
    {
        _answer?.Dispose();
        _answer = null;
        _queryCache?.Dispose();
        _queryCache = null;
    }
}
