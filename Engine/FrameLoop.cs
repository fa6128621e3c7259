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
    private bool _haveFeatures;
    private string? _query;
    private LanguageModel? _queryModel;
    private KvCache? _queryCache;
    private float[] _queryEmbedding = [];
    private Compressor? _compressedBy;
    private bool _visualTokensValid;
    private float[] _embeds = [];
    private long _frames, _visionRuns, _queryPrefills, _compressorRuns;

    /// <param name="sceneChangeThreshold">Mean absolute thumbnail difference (0..255) above which the vision encoder runs again.</param>
    public FrameLoop(ModelSet models, double sceneChangeThreshold = 1.0)
    {
        if (!(sceneChangeThreshold >= 0)) throw new EngineException($"scene-change threshold must be >= 0, got {sceneChangeThreshold}");
        _models = models;
        SceneChangeThreshold = sceneChangeThreshold;
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

    /// <summary>Streams the answer about <paramref name="frame"/> to the current query, reusing whatever is still valid.</summary>
    public async IAsyncEnumerable<GeneratedToken> AnswerAsync(Frame frame, AskConfig config, StageTimings timings, FrameStats stats,
        [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        if (_query is null) throw new EngineException("no query: ask a question first");
        var d = _models.Manifest.Default;
        var lm = _models.Decoder(config.Decoder ?? d.Decoder);
        var compressor = lm.Compressor(config.Compressor ?? d.Compressor, config.Tokens ?? d.Tokens);
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
            Preprocess.ResizeNormalize(frame.Rgb, frame.Width, frame.Height, vs.ImageSize, vs.Mean.ToArray(), vs.Std.ToArray(), vision.PixelBuffer);
            _thumb.CopyTo(_lastThumb, 0);
        }
        timings.Add(Stage.Preprocess, t);
        if (encode)
        {
            t = Stopwatch.GetTimestamp();
            vision.Encode();
            timings.Add(Stage.Vision, t);
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

        // 5. Visual prefill on top of the cached query, then decoding.
        t = Stopwatch.GetTimestamp();
        int dim = lm.Spec.Dim, v = compressor.Tokens;
        Grow((v + 2) * dim);
        lm.Embed([tok.SpecialId(prompt.VisionStart)], _embeds.AsSpan(0, dim));
        compressor.VisualTokens.AsSpan(0, v * dim).CopyTo(_embeds.AsSpan(dim));
        lm.Embed([tok.SpecialId(prompt.VisionEnd)], _embeds.AsSpan((v + 1) * dim, dim));
        using var visualCache = lm.Forward(_queryCache!, _embeds, v + 2);
        timings.VisualPositions = v + 2;
        timings.Add(Stage.VisualPrefill, t);

        var generation = config.Generation ?? GenerationOptions.Default;
        if (generation.StopTokens is null)
            generation = generation with { StopTokens = prompt.Stop.Select(tok.SpecialId).ToArray() };
        t = Stopwatch.GetTimestamp();
        await foreach (var token in Generator.GenerateAsync(lm, tok, visualCache, generation, cancellation))
        {
            timings.DecodedTokens++;
            timings.Add(Stage.Decode, t);
            yield return token;
            t = Stopwatch.GetTimestamp();  // time spent by the consumer is not decode time
        }
        timings.Add(Stage.Decode, t);
    }

    private void Grow(int floats)
    {
        if (_embeds.Length < floats) _embeds = new float[Math.Max(floats, 2 * _embeds.Length)];
    }

    public void Dispose()
    {
        _queryCache?.Dispose();
        _queryCache = null;
    }
}
