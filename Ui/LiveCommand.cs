using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Assistant.Capture.World;
using Assistant.Engine;
using Assistant.Inference;

namespace Assistant.Ui;

/// <summary>
/// <c>assistant live --source world</c>: the frame loop on the moving synthetic world. Without --query the
/// world asks its own questions (a new one every --question-every frames) and the live accuracy against the
/// per-frame truth is reported at exit. Other sources, the HUD, typed questions and the latency budget
/// come with issues 5 and 6.
/// </summary>
internal static class LiveCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr, TextReader? stdin)
    {
        var source = new Option<string>("--source") { Description = "world, world:SEED, folder:PATH (images in name order), file:PATH (a still image or a video), camera:N, screen or screen:X,Y,W,H (X11)", DefaultValueFactory = _ => "world" };
        var loopFolder = new Option<bool>("--loop") { Description = "folder or video: start again at the beginning instead of ending" };
        var modeOption = new Option<string>("--mode") { Description = "live (a changed picture restarts the answer) or snapshot (the answer finishes)", DefaultValueFactory = _ => "live" };
        var perFrame = new Option<int?>("--tokens-per-frame") { Description = "answer tokens decoded per frame at most; a longer answer continues on the next frames (default: what --latency-ms leaves room for, else 64)" };
        var hudOption = new Option<bool>("--hud") { Description = "a live console view (answer, stage timings, configuration, fps) instead of lines; needs a terminal" };
        var realtime = new Option<double?>("--realtime-fps") { Description = "capture on its own thread at this rate; the loop takes the newest frame and drops the rest" };
        var onSourceError = new Option<string>("--on-source-error") { Description = "stop (end the run cleanly) or skip (log and go on) when the source fails", DefaultValueFactory = _ => "stop" };
        var query = new Option<string?>("--query") { Description = "a fixed question (default: the world's own questions, scored per frame)" };
        var frames = new Option<int>("--frames") { Description = "frames to run", DefaultValueFactory = _ => 500 };
        var duration = new Option<double?>("--duration") { Description = "seconds to run (instead of a frame count)" };
        var every = new Option<int>("--question-every") { Description = "frames per world question", DefaultValueFactory = _ => 50 };
        var speed = new Option<double>("--speed") { Description = "object speed in canvas units per frame", DefaultValueFactory = _ => 0.004 };
        var tokens = new Option<int?>("--tokens") { Description = "visual tokens V (default from the manifest)" };
        var decoder = new Option<string?>("--decoder") { Description = "decoder name (default from the manifest)" };
        var record = new Option<string?>("--record") { Description = "write one JSON line per frame to this file" };
        var latency = new Option<double?>("--latency-ms") { Description = "per-answer budget: the planner picks the decoder and V (calibrating this machine once)" };
        var models = new Option<string?>("--models") { Description = "model set folder (default: models/default)" };
        var overlay = new Option<bool>("--overlay") { Description = "serve the tuning overlay (live preview, HUD, streamed answer, controls) on a local web page; runs until Ctrl+C unless --frames is given" };
        var port = new Option<int>("--port") { Description = "overlay port (0: any free one)", DefaultValueFactory = _ => 8770 };
        var bind = new Option<string>("--bind") { Description = "overlay address; anything but loopback needs --allow-remote", DefaultValueFactory = _ => "127.0.0.1" };
        var allowRemote = new Option<bool>("--allow-remote") { Description = "let the overlay bind beyond loopback; prints an access token every request must carry" };
        var listen = new Option<bool>("--listen") { Description = "ask by voice: the microphone (ALSA) through voice activity and, with --asr-model, speech recognition; a heard question replaces the current one as a typed line does" };
        var micDevice = new Option<string>("--mic-device") { Description = "with --listen: ALSA capture device", DefaultValueFactory = _ => "default" };
        var asrModel = new Option<string?>("--asr-model") { Description = "with --listen: a Whisper ggml model to turn utterances into questions" };
        var ep = Cli.EpOption();
        var command = new Command("live", "Run the frame loop on a moving source and answer about every frame.")
        {
            source, loopFolder, realtime, modeOption, perFrame, hudOption, onSourceError, query, frames, duration, every, speed, tokens, decoder, record, latency, models,
            overlay, port, bind, allowRemote, listen, micDevice, asrModel, ep,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            int n = parse.GetValue(frames), k = parse.GetValue(every);
            bool withOverlay = parse.GetValue(overlay);
            double? runSeconds = parse.GetValue(duration);
            if (runSeconds is { } d && !(d > 0 && d <= 7 * 24 * 3600)) throw new EngineException($"--duration must be in (0, 604800] seconds, got {d}");
            if (runSeconds is not null && parse.GetResult(frames) is { Implicit: false }) throw new EngineException("give --frames or --duration, not both");
            if (runSeconds is not null) n = int.MaxValue;
            if (withOverlay && parse.GetResult(frames) is null or { Implicit: true }) n = int.MaxValue;  // until Ctrl+C
            if (!withOverlay && (parse.GetValue(allowRemote) || parse.GetResult(port) is { Implicit: false } || parse.GetResult(bind) is { Implicit: false }))
                throw new EngineException("--port, --bind and --allow-remote go with --overlay");
            if (n < 1) throw new EngineException($"--frames must be at least 1, got {n}");
            if (k < 1) throw new EngineException($"--question-every must be at least 1, got {k}");
            var errorPolicy = parse.GetValue(onSourceError)!;
            var mode = parse.GetValue(modeOption) switch
            {
                "live" => AnswerMode.Live,
                "snapshot" => AnswerMode.Snapshot,
                var other => throw new EngineException($"--mode must be live or snapshot, got '{other}'"),
            };
            int? tokensPerFrameOption = parse.GetValue(perFrame);
            if (tokensPerFrameOption is < 1) throw new EngineException($"--tokens-per-frame must be at least 1, got {tokensPerFrameOption}");
            var worldStepOfLoopFrame = new List<long>();  // for scoring an answer against the frame it describes
            if (errorPolicy is not ("stop" or "skip")) throw new EngineException($"--on-source-error must be stop or skip, got '{errorPolicy}'");
            using var set = Cli.LoadModels(parse.GetValue(models), parse.GetValue(ep)!, stderr);
            int size = set.Manifest.World?.ImageSize ?? set.Manifest.Vision.ImageSize;
            using var frameSource = Sources.Open(parse.GetValue(source)!, parse.GetValue(loopFolder), parse.GetValue(speed), size);
            var worldSource = frameSource as Capture.WorldFrameSource;
            if (frameSource is Capture.VideoSource device) device.Recovered += message => stderr.WriteLine($"source recovered: {message}");
            double? captureFps = parse.GetValue(realtime);
            if (captureFps is { } fpsWanted && !(fpsWanted > 0 && fpsWanted <= 1000))
                throw new EngineException($"--realtime-fps must be in (0, 1000], got {fpsWanted}");
            static long StepOf(Capture.Frame frame) => Capture.WorldFrameSource.StepOf(frame);
            long seed = worldSource?.World.Seed ?? 0;
            if (worldSource is null && parse.GetValue(query) is null)
                throw new EngineException($"{frameSource.Name} has no questions of its own: give --query (or type one while it runs)");
            // The configuration can change while the loop runs (the overlay's controls): Configure makes it
            // from the budget (through the planner) and any forced decoder or V, and is re-run on a change.
            double? budgetMs = parse.GetValue(latency);
            string? forcedDecoder = parse.GetValue(decoder);
            int? forcedTokens = parse.GetValue(tokens);
            if (budgetMs is not null && (forcedDecoder is not null || forcedTokens is not null))
                throw new EngineException("--latency-ms chooses the decoder and V itself: drop --decoder/--tokens, or the budget");
            var pipeline = new AskPipeline(set);
            Calibration? calibration = null;
            AskConfig config = null!;
            LanguageModel lm = null!;
            Compressor comp = null!;
            int tokensPerFrame = 64;
            double? budgetFlops = null;
            void Configure(bool announce)
            {
                var c = new AskConfig(null, null, null, new GenerationOptions(8));
                int perFrameTokens = tokensPerFrameOption ?? 64;
                double? fitFlops = null;
                if (budgetMs is { } budget)
                {
                    if (calibration is null)
                    {
                        // The same planner as `assistant plan`; the loop reuses the query's cache, so plan for a cached query.
                        var (measuredCalibration, measured) = Calibrator.Load(set, refresh: false);
                        if (measured) stderr.WriteLine("calibrated this machine (cached for next time)");
                        calibration = measuredCalibration;
                    }
                    var plan = Planner.Choose(set.Manifest, Planner.Law(set.Manifest), calibration, new PlanRequest(budget, CachedQuery: true));
                    if (!plan.Fits)
                        stderr.WriteLine($"note: nothing fits {budget:G4} ms here; running the cheapest ({plan.Choice.TotalMs:F2} ms predicted)");
                    c = c with { Decoder = plan.Choice.Decoder, Compressor = plan.Choice.Compressor, Tokens = plan.Choice.Tokens };
                    var fitting = plan.All.Where(x => x.TotalMs <= budget).ToList();
                    fitFlops = fitting.Count == 0 ? null : fitting.Max(x => x.Flops.PerFrameCachedQuery);
                    if (tokensPerFrameOption is null)
                    {
                        // What the budget leaves after the per-frame stages pays for decode steps (at least one).
                        var chosen = set.Manifest.FindDecoder(plan.Choice.Decoder);
                        double stepMs = calibration.Decoders[chosen.Name].Ms(FlopsModel.DecoderRun(chosen, 1, 12 + plan.Choice.Tokens + 2));
                        double fixedMs = plan.Choice.StageMs["vision"] + plan.Choice.StageMs["quecc"] + plan.Choice.StageMs["visual_prefill"];
                        perFrameTokens = Math.Max(1, (int)Math.Floor((budget - fixedMs) / Math.Max(stepMs, 1e-6)));
                    }
                    if (announce)
                        stdout.WriteLine($"planned for {budget:G4} ms: {plan.Choice.Decoder} + {plan.Choice.Compressor} V={plan.Choice.Tokens} " +
                                         $"(predicted {plan.Choice.TotalMs:F2} ms, accuracy {100 * plan.Choice.PredictedAccuracy:F1}%), up to {perFrameTokens} answer tokens a frame");
                }
                if (forcedDecoder is not null) c = c with { Decoder = forcedDecoder };
                if (forcedTokens is not null) c = c with { Tokens = forcedTokens };
                var (newLm, newComp) = pipeline.Resolve(c);  // an unknown decoder or V fails here, before anything changes
                (config, lm, comp, tokensPerFrame, budgetFlops) = (c, newLm, newComp, perFrameTokens, fitFlops);
            }
            Configure(announce: true);
            using var loop = new FrameLoop(set);
            var fixedQuery = parse.GetValue(query);
            if (fixedQuery is not null) loop.SetQuery(fixedQuery);
            var hub = withOverlay ? new Overlay.OverlayHub() : null;
            await using var overlayServer = hub is null ? null
                : await Overlay.OverlayServer.StartAsync(new Overlay.OverlayOptions(parse.GetValue(bind)!, parse.GetValue(port), parse.GetValue(allowRemote)), hub, LawPoints(set));
            if (overlayServer is not null)
            {
                stdout.WriteLine($"overlay: {overlayServer.Url}{(parse.GetValue(allowRemote) ? "  (the token is shown only now; every request needs it)" : "")}");
                stdout.Flush();
            }
            bool paused = false;
            (Capture.Frame Frame, Overlay.OverlayFrame Telemetry)? lastPublished = null;

            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            // Typed lines become new questions; the reader runs beside the loop and the newest line wins.
            var typed = new System.Collections.Concurrent.ConcurrentQueue<string>();
            bool userAsked = false;
            // Voice: the microphone, VAD and recogniser open now (a bad device or model fails before the loop),
            // then a task beside the loop turns each heard question into a line of the typed queue.
            Task? listening = null;
            if (parse.GetValue(listen))
            {
                var factory = new SessionFactory(new SessionConfig(ExecutionProviders.Parse(parse.GetValue(ep)!)));
                var vad = Inference.Audio.SileroVad.Load(factory);
                Inference.Audio.WhisperRecognizer? recognizer = null;
                Capture.Audio.IMicrophone? microphone = null;
                try
                {
                    recognizer = parse.GetValue(asrModel) is { } model ? Inference.Audio.WhisperRecognizer.Load(model) : null;
                    microphone = Capture.Audio.Microphones.Open(parse.GetValue(micDevice)!);
                }
                catch
                {
                    vad.Dispose();
                    recognizer?.Dispose();
                    throw;
                }
                if (recognizer is null) stderr.WriteLine("note: --listen without --asr-model hears utterances but cannot turn them into questions");
                listening = Task.Run(() => ListenAsync(vad, recognizer, microphone, typed, stdout, stderr, cts.Token));
            }
            if (stdin is not null)
                _ = Task.Run(async () =>
                {
                    try
                    {
                        while (await stdin.ReadLineAsync(cts.Token) is { } line)
                            if (line.Trim().Length > 0) typed.Enqueue(line.Trim());
                    }
                    catch (OperationCanceledException)
                    {
                        // the loop ended
                    }
                });
            bool interrupted = false, sourceFailed = false;
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; interrupted = true; cts.Cancel(); };
            Console.CancelKeyPress += onCancel;
            var recordPath = parse.GetValue(record);
            using var recorder = recordPath is null ? null : new StreamWriter(recordPath);
            var stageMs = Enum.GetValues<Stage>().ToDictionary(s => s, _ => new List<double>());
            var frameMs = new List<double>();
            int scored = 0, correct = 0, done = 0;
            WorldQuestion? question = null;
            bool useHud = parse.GetValue(hudOption);
            if (useHud && (Console.IsOutputRedirected || !ReferenceEquals(stdout, Console.Out)))
            {
                stderr.WriteLine("note: --hud needs a terminal; printing lines instead");
                useHud = false;
            }
            var clock = Stopwatch.StartNew();
            // Real-time capture: a thread publishes into a one-slot buffer at the source's own rate.
            var latest = new Capture.LatestFrame();
            Task? capture = null;
            bool sourceEnded = false;
            string? sourceError = null;
            if (captureFps is { } fps)
                capture = Task.Run(async () =>
                {
                    var period = TimeSpan.FromSeconds(1 / fps);
                    var next = Stopwatch.GetTimestamp();
                    while (!cts.IsCancellationRequested)
                    {
                        try
                        {
                            if (!frameSource.TryRead(out var captured)) { sourceEnded = true; return; }
                            latest.Publish(captured);
                        }
                        catch (Capture.CaptureException e)
                        {
                            sourceError = e.Message;
                            if (errorPolicy == "stop") return;
                        }
                        next += (long)(period.TotalSeconds * Stopwatch.Frequency);
                        var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), next);
                        if (wait > TimeSpan.Zero) await Task.Delay(wait, cts.Token).ContinueWith(_ => { });
                    }
                });
            Action<HudState>? onFrame = null;
            // The overlay's requests, applied in order at the start of a frame; a bad one is logged and dropped.
            void ApplyRequests(List<Overlay.ControlRequest> requests, long f)
            {
                foreach (var r in requests)
                {
                    if (r.Query is { } q) typed.Enqueue(q);
                    if (r.Mode is { } m) mode = m == "snapshot" ? AnswerMode.Snapshot : AnswerMode.Live;
                    if (r.Paused is { } p) paused = p;
                    if (r.LatencyMs is null && r.Decoder is null && r.Tokens is null) continue;
                    var before = (budgetMs, forcedDecoder, forcedTokens);
                    if (r.LatencyMs is { } l) budgetMs = l > 0 ? l : null;
                    if (r.Decoder is { } d) forcedDecoder = d == "auto" ? null : d;
                    if (r.Tokens is { } t) forcedTokens = t == "auto" ? null : int.Parse(t, System.Globalization.CultureInfo.InvariantCulture);
                    try
                    {
                        Configure(announce: false);
                        stdout.WriteLine($"frame {f}: overlay set {(budgetMs is { } b ? $"budget {b:G4} ms" : "no budget")} -> {lm.Spec.Name} + {comp.Spec.Kind} V={comp.Tokens}");
                    }
                    catch (Exception e) when (e is EngineException or InferenceException)
                    {
                        (budgetMs, forcedDecoder, forcedTokens) = before;
                        stderr.WriteLine($"ignored overlay control: {e.Message}");
                    }
                }
            }
            Overlay.OverlayFrame Telemetry(long f, Capture.Frame frame, string answer, bool answerDone, string? truth, double? accuracy, StageTimings timings, double ms, double flops) => new(
                f, loop.Query ?? "", answer, answerDone, truth, accuracy, timings.ToDictionary(), Math.Round(ms, 3),
                Math.Round(done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), 2), lm.Spec.Name, comp.Spec.Kind, comp.Tokens,
                flops, budgetFlops, new Overlay.OverlayControls(budgetMs, forcedDecoder, forcedTokens, mode == AnswerMode.Snapshot ? "snapshot" : "live", paused),
                frame.Width, frame.Height);
            async Task RunFrames()
            {
                for (long f = 0; f < n && !cts.IsCancellationRequested && !(runSeconds is { } limit && clock.Elapsed.TotalSeconds >= limit); f++)
                {
                    if (hub is not null)
                    {
                        ApplyRequests(hub.TakeRequests(), f);
                        if (paused && lastPublished is { } shown && !shown.Telemetry.Controls.Paused)
                        {
                            // Show the pause: the last picture again, with the controls as they are now.
                            lastPublished = (shown.Frame, shown.Telemetry with { Controls = shown.Telemetry.Controls with { Paused = true } });
                            hub.Publish(lastPublished.Value.Frame, lastPublished.Value.Telemetry);
                        }
                        if (paused)
                        {
                            await Task.Delay(50, cts.Token).ContinueWith(_ => { });
                            f--;  // a paused frame is not a frame
                            continue;
                        }
                    }
                    while (typed.TryDequeue(out var line))
                    {
                        try
                        {
                            loop.SetQuery(line);
                            question = null;  // a typed question has no known truth
                            userAsked = true;
                            stdout.WriteLine($"frame {f}: new question: {loop.Query}");
                        }
                        catch (EngineException e)
                        {
                            stderr.WriteLine($"ignored question: {e.Message}");
                        }
                    }
                    Capture.Frame frame;
                    try
                    {
                        if (capture is not null)
                        {
                            while (!latest.TryTake(TimeSpan.FromMilliseconds(200), out frame))
                            {
                                if (sourceEnded || (sourceError is not null && errorPolicy == "stop") || cts.IsCancellationRequested) break;
                            }
                            if (frame is null)
                            {
                                if (sourceError is not null) throw new Capture.CaptureException(sourceError);
                                stderr.WriteLine($"source {frameSource.Name} ended after {done} frames");
                                break;
                            }
                        }
                        else if (!frameSource.TryRead(out frame))
                        {
                            stderr.WriteLine($"source {frameSource.Name} ended after {done} frames");
                            break;
                        }
                    }
                    catch (Capture.CaptureException e)
                    {
                        stderr.WriteLine($"source {frameSource.Name} failed at frame {f}: {e.Message}{(errorPolicy == "skip" ? "; skipping the frame" : "; stopping")}");
                        recorder?.WriteLine(JsonSerializer.Serialize(new { frame = f, error = e.Message }));
                        if (errorPolicy == "skip") continue;
                        sourceFailed = true;
                        break;
                    }
                    if (worldSource is not null && fixedQuery is null && !userAsked && f % k == 0)
                    {
                        // A question about the scene as it is now (objects have moved since frame 0).
                        var objsNow = worldSource.World.ObjectsAt(StepOf(frame));
                        question = WorldQuestions.For(objsNow, WorldQuestions.QuestionSeed(seed, (int)(f / k)))
                                   ?? WorldQuestions.For(objsNow, WorldQuestions.QuestionSeed(seed, (int)(f / k)), "count")!;
                        loop.SetQuery(question.Text);
                    }
                    long t0 = Stopwatch.GetTimestamp();
                    var timings = new StageTimings();
                    var stats = new FrameStats();
                    FrameStep step;
                    worldStepOfLoopFrame.Add(StepOf(frame));
                    try
                    {
                        step = loop.Step(frame, config, tokensPerFrame, mode, timings, stats, cts.Token);
                    }
                    catch (InferenceException e) when (e.ExitCode == 1)
                    {
                        // A runtime failure on one frame: logged and skipped; the loop goes on.
                        stderr.WriteLine($"frame {f} skipped: {e.Message}");
                        recorder?.WriteLine(JsonSerializer.Serialize(new { frame = f, error = e.Message }));
                        continue;
                    }
                    frameMs.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    foreach (var s in Enum.GetValues<Stage>()) stageMs[s].Add(timings[s]);
                    var answer = step.AnswerSoFar.Trim();
                    double frameFlops = FlopsModel.Ask(set.Manifest.Vision, lm.Spec, comp.Spec.QueryAware, comp.Tokens, Math.Max(1, timings.QueryTokens), 2).PerFrameCachedQuery;
                    // Scored when an answer completes, against the picture it is about (snapshot: where it started).
                    long describes = worldStepOfLoopFrame[(int)Math.Min(step.AnswerStartedAt, worldStepOfLoopFrame.Count - 1)];
                    string? truth = question is null || worldSource is null || !step.AnswerDone ? null : worldSource.World.Truth(question, describes);
                    if (truth is not null)
                    {
                        scored++;
                        if (answer == truth) correct++;
                    }
                    done++;
                    recorder?.WriteLine(JsonSerializer.Serialize(new
                    {
                        frame = f, captured_s = Math.Round(frame.Timestamp.TotalSeconds, 6), question = loop.Query, answer, answer_done = step.AnswerDone,
                        answer_restarted = step.AnswerRestarted, new_tokens = step.Tokens.Count, truth, correct = truth is null ? (bool?)null : answer == truth,
                        vision_ran = stats.VisionRan, query_prefilled = stats.QueryPrefilled, compressor_ran = stats.CompressorRan,
                        scene_change = float.IsFinite(stats.SceneChange) ? stats.SceneChange : (float?)null,
                        timings_ms = timings.ToDictionary(), decoder = lm.Spec.Name, compressor = comp.Spec.Kind, tokens = comp.Tokens,
                        flops = frameFlops,
                        budget_flops = budgetFlops,
                    }));
                    if (hub is not null)
                    {
                        lastPublished = (frame, Telemetry(f, frame, answer, step.AnswerDone, truth, scored == 0 ? null : (double)correct / scored, timings, frameMs[^1], frameFlops));
                        hub.Publish(lastPublished.Value.Frame, lastPublished.Value.Telemetry);
                    }
                    if (onFrame is not null)
                        onFrame(new HudState(f, loop.Query ?? "", answer, truth, scored == 0 ? null : (double)correct / scored, timings,
                            done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), $"{lm.Spec.Name} + {comp.Spec.Kind} V={comp.Tokens}", loop.Counters, latest.Counts.Dropped));
                    else if (f % k == 0 || stats.QueryPrefilled)
                        stdout.WriteLine($"frame {f}: {loop.Query} -> {answer}{(truth is null ? "" : $" (truth {truth})")}");
                }
            }
            try
            {
                if (useHud)
                    await LiveHud.RunAsync(hud => onFrame = hud, RunFrames);
                else
                    await RunFrames();
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                // Ctrl+C: stop between frames; the record and the summary below are still written.
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
                recorder?.Flush();
                cts.Cancel();  // stops the stdin reader, the capture thread and the listener
                if (capture is not null) await capture;
                if (listening is not null) await listening;
            }
            var counters = loop.Counters;
            double seconds = clock.Elapsed.TotalSeconds;
            stdout.WriteLine($"{done} frames from {frameSource.Name} in {seconds:F1} s ({done / Math.Max(seconds, 1e-9):F1} fps) with {lm.Spec.Name} + {comp.Spec.Kind} V={comp.Tokens} on {set.Provider.ToString().ToLowerInvariant()}");
            if (capture is not null)
            {
                var (published, taken, dropped) = latest.Counts;
                stdout.WriteLine($"  captured {published} frames at {captureFps:G4} fps, answered {taken}, dropped {dropped} (newest frame wins; never a queue)");
            }
            stdout.WriteLine($"  vision encoder ran on {counters.VisionRuns} frames, compressor on {counters.CompressorRuns}, query prefills {counters.QueryPrefills}");
            static string P(List<double> xs, double q) => xs.Count == 0 ? "-" : $"{xs.Order().ElementAt((int)Math.Min(xs.Count - 1, Math.Floor(q * xs.Count))):F2}";
            stdout.WriteLine("  ms p50/p95: frame " + $"{P(frameMs, 0.5)}/{P(frameMs, 0.95)}; " +
                             string.Join("; ", Enum.GetValues<Stage>().Select(s => $"{StageTimings.Name(s)} {P(stageMs[s], 0.5)}/{P(stageMs[s], 0.95)}")));
            if (scored > 0)
                stdout.WriteLine($"  live accuracy {new Accuracy(correct, scored)} over frames with a known truth");
            return interrupted ? 130 : sourceFailed ? 1 : 0;
        });
        return command;
    }

    /// <summary>The microphone through the VAD (and recogniser) until cancelled; owns and disposes all three.</summary>
    private static async Task ListenAsync(Inference.Audio.SileroVad vad, Inference.Audio.WhisperRecognizer? recognizer, Capture.Audio.IMicrophone microphone,
        System.Collections.Concurrent.ConcurrentQueue<string> questions, TextWriter stdout, TextWriter stderr, CancellationToken stop)
    {
        using (vad)
        using (recognizer)
        using (microphone)
        {
            var listener = new SpeechListener(vad, new Inference.Audio.VadOptions(), recognizer);
            var frame = new float[Inference.Audio.SileroVad.FrameSamples];
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    microphone.Read(frame);
                    if (await listener.PushAsync(frame, stop) is not { } heard) continue;
                    if (heard.Query is { } q)
                    {
                        stdout.WriteLine($"heard ({heard.Span.Start:F2}-{heard.Span.End:F2} s): {q}");
                        questions.Enqueue(q);
                    }
                    else stdout.WriteLine($"heard an utterance ({heard.Span.Start:F2}-{heard.Span.End:F2} s){(recognizer is null ? "; no --asr-model to transcribe it" : " with no words")}");
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // the loop ended
            }
            catch (Capture.CaptureException e)
            {
                stderr.WriteLine($"listening stopped: {e.Message}");  // the loop goes on without the microphone
            }
        }
    }

    /// <summary>Every configuration the planner could pick, with its FLOPs per frame and the law's accuracy (empty without a law).</summary>
    private static IReadOnlyList<Overlay.LawPoint> LawPoints(ModelSet set)
    {
        if (set.Manifest.ScalingLaw is not { ValueKind: JsonValueKind.Object }) return [];
        var law = Planner.Law(set.Manifest);
        return set.Manifest.Decoders
            .SelectMany(d => d.Compressors.Where(c => c.Kind == "quecc").SelectMany(c => c.Tokens.Select(v =>
                new Overlay.LawPoint(d.Name, v, FlopsModel.Ask(set.Manifest.Vision, d, c.QueryAware, v, 12, 2).PerFrameCachedQuery,
                    law.Accuracy(d.Params / 1e9, v)))))
            .ToList();
    }
}
