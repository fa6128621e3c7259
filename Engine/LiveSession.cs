using System.Collections.Concurrent;
using System.Diagnostics;
using Assistant.Capture;
using Assistant.Capture.World;
using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>
/// The live session: the engine's game loop (STYLE.md habit 3, after MonoGame's <c>Game.Tick</c>). It owns
/// the source and its newest-frame hand-over, paces to a target frame time with elapsed time clamped, says
/// when it runs slowly (with hysteresis), pauses, takes questions from one inbox (typed lines, speech, the
/// overlay, any API caller: <see cref="Post"/>, from any thread) and control changes (<see cref="Control"/>),
/// re-plans through the planner, applies the answer mode and the fault policy, and emits one immutable
/// <see cref="FrameReport"/> per frame to its observers. One frame is one <see cref="FramePipeline.RunFrame"/>.
/// Lifetime: the session owns the source and the pipeline (and the pipeline's lease of the set) and frees
/// them on Dispose; the set must outlive it. <see cref="RunAsync"/> runs once.
/// </summary>
public sealed class LiveSession : IDisposable
{
    /// <summary>Over-target frames in a row (net of on-time ones) that set <see cref="IsRunningSlowly"/>; it clears when the count is back to 0.</summary>
    public const int SlowFramesToSet = 3;

    private const int MaxLag = 5;
    private readonly ModelSet _set;
    private readonly LiveSessionOptions _options;
    private readonly IFrameSource _source;
    private readonly WorldFrameSource? _world;
    private readonly FramePipeline _pipeline;
    private readonly List<ISessionObserver> _observers = [];
    private readonly ConcurrentQueue<string> _questions = new();
    private readonly ConcurrentQueue<ControlChange> _changes = new();
    private readonly ConcurrentQueue<SessionNote> _captureNotes = new();
    private readonly List<SessionNote> _pendingNotes = [];
    private readonly Func<Calibration> _calibrate;
    private readonly LatestFrame _latest = new();
    private Calibration? _calibration;
    private LiveConfiguration _configuration;
    private double? _budgetMs;
    private string? _forcedDecoder;
    private int? _forcedTokens;
    private AnswerMode _mode;
    private bool _paused;
    private int _lag;
    private bool _ran;

    /// <summary>
    /// Opens the source the options name and plans the first configuration; a bad option, source, question or
    /// configuration fails here (an <see cref="EngineException"/> or the layer's own), before any frame.
    /// </summary>
    /// <param name="set">The model set; a pipeline of the session's own leases its state.</param>
    /// <param name="options">The session's configuration, validated here.</param>
    /// <remarks>With a budget, the planner uses this machine's cached calibration, measured once when there is none.</remarks>
    public static LiveSession Open(LoadedModels set, LiveSessionOptions options) => Open(set.Set, options);

