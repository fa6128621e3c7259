using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>What a warm pipeline reused for one answer, and how often each stage ran on it so far.</summary>
/// <param name="Pipeline">Which of the pool's pipelines answered (0-based).</param>
/// <param name="PictureCached">The picture was the one this pipeline saw last (same bytes): its features were reused.</param>
/// <param name="VisionRan">The vision encoder ran for this answer.</param>
/// <param name="QuestionPrepared">The question's text was prepared (embedded or prefilled) for this answer; false: reused.</param>
/// <param name="CompressorRan">The compressor ran for this answer.</param>
/// <param name="Counters">The pipeline's counters after this answer.</param>
public sealed record PoolAnswerStats(int Pipeline, bool PictureCached, bool VisionRan, bool QuestionPrepared, bool CompressorRan, LoopCounters Counters);

/// <summary>
/// N warm pipelines over one loaded set, for a server: each is a <see cref="FramePipeline"/> with its own lease, so N
/// requests are answered at once and each keeps what it cached (the picture's features, the question's text, the
/// visual tokens) for the next request it serves. A request goes to the free pipeline that saw its picture last
/// (by SHA-256 of the encoded bytes) when there is one. At most <see cref="Queue"/> requests wait beyond the N being
/// answered; one more is refused at once (<see cref="TryEnterAsync"/> returns null), never queued without bound.
/// Thread-safe. The set must outlive the pool.
/// </summary>
public sealed class AnswerPool : IDisposable
{
    private readonly ModelSet _models;
    private readonly Slot[] _slots;
    private readonly SemaphoreSlim _free;
    private readonly Lock _gate = new();
    private int _admitted;  // being answered or waiting; guarded by _gate

    /// <summary>One warm pipeline and the hash of the picture it holds.</summary>
    internal sealed class Slot(int index, FramePipeline pipeline)
    {
        public int Index { get; } = index;
        public FramePipeline Pipeline { get; } = pipeline;
        public string? PictureHash { get; set; }
        public bool Busy { get; set; }
    }

    /// <param name="models">The loaded set (it must outlive the pool).</param>
    /// <param name="pipelines">Requests answered at once, 1..64 (each a lease: its own buffers and caches).</param>
    /// <param name="queue">Requests that may wait for a pipeline, 0..4096; more are refused.</param>
    public AnswerPool(LoadedModels models, int pipelines, int queue)
    {
        if (pipelines is < 1 or > 64) throw new EngineException($"--pipelines must be in 1..64, got {pipelines}");
        if (queue is < 0 or > 4096) throw new EngineException($"--queue must be in 0..4096, got {queue}");
        _models = models.Set;
        _slots = new Slot[pipelines];
        for (int i = 0; i < pipelines; i++) _slots[i] = new Slot(i, new FramePipeline(_models, sceneChangeThreshold: 0));
        _free = new SemaphoreSlim(pipelines, pipelines);
        Queue = queue;
    }

    /// <summary>Requests answered at once.</summary>
    public int Pipelines => _slots.Length;

    /// <summary>Requests that may wait beyond those.</summary>
    public int Queue { get; }

    /// <summary>Requests being answered or waiting now.</summary>
    public int Admitted
    {
        get { lock (_gate) return _admitted; }
    }

    /// <summary>The hash a picture is cached by: SHA-256 of its encoded bytes, hex.</summary>
    public static string PictureHash(ReadOnlySpan<byte> encoded) => Convert.ToHexStringLower(SHA256.HashData(encoded));

    /// <summary>
    /// Waits for a pipeline, preferring the free one that holds <paramref name="pictureHash"/>; null at once when
    /// <see cref="Pipelines"/> + <see cref="Queue"/> requests are already admitted. Dispose the ticket to give it back.
    /// </summary>
    public async Task<Ticket?> TryEnterAsync(string pictureHash, CancellationToken cancellation)
    {
        lock (_gate)
        {
            if (_admitted >= _slots.Length + Queue) return null;
            _admitted++;
        }
        try
        {
            await _free.WaitAsync(cancellation);
        }
        catch
        {
            lock (_gate) _admitted--;
            throw;
        }
        lock (_gate)
        {
            var slot = _slots.FirstOrDefault(s => !s.Busy && s.PictureHash == pictureHash) ?? _slots.First(s => !s.Busy);
            slot.Busy = true;
            return new Ticket(this, slot);
        }
    }

    private void Return(Slot slot)
    {
        lock (_gate)
        {
            slot.Busy = false;
            _admitted--;
        }
        _free.Release();
    }

    /// <summary>One admitted request's hold on one pipeline; disposing it gives the pipeline back.</summary>
    public sealed class Ticket : IDisposable
    {
        private readonly AnswerPool _pool;
        private readonly Slot _slot;
        private bool _returned;

        internal Ticket(AnswerPool pool, Slot slot) => (_pool, _slot) = (pool, slot);

        /// <summary>Checks <paramref name="config"/> on the set: an unknown decoder, compressor or V is an error before any model runs.</summary>
        public ModelChoice Resolve(AskConfig config) => config.Choice(_pool._models);

        /// <summary>
        /// Streams the answer to <paramref name="query"/> about <paramref name="picture"/> (whose encoded bytes hash to
        /// <paramref name="pictureHash"/>): the encoder runs only when this pipeline's last picture was another, the
        /// question's text is prepared only when it changed. <paramref name="stats"/> is set when the stream ends.
        /// Cancellation stops between tokens.
        /// </summary>
        public async IAsyncEnumerable<AnswerToken> AnswerAsync(FramePicture picture, string pictureHash, string query, AskConfig config,
            StageTimings timings, StrongBox<PoolAnswerStats?> stats, [EnumeratorCancellation] CancellationToken cancellation = default)
        {
            ObjectDisposedException.ThrowIf(_returned, this);
            var pipeline = _slot.Pipeline;
            bool cached = _slot.PictureHash == pictureHash;
            pipeline.SetQuery(query);
            config.Choice(_pool._models);  // an unknown decoder or V fails before anything changes
            if (!cached)
            {
                pipeline.NewPicture();
                _slot.PictureHash = null;  // until the new one is encoded
            }
            var frameStats = new FrameStats();
            await foreach (var token in pipeline.AnswerAsync(picture.Frame, config, timings, frameStats, cancellation))
            {
                _slot.PictureHash = pictureHash;
                yield return token;
            }
            _slot.PictureHash = pictureHash;
            stats.Value = new PoolAnswerStats(_slot.Index, cached, frameStats.VisionRan, frameStats.QueryPrefilled, frameStats.CompressorRan, pipeline.Counters);
        }

        /// <summary>Gives the pipeline back (once).</summary>
        public void Dispose()
        {
            if (_returned) return;
            _returned = true;
            _pool.Return(_slot);
        }
    }

    /// <summary>Frees every pipeline (their caches and leases). Call when no request is in flight.</summary>
    public void Dispose()
    {
        foreach (var s in _slots) s.Pipeline.Dispose();
        _free.Dispose();
    }
}
