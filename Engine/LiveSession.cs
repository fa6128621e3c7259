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
    private Func<TextReading>? _openReader;  // a question about text is read with OCR when set (live's --ocr-models)
    private TextReading? _reader;  // lifetime: opened at the first such question, disposed with the session
    private string? _reading;  // the question being answered by reading, instead of the VLM
    private (string? Origin, long At, string Text)? _read;  // the last reading, kept for a second of the same source
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
            Note(NoteLevel.Info, $"planned for {plan.BudgetMs:G4} ms: {plan.Choice.Config} " +
                                 $"(predicted {plan.Choice.TotalMs:F2} ms, accuracy {100 * plan.Choice.PredictedAccuracy:F1}%), up to {_configuration.TokensPerFrame} answer tokens a frame");
        }
        _pipeline = new FramePipeline(set);
        try
        {
            // A question about text on the picture is read with OCR (ReadTextWith), as ask routes it; any other goes to the model.
            if (options.Query is { } q && QueryRouter.Decide(q, "auto").Route == QueryRoute.Ocr) _reading = AskPipeline.ValidateQuery(q);
            else if (options.Query is { } visual) _pipeline.SetQuery(visual);
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
    public SessionControls Controls => new(_budgetMs, _forcedDecoder, _forcedTokens, AnswerModes.Name(_mode), _paused);

    /// <summary>Frames take longer than <see cref="LiveSessionOptions.TargetFrameTime"/>: set after <see cref="SlowFramesToSet"/> slow frames, cleared when on time again.</summary>
    public bool IsRunningSlowly { get; private set; }

    /// <summary>Adds an observer; call before <see cref="RunAsync"/>.</summary>
    public void Observe(ISessionObserver observer) => _observers.Add(observer);

    /// <summary>
    /// Lets questions about text on the picture (read, says, error, ... as <c>ask</c> routes them) be answered with the
    /// text OCR reads, as <c>ask</c> does; <paramref name="open"/> loads the reader at the first such question. Call
    /// before <see cref="RunAsync"/>.
    /// </summary>
    public void ReadTextWith(Func<TextReading> open) => _openReader = open;

    /// <summary>Posts a question from any thread; it replaces the current one at the start of the next frame.</summary>
    public void Post(string question)
    {
        if (question.Trim().Length > 0) _questions.Enqueue(question.Trim());
    }

    /// <summary>
    /// Posts a control change from any thread; applied at the start of the next frame (or while paused). A change that
    /// cannot apply to this set (a decoder it lacks, a V its compressor does not offer or whose graph cannot be opened,
    /// an empty question or one with words a world set does not know) is one <see cref="EngineException"/> line here, before it is queued, so the
    /// caller (the overlay's API) can answer with the reason.
    /// </summary>
    public void Control(ControlChange change)
    {
        change.Check();
        try
        {
            if (change.Query is { } q) new AskPipeline(_set).CheckQuery(q);
            var current = _configuration.Choice;
            string? decoder = change.Decoder is { } d and not "auto" ? d : _forcedDecoder;
            // The compressor it asks for is opened here, on the caller's thread (compressors open when first used):
            // a graph that cannot load is this call's one line, and no frame pays for the opening.
            if (decoder is not null || change.Tokens is { Count: not null })
                new AskConfig(decoder ?? current.Decoder, current.Compressor, change.Tokens?.Count ?? _forcedTokens).Resolve(_set).Compressor.Open();
        }
        catch (InferenceException e)
        {
            throw new EngineException(e.Message);
        }
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
    /// <paramref name="cancellation"/> (between frames: the summary is returned either way). Each tick reads as
    /// MonoGame's does: <see cref="AcquireAsync"/>, <see cref="Update"/>, <see cref="Present"/>, <see cref="PaceAsync"/>.
    /// </summary>
    public async Task<SessionSummary> RunAsync(CancellationToken cancellation = default)
    {
        if (_ran) throw new InvalidOperationException("a live session runs once");
        _ran = true;
        foreach (var n in _pendingNotes) foreach (var o in _observers) o.OnNote(n);
        _pendingNotes.Clear();

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var run = new Run(stop.Token, new WorldQuiz(_world, _options.Query is not null, _options.QuestionEvery));
        run.Capture = _options.RealtimeFps is { } fps ? Task.Run(() => CaptureAsync(fps, stop.Token)) : null;
        long frames = _options.Frames ?? long.MaxValue;
        try
        {
            while (run.Frame < frames && !stop.IsCancellationRequested && !(_options.DurationSeconds is { } limit && run.Clock.Elapsed.TotalSeconds >= limit))
            {
                var tick = await TickAsync(run);
                if (tick == Tick.Stop) break;
                if (tick == Tick.Next) run.Frame++;
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Cancelled between or inside a frame: the summary below is still made.
        }
        finally
        {
            FlushRepeats(run);
            stop.Cancel();  // ends the capture thread
            if (run.Capture is not null) await run.Capture;
            FlushCaptureNotes();
        }
        if (cancellation.IsCancellationRequested) run.End = SessionEnd.Interrupted;
        return new SessionSummary(run.End, run.Done, run.Clock.Elapsed.TotalSeconds, _source.Name, _configuration.Choice.ToString(), Provider,
            run.Capture is null ? null : _latest.Counts, _pipeline.Counters, Percentiles("frame", run.FrameMs),
            StageTimings.All.Select(s => Percentiles(StageTimings.Name(s), run.StageMs[s])).ToList(), run.Quiz.Accuracy, run.SlowFrames);
    }

    private enum Tick { Paused, Next, Stop }

    /// <summary>What one run keeps between its frames; fixed-size, so memory stays flat however long it runs.</summary>
    private sealed class Run(CancellationToken stop, WorldQuiz quiz)
    {
        public CancellationToken Stop { get; } = stop;
        public WorldQuiz Quiz { get; } = quiz;
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public Task? Capture { get; set; }
        public Dictionary<Stage, Reservoir> StageMs { get; } = StageTimings.All.ToDictionary(s => s, _ => new Reservoir());
        public Reservoir FrameMs { get; } = new();
        public long Frame, Done, PreviousStart = Stopwatch.GetTimestamp(), NextTick = Stopwatch.GetTimestamp();
        public int SlowFrames, QueryTokens = 1, FaultRepeats;
        public string? LastFault;
        public SessionEnd End = SessionEnd.Completed;
        public (LiveConfiguration Config, int QueryTokens, double Flops)? Flops;
    }

    /// <summary>One tick: controls and questions, then acquire, update, present and pace a frame.</summary>
    private async Task<Tick> TickAsync(Run run)
    {
        FlushCaptureNotes();
        ApplyControls(run.Frame);
        if (_paused)
        {
            await Task.Delay(50, run.Stop);
            run.PreviousStart = Stopwatch.GetTimestamp();  // a paused frame is not a frame
            return Tick.Paused;
        }
        TakeQuestions(run);
        long acquireStart = Stopwatch.GetTimestamp();
        var (frame, tick) = await AcquireAsync(run);
        if (frame is null) return tick;
        run.Quiz.BeforeFrame(run.Frame, frame, _pipeline);
        long start = Stopwatch.GetTimestamp();
        var updated = Update(run, frame, start, Stopwatch.GetElapsedTime(acquireStart, start).TotalMilliseconds);
        if (updated is not { } u) return Tick.Next;  // a runtime fault on this frame: logged, skipped
        Present(run, u.Report, u.Timings, start);
        await PaceAsync(run);
        return Tick.Next;
    }

    /// <summary>Posted questions, in order; a bad one is logged and ignored.</summary>
    private void TakeQuestions(Run run)
    {
        while (_questions.TryDequeue(out var line))
        {
            try
            {
                if (_openReader is not null && QueryRouter.Decide(line, "auto") is { Route: QueryRoute.Ocr } decision)
                {
                    (_reading, _read) = (AskPipeline.ValidateQuery(line), null);
                    run.Quiz.UserAsked();
                    Note(NoteLevel.Info, $"frame {run.Frame}: new question, answered by reading the text ({decision}): {_reading}");
                    continue;
                }
                _pipeline.SetQuery(line);
                (_reading, _read) = (null, null);
                run.Quiz.UserAsked();
                Note(NoteLevel.Info, $"frame {run.Frame}: new question: {_pipeline.Query}");
            }
            catch (EngineException e)
            {
                Note(NoteLevel.Warning, $"ignored question: {e.Message}");
            }
        }
    }

    /// <summary>
    /// The newest frame from the capture thread, or one read here. A source that ended stops the run; a failure
    /// stops it or skips the frame (<see cref="LiveSessionOptions.OnSourceError"/>), the same failure again being one
    /// line with a count and a growing back-off (up to 0.5 s) rather than a line a frame.
    /// </summary>
    private async Task<(Frame? Frame, Tick Tick)> AcquireAsync(Run run)
    {
        try
        {
            var frame = run.Capture is null ? (_source.TryRead(out var read) ? read : null) : Take(run.Stop);
            if (frame is null)
            {
                Note(NoteLevel.Warning, $"source {_source.Name} ended after {run.Done} frames");
                return (null, Tick.Stop);
            }
            FlushRepeats(run);
            return (frame, Tick.Next);
        }
        catch (CaptureException e)
        {
            bool skip = _options.OnSourceError == SourceErrorPolicy.Skip;
            bool repeat = skip && e.Message == run.LastFault;
            if (!repeat) FlushRepeats(run);
            Note(NoteLevel.Warning, $"source {_source.Name} failed at frame {run.Frame}: {e.Message}{(skip ? "; skipping the frame" : "; stopping")}", run.Frame, e.Message, repeat);
            if (!skip)
            {
                run.End = SessionEnd.SourceFailed;
                return (null, Tick.Stop);
            }
            run.LastFault = e.Message;
            if (repeat) await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(500, 10 * ++run.FaultRepeats)), run.Stop);
            return (null, Tick.Next);
        }
    }

    private void FlushRepeats(Run run)
    {
        if (run.FaultRepeats > 0)
            Note(NoteLevel.Warning, $"source {_source.Name}: the failure above repeated {run.FaultRepeats} more time{(run.FaultRepeats == 1 ? "" : "s")}");
        (run.LastFault, run.FaultRepeats) = (null, 0);
    }

    /// <summary>One frame of the pipeline, the answer scored, and the frame's report; null when the frame failed (logged).</summary>
    private (FrameReport Report, StageTimings Timings)? Update(Run run, Frame frame, long start, double acquireMs)
    {
        var elapsed = Stopwatch.GetElapsedTime(run.PreviousStart, start);
        var maxElapsed = TimeSpan.FromMilliseconds(_options.MaxElapsedMs);
        if (elapsed > maxElapsed) elapsed = maxElapsed;  // a stall or a pause is not caught up
        run.PreviousStart = start;
        if (_reading is { } reading) return Read(run, frame, start, acquireMs, elapsed, reading);
        var (timings, stats, config) = (new StageTimings(), new FrameStats(), _configuration);
        FrameOutcome outcome;
        var runBefore = _pipeline.RunTime;
        try
        {
            outcome = _pipeline.RunFrame(frame, config.Config, config.TokensPerFrame, _mode, timings, stats, run.Stop);
        }
        catch (InferenceException e) when (e.ExitCode == 1)
        {
            Note(NoteLevel.Warning, $"frame {run.Frame} skipped: {e.Message}", run.Frame, e.Message);
            return null;
        }
        double runMs = (_pipeline.RunTime - runBefore).TotalMilliseconds;
        if (timings.QueryTokens > 0) run.QueryTokens = timings.QueryTokens;
        if (outcome.Repetitive && outcome.AnswerDone)
            Note(NoteLevel.Warning, $"note: frame {run.Frame}: the answer repeated itself; stopped it after {outcome.AnswerSoFar.Length} characters");
        var answer = outcome.AnswerSoFar.Trim();
        var truth = run.Quiz.Score(outcome, answer);
        run.Done++;
        var report = new FrameReport
        {
            Index = run.Frame, CapturedSeconds = Math.Round(frame.Timestamp.TotalSeconds, 6), Origin = frame.Origin, Question = _pipeline.Query ?? "", Answer = answer,
            AnswerDone = outcome.AnswerDone, AnswerRestarted = outcome.AnswerRestarted, NewTokens = outcome.NewTokenIds.Count,
            Confidence = Math.Round(outcome.Confidence, 4), Familiar = stats.Familiarity?.Familiar, FamiliarityScore = stats.Familiarity is { } f ? Math.Round(f.Score, 3) : null,
            Truth = truth, Correct = truth is null ? null : answer == truth, LiveAccuracy = run.Quiz.Accuracy?.Value,
            VisionRan = stats.VisionRan, QueryPrefilled = stats.QueryPrefilled, CompressorRan = stats.CompressorRan,
            SceneChange = float.IsFinite(stats.SceneChange) ? stats.SceneChange : null, StageMs = timings.ToDictionary(),
            FrameMs = Math.Round(Stopwatch.GetElapsedTime(start).TotalMilliseconds, 3), ElapsedMs = Math.Round(elapsed.TotalMilliseconds, 3), RunMs = runMs, AcquireMs = acquireMs,
            Fps = Math.Round(run.Done / Math.Max(run.Clock.Elapsed.TotalSeconds, 1e-9), 2), IsRunningSlowly = IsRunningSlowly,
            Dropped = _latest.Counts.Dropped, Choice = config.Choice,
            Flops = FrameFlops(run, config), BudgetFlops = config.BudgetFlops, Controls = Controls, Counters = _pipeline.Counters,
            Picture = new FramePicture(frame),
        };
        return (report, timings);
    }

    /// <summary>
    /// A frame of a question answered by reading: OCR on the picture when the source moved to another file or a second
    /// has passed (reading costs far more than a frame), else the last reading again. A reader that fails is a warning
    /// and an empty answer, never the end of the run.
    /// </summary>
    private (FrameReport Report, StageTimings Timings)? Read(Run run, Frame frame, long start, double acquireMs, TimeSpan elapsed, string question)
    {
        long now = Stopwatch.GetTimestamp();
        if (_read is not { } last || last.Origin != frame.Origin || Stopwatch.GetElapsedTime(last.At, now) > TimeSpan.FromSeconds(1))
        {
            string text;
            try
            {
                _reader ??= (_openReader ?? throw new EngineException("this session has no OCR reader to read the text with"))();
                var result = _reader.Read(new FramePicture(frame));
                text = result.Lines.Count == 0 ? "(no text found)" : result.Text;
            }
            catch (Exception e) when (UserErrors.ExitCode(e) is not null)
            {
                Note(NoteLevel.Warning, $"frame {run.Frame}: could not read the text: {e.Message}");
                text = "";
            }
            _read = (frame.Origin, now, text);
        }
        run.Done++;
        var report = new FrameReport
        {
            Index = run.Frame, CapturedSeconds = Math.Round(frame.Timestamp.TotalSeconds, 6), Origin = frame.Origin, Question = question, Answer = _read.Value.Text,
            AnswerDone = true, AnswerRestarted = true, NewTokens = 0, VisionRan = false, QueryPrefilled = false, CompressorRan = false,
            StageMs = new StageTimings().ToDictionary(), FrameMs = Math.Round(Stopwatch.GetElapsedTime(start).TotalMilliseconds, 3), ElapsedMs = Math.Round(elapsed.TotalMilliseconds, 3),
            RunMs = 0, AcquireMs = acquireMs, Fps = Math.Round(run.Done / Math.Max(run.Clock.Elapsed.TotalSeconds, 1e-9), 2), IsRunningSlowly = IsRunningSlowly,
            Dropped = _latest.Counts.Dropped, Choice = _configuration.Choice, Flops = 0, Controls = Controls, Counters = _pipeline.Counters, Picture = new FramePicture(frame),
        };
        return (report, new StageTimings());
    }

    /// <summary>The frame's FLOPs, made again only when the configuration or the query's length changes, not every frame.</summary>
    private double FrameFlops(Run run, LiveConfiguration config)
    {
        if (run.Flops is { } known && ReferenceEquals(known.Config, config) && known.QueryTokens == run.QueryTokens) return known.Flops;
        var decoderSpec = _set.Manifest.FindDecoder(config.Choice.Decoder);
        var compressorSpec = decoderSpec.Compressors.First(c => c.Kind == config.Choice.Compressor);
        double flops = FlopsModel.Ask(_set.Manifest, decoderSpec, compressorSpec, config.Choice.Tokens, run.QueryTokens, 2).PerFrameCachedQuery;
        run.Flops = (config, run.QueryTokens, flops);
        return flops;
    }

    /// <summary>Hands the report to every observer, then measures the frame's own time (observers included) against the target.</summary>
    private void Present(Run run, FrameReport report, StageTimings timings, long start)
    {
        foreach (var o in _observers) o.OnFrame(report);
        double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        run.FrameMs.Add(ms);
        foreach (var s in StageTimings.All) run.StageMs[s].Add(timings[s]);
        if (_options.TargetFrameTime is { } t)
        {
            bool slow = ms > t.TotalMilliseconds;
            if (slow) run.SlowFrames++;
            UpdateRunningSlowly(slow, ms, t);
        }
    }

    /// <summary>Waits for the next tick of <c>--target-fps</c>; a frame behind by more than the clamp does not catch up.</summary>
    private async Task PaceAsync(Run run)
    {
        if (_options.TargetFps is not { } fps) return;
        run.NextTick += (long)(Stopwatch.Frequency / fps);
        long now = Stopwatch.GetTimestamp();
        if (Stopwatch.GetElapsedTime(run.NextTick, now) > TimeSpan.FromMilliseconds(_options.MaxElapsedMs)) run.NextTick = now;
        var wait = Stopwatch.GetElapsedTime(now, run.NextTick);
        if (wait > TimeSpan.Zero) await Task.Delay(wait, run.Stop);
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
            if (r.Mode is { } m) _mode = m;
            if (r.Paused is { } p) _paused = p;
            if (r.LatencyMs is null && r.Decoder is null && r.Tokens is null) continue;
            var before = (_budgetMs, _forcedDecoder, _forcedTokens);
            try
            {
                if (r.LatencyMs is { } l) _budgetMs = l > 0 ? l : null;
                if (r.Decoder is { } d) _forcedDecoder = d == "auto" ? null : d;
                if (r.Tokens is { } t) _forcedTokens = t.Count;
                _configuration = Configure();
                Note(NoteLevel.Info, $"frame {f}: overlay set {(_budgetMs is { } b ? $"budget {b:G4} ms" : "no budget")} -> {_configuration.Choice.ToString()}");
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
        _reader?.Dispose();
        _pipeline.Dispose();
        _source.Dispose();
    }
}