    internal static LiveSession Open(ModelSet set, LiveSessionOptions options, Func<ModelSet, (Calibration Calibration, bool Measured)>? calibrate = null)
    {
        options.Validate();
        int size = set.Manifest.World?.ImageSize ?? set.Manifest.Vision.ImageSize;
        var source = FrameSources.Open(options.Source, options.LoopSource, options.WorldSpeed, size);
        try
        {
            return new LiveSession(set, options, source, calibrate);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    internal LiveSession(ModelSet set, LiveSessionOptions options, IFrameSource source, Func<ModelSet, (Calibration, bool)>? calibrate = null)
    {
        options.Validate();  // again for callers that bring their own source (tests); Open validated before opening its
        _set = set;
        _options = options;
        _source = source;
        _world = source as WorldFrameSource;
        if (_world is null && options.Query is null)
            throw new EngineException($"{source.Name} has no questions of its own: give --query (or type one while it runs)");
        if (source is VideoSource device) device.Recovered += message => _captureNotes.Enqueue(new SessionNote(NoteLevel.Warning, $"source recovered: {message}"));
        var measure = calibrate ?? (s => Calibrator.Load(s, refresh: false));
        _calibrate = () =>
        {
            if (_calibration is null)
            {
                var (calibration, measured) = measure(_set);
                if (measured) Note(NoteLevel.Warning, "calibrated this machine (cached for next time)");
                _calibration = calibration;
            }
            return _calibration;
        };
        (_budgetMs, _forcedDecoder, _forcedTokens, _mode) = (options.LatencyMs, options.Decoder, options.Tokens, options.Mode);
        _configuration = Configure();
        if (_configuration.Plan is { } plan)
        {
            if (!plan.Fits) Note(NoteLevel.Warning, $"note: nothing fits {plan.BudgetMs:G4} ms here; running the cheapest ({plan.Choice.TotalMs:F2} ms predicted)");
            Note(NoteLevel.Info, $"planned for {plan.BudgetMs:G4} ms: {plan.Choice.Decoder} + {plan.Choice.Compressor} V={plan.Choice.Tokens} " +
                                 $"(predicted {plan.Choice.TotalMs:F2} ms, accuracy {100 * plan.Choice.PredictedAccuracy:F1}%), up to {_configuration.TokensPerFrame} answer tokens a frame");
        }
        _pipeline = new FramePipeline(set);
        try
        {
            if (options.Query is { } q) _pipeline.SetQuery(q);
        }
        catch
        {
            _pipeline.Dispose();
            throw;
        }
    }

    /// <summary>The execution provider the set runs on ("cpu", "cuda", "dml").</summary>
    public string Provider => _set.Provider.ToString().ToLowerInvariant();

    /// <summary>The effective options.</summary>
    public LiveSessionOptions Options => _options;

    /// <summary>The source's name as the user gave it.</summary>
    public string SourceName => _source.Name;

    /// <summary>What runs now (changes when a control re-plans).</summary>
    public LiveConfiguration Configuration => _configuration;

    /// <summary>The controls in force.</summary>
    public SessionControls Controls => new(_budgetMs, _forcedDecoder, _forcedTokens, _mode == AnswerMode.Snapshot ? "snapshot" : "live", _paused);

    /// <summary>Frames take longer than <see cref="LiveSessionOptions.TargetFrameTime"/>: set after <see cref="SlowFramesToSet"/> slow frames, cleared when on time again.</summary>
    public bool IsRunningSlowly { get; private set; }

    /// <summary>Adds an observer; call before <see cref="RunAsync"/>.</summary>
    public void Observe(ISessionObserver observer) => _observers.Add(observer);

    /// <summary>Posts a question from any thread; it replaces the current one at the start of the next frame.</summary>
    public void Post(string question)
    {
        if (question.Trim().Length > 0) _questions.Enqueue(question.Trim());
    }

    /// <summary>Posts a control change from any thread; applied at the start of the next frame (or while paused).</summary>
    public void Control(ControlChange change)
    {
        _changes.Enqueue(change);
        while (_changes.Count > MaxPendingChanges) _changes.TryDequeue(out _);  // a runaway client cannot grow it
    }

    private const int MaxPendingChanges = 64;

    private LiveConfiguration Configure() =>
        LiveConfiguration.Make(_set, _budgetMs, _forcedDecoder, _forcedTokens, _options.TokensPerFrame, _options.Answer, _calibrate, _options.Compressor);

    private void Note(NoteLevel level, string message, long? frame = null, string? error = null, bool repeat = false)
    {
        var note = new SessionNote(level, message, frame, error, repeat);
        if (!_ran) _pendingNotes.Add(note);  // before the run: kept until observers are attached
        else foreach (var o in _observers) o.OnNote(note);
    }

    /// <summary>
    /// Runs frames until the frame count, the duration, the source's end, a stopping fault or
    /// <paramref name="cancellation"/> (between frames: the summary is returned either way).
    /// </summary>
    public async Task<SessionSummary> RunAsync(CancellationToken cancellation = default)
    {
        if (_ran) throw new InvalidOperationException("a live session runs once");
        _ran = true;
        foreach (var n in _pendingNotes) foreach (var o in _observers) o.OnNote(n);
        _pendingNotes.Clear();

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var clock = Stopwatch.StartNew();
        Task? capture = _options.RealtimeFps is { } fps ? Task.Run(() => CaptureAsync(fps, stop.Token)) : null;
        // Fixed-size: memory stays flat however long the session runs (Reservoir, RecentFrames).
        var stageMs = StageTimings.All.ToDictionary(s => s, _ => new Reservoir());
        var frameMs = new Reservoir();
        var worldStepOfPipelineFrame = new RecentFrames();  // the picture each pipeline frame saw, for scoring what an answer describes
        WorldQuestion? question = null;
        bool userAsked = false;
        int scored = 0, correct = 0, slowFrames = 0, queryTokens = 1;
        long done = 0, f = 0;
        (LiveConfiguration Config, int QueryTokens, double Flops)? flops = null;
        string? lastFault = null;
        int faultRepeats = 0;
        void FlushRepeats()
        {
            if (faultRepeats > 0)
                Note(NoteLevel.Warning, $"source {_source.Name}: the failure above repeated {faultRepeats} more time{(faultRepeats == 1 ? "" : "s")}");
            (lastFault, faultRepeats) = (null, 0);
        }
        var end = SessionEnd.Completed;
        long frames = _options.Frames ?? long.MaxValue;
        var target = _options.TargetFrameTime;
        var pace = _options.TargetFps is { } tf ? TimeSpan.FromSeconds(1 / tf) : (TimeSpan?)null;
        var maxElapsed = TimeSpan.FromMilliseconds(_options.MaxElapsedMs);
        long previousStart = Stopwatch.GetTimestamp(), nextTick = previousStart;
        try
        {
            for (; f < frames && !stop.IsCancellationRequested && !(_options.DurationSeconds is { } limit && clock.Elapsed.TotalSeconds >= limit); f++)
            {
                FlushCaptureNotes();
                ApplyControls(f);
                if (_paused)
                {
                    await Task.Delay(50, stop.Token);
                    f--;  // a paused frame is not a frame
                    previousStart = Stopwatch.GetTimestamp();
                    continue;
                }
                while (_questions.TryDequeue(out var line))
                {
                    try
                    {
                        _pipeline.SetQuery(line);
                        question = null;  // a typed question has no known truth
                        userAsked = true;
                        Note(NoteLevel.Info, $"frame {f}: new question: {_pipeline.Query}");
                    }
                    catch (EngineException e)
                    {
                        Note(NoteLevel.Warning, $"ignored question: {e.Message}");
                    }
                }

                // Acquire: the newest frame from the capture thread, or one read here.
                Frame? frame;
                long acquireStart = Stopwatch.GetTimestamp();
                try
                {
                    frame = capture is null ? (_source.TryRead(out var read) ? read : null) : Take(stop.Token);
                    if (frame is null)
                    {
                        Note(NoteLevel.Warning, $"source {_source.Name} ended after {done} frames");
                        break;
                    }
                }
                catch (CaptureException e)
                {
                    bool skip = _options.OnSourceError == SourceErrorPolicy.Skip;
                    // The same failure again (a folder emptied under a looping source) is one line with a count,
                    // not one a frame; the record still gets every lost frame. Repeats back off, up to 0.5 s.
                    bool repeat = skip && e.Message == lastFault;
                    if (!repeat) FlushRepeats();
                    Note(NoteLevel.Warning, $"source {_source.Name} failed at frame {f}: {e.Message}{(skip ? "; skipping the frame" : "; stopping")}", f, e.Message, repeat);
                    if (!skip)
                    {
                        end = SessionEnd.SourceFailed;
                        break;
                    }
                    lastFault = e.Message;
                    if (repeat) await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(500, 10 * ++faultRepeats)), stop.Token);
                    continue;
                }
                FlushRepeats();

                if (_world is not null && _options.Query is null && !userAsked && f % _options.QuestionEvery == 0)
                {
                    // A question about the scene as it is now (objects have moved since frame 0).
                    long step = WorldFrameSource.StepOf(frame);
                    var objects = _world.World.ObjectsAt(step);
                    int index = (int)(f / _options.QuestionEvery);
                    question = WorldQuestions.For(objects, WorldQuestions.QuestionSeed(_world.World.Seed, index))
                               ?? WorldQuestions.For(objects, WorldQuestions.QuestionSeed(_world.World.Seed, index), "count")!;
                    _pipeline.SetQuery(question.Text);
                }

                // Update: one frame of the pipeline.
                long start = Stopwatch.GetTimestamp();
                double acquireMs = Stopwatch.GetElapsedTime(acquireStart, start).TotalMilliseconds;
                var elapsed = Stopwatch.GetElapsedTime(previousStart, start);
                if (elapsed > maxElapsed) elapsed = maxElapsed;  // a stall or a pause is not caught up
                previousStart = start;
                var timings = new StageTimings();
                var stats = new FrameStats();
                var config = _configuration;
                worldStepOfPipelineFrame.Add(_world is null ? 0 : WorldFrameSource.StepOf(frame));
                FrameOutcome outcome;
                var runBefore = _pipeline.RunTime;
                try
                {
                    outcome = _pipeline.RunFrame(frame, config.Config, config.TokensPerFrame, _mode, timings, stats, stop.Token);
                }
                catch (InferenceException e) when (e.ExitCode == 1)
                {
                    // A runtime failure on one frame: logged and skipped; the loop goes on.
                    Note(NoteLevel.Warning, $"frame {f} skipped: {e.Message}", f, e.Message);
                    continue;
                }
                double runMs = (_pipeline.RunTime - runBefore).TotalMilliseconds;
                if (timings.QueryTokens > 0) queryTokens = timings.QueryTokens;
                if (outcome.Repetitive && outcome.AnswerDone)
                    Note(NoteLevel.Warning, $"note: frame {f}: the answer repeated itself; stopped it after {outcome.AnswerSoFar.Length} characters");

                // Score a complete answer against the picture it is about (snapshot: where it started).
                var answer = outcome.AnswerSoFar.Trim();
                long describes = worldStepOfPipelineFrame.At(outcome.AnswerStartedAt);
                string? truth = question is null || _world is null || !outcome.AnswerDone ? null : _world.World.Truth(question, describes);
                if (truth is not null)
                {
                    scored++;
                    if (answer == truth) correct++;
                }
                done++;
                if (flops is not { } known || !ReferenceEquals(known.Config, config) || known.QueryTokens != queryTokens)
                {
                    // Made again only when the configuration or the query's length changes, not every frame.
                    var decoderSpec = _set.Manifest.FindDecoder(config.Decoder);
                    var compressorSpec = decoderSpec.Compressors.First(c => c.Kind == config.Compressor);
                    flops = known = (config, queryTokens, FlopsModel.Ask(_set.Manifest, decoderSpec, compressorSpec, config.Tokens, queryTokens, 2).PerFrameCachedQuery);
                }
                var report = new FrameReport
                {
                    Index = f, CapturedSeconds = Math.Round(frame.Timestamp.TotalSeconds, 6), Question = _pipeline.Query ?? "", Answer = answer,
                    AnswerDone = outcome.AnswerDone, AnswerRestarted = outcome.AnswerRestarted, NewTokens = outcome.NewTokenIds.Count,
                    Truth = truth, Correct = truth is null ? null : answer == truth, LiveAccuracy = scored == 0 ? null : (double)correct / scored,
                    VisionRan = stats.VisionRan, QueryPrefilled = stats.QueryPrefilled, CompressorRan = stats.CompressorRan,
                    SceneChange = float.IsFinite(stats.SceneChange) ? stats.SceneChange : null, StageMs = timings.ToDictionary(),
                    FrameMs = Math.Round(Stopwatch.GetElapsedTime(start).TotalMilliseconds, 3), ElapsedMs = Math.Round(elapsed.TotalMilliseconds, 3), RunMs = runMs, AcquireMs = acquireMs,
                    Fps = Math.Round(done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), 2), IsRunningSlowly = IsRunningSlowly,
                    Dropped = _latest.Counts.Dropped, Decoder = config.Decoder, Compressor = config.Compressor, Tokens = config.Tokens,
                    Flops = known.Flops,
                    BudgetFlops = config.BudgetFlops, Controls = Controls, Counters = _pipeline.Counters, Picture = new FramePicture(frame),
                };
                foreach (var o in _observers) o.OnFrame(report);

                // The frame's own time (observers included: a slow one makes slow frames) against the target.
                double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                frameMs.Add(ms);
                foreach (var s in StageTimings.All) stageMs[s].Add(timings[s]);
                if (target is { } t)
                {
                    bool slow = ms > t.TotalMilliseconds;
                    if (slow) slowFrames++;
                    UpdateRunningSlowly(slow, ms, t);
                }

                // Pace: wait for the next tick; a frame behind by more than the clamp does not catch up.
                if (pace is { } period)
                {
                    nextTick += (long)(period.TotalSeconds * Stopwatch.Frequency);
                    long now = Stopwatch.GetTimestamp();
                    if (Stopwatch.GetElapsedTime(nextTick, now) > maxElapsed) nextTick = now;
                    var wait = Stopwatch.GetElapsedTime(now, nextTick);
                    if (wait > TimeSpan.Zero) await Task.Delay(wait, stop.Token);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Cancelled between or inside a frame: the summary below is still made.
        }
        finally
        {
            FlushRepeats();
            stop.Cancel();  // ends the capture thread
            if (capture is not null) await capture;
            FlushCaptureNotes();
        }
        if (cancellation.IsCancellationRequested) end = SessionEnd.Interrupted;
        return new SessionSummary(end, done, clock.Elapsed.TotalSeconds, _source.Name, _configuration.Label, Provider,
            capture is null ? null : _latest.Counts, _pipeline.Counters, Percentiles("frame", frameMs),
            StageTimings.All.Select(s => Percentiles(StageTimings.Name(s), stageMs[s])).ToList(),
            scored == 0 ? null : new Accuracy(correct, scored), slowFrames);
    }

    private static StagePercentiles Percentiles(string name, Reservoir xs) => new(name, xs.Quantile(0.5), xs.Quantile(0.95));

    /// <summary>MonoGame's lag counter: slow frames raise it, on-time ones lower it; the flag sets high and clears at zero.</summary>
    private void UpdateRunningSlowly(bool slow, double ms, TimeSpan target)
    {
        _lag = slow ? Math.Min(_lag + 1, MaxLag) : Math.Max(_lag - 1, 0);
        if (!IsRunningSlowly && _lag >= SlowFramesToSet)
        {
            IsRunningSlowly = true;
            Note(NoteLevel.Warning, $"running slowly: frames take {ms:F1} ms against a target of {target.TotalMilliseconds:G4} ms");
        }
        else if (IsRunningSlowly && _lag == 0)
        {
            IsRunningSlowly = false;
            Note(NoteLevel.Info, "back on time");
        }
    }

    /// <summary>The newest captured frame; null when the source ended or failed under the stop policy (a failure is thrown).</summary>
    private Frame? Take(CancellationToken stop)
    {
        Frame? frame;
        while (!_latest.TryTake(TimeSpan.FromMilliseconds(200), out frame))
        {
            stop.ThrowIfCancellationRequested();
            if (_sourceError is { } error && _options.OnSourceError == SourceErrorPolicy.Stop) throw new CaptureException(error);
            if (_sourceEnded) return null;
        }
        return frame;
    }

    private volatile bool _sourceEnded;
    private volatile string? _sourceError;

    /// <summary>The capture thread: reads the source at its own rate into the one-slot hand-over (newest wins).</summary>
    private async Task CaptureAsync(double fps, CancellationToken stop)
    {
        var period = TimeSpan.FromSeconds(1 / fps);
        long next = Stopwatch.GetTimestamp();
        while (!stop.IsCancellationRequested)
        {
            try
            {
                if (!_source.TryRead(out var captured))
                {
                    _sourceEnded = true;
                    return;
                }
                _latest.Publish(captured);
            }
            catch (CaptureException e)
            {
                _sourceError = e.Message;
                if (_options.OnSourceError == SourceErrorPolicy.Stop) return;
                _captureNotes.Enqueue(new SessionNote(NoteLevel.Warning, $"source {_source.Name} failed: {e.Message}; skipping the frame", null, e.Message));
            }
            next += (long)(period.TotalSeconds * Stopwatch.Frequency);
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), next);
            if (wait <= TimeSpan.Zero) continue;
            try
            {
                await Task.Delay(wait, stop);
            }
            catch (OperationCanceledException)
            {
                return;  // the session ended
            }
        }
    }

    private void FlushCaptureNotes()
    {
        while (_captureNotes.TryDequeue(out var note)) foreach (var o in _observers) o.OnNote(note);
    }

    /// <summary>Applies the posted control changes in order; a bad one is logged and leaves the controls as they were.</summary>
    private void ApplyControls(long f)
    {
        bool changed = false;
        while (_changes.TryDequeue(out var r))
        {
            changed = true;
            if (r.Query is { } q) Post(q);
            if (r.Mode is { } m) _mode = m == "snapshot" ? AnswerMode.Snapshot : AnswerMode.Live;
            if (r.Paused is { } p) _paused = p;
            if (r.LatencyMs is null && r.Decoder is null && r.Tokens is null) continue;
            var before = (_budgetMs, _forcedDecoder, _forcedTokens);
            try
            {
                if (r.LatencyMs is { } l) _budgetMs = l > 0 ? l : null;
                if (r.Decoder is { } d) _forcedDecoder = d == "auto" ? null : d;
                if (r.Tokens is { } t)
                    _forcedTokens = t == "auto" ? null
                        : int.TryParse(t, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v
                        : throw new EngineException($"tokens must be a count or auto, got '{t}'");
                _configuration = Configure();
                Note(NoteLevel.Info, $"frame {f}: overlay set {(_budgetMs is { } b ? $"budget {b:G4} ms" : "no budget")} -> {_configuration.Label}");
            }
            catch (Exception e) when (e is EngineException or InferenceException)
            {
                (_budgetMs, _forcedDecoder, _forcedTokens) = before;
                Note(NoteLevel.Warning, $"ignored overlay control: {e.Message}");
            }
        }
        if (changed)
        {
            var controls = Controls;
            foreach (var o in _observers) o.OnControls(controls);
        }
    }

    /// <summary>Frees the pipeline (and its lease) and the source.</summary>
    public void Dispose()
    {
        _pipeline.Dispose();
        _source.Dispose();
    }
}
