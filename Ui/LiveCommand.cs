using System.CommandLine;
using Assistant.Engine;
using Assistant.Ui.Live;

namespace Assistant.Ui;

/// <summary>
/// <c>assistant live</c>: options to one <see cref="LiveSessionOptions"/>, the Engine's <see cref="LiveSession"/>
/// runs it, and the record file, the console lines or HUD and the overlay watch its frame reports.
/// </summary>
internal static class LiveCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr, TextReader? stdin)
    {
        var d = LiveSessionOptions.Default;
        var source = new Option<string>("--source") { Description = FrameSources.Syntax, DefaultValueFactory = _ => d.Source };
        var loopFolder = new Option<bool>("--loop") { Description = "folder or video: start again at the beginning instead of ending" };
        var modeOption = new Option<string>("--mode") { Description = "live (a changed picture restarts the answer) or snapshot (the answer finishes)", DefaultValueFactory = _ => "live" };
        var perFrame = new Option<int?>("--tokens-per-frame") { Description = "answer tokens decoded per frame at most; a longer answer continues on the next frames (default: what --latency-ms leaves room for, else 64)" };
        var hudOption = new Option<bool>("--hud") { Description = "a live console view (answer, stage timings, configuration, fps) instead of lines; needs a terminal" };
        var realtime = new Option<double?>("--realtime-fps") { Description = "capture on its own thread at this rate; the loop takes the newest frame and drops the rest" };
        var targetFps = new Option<double?>("--target-fps") { Description = "pace the loop to this many frames a second (a frame that ends early waits; slower frames are reported as running slowly)" };
        var onSourceError = new Option<string>("--on-source-error") { Description = "stop (end the run cleanly) or skip (log and go on) when the source fails", DefaultValueFactory = _ => "stop" };
        var query = new Option<string?>("--query") { Description = "a fixed question (default: the world's own questions, scored per frame)" };
        var frames = new Option<long>("--frames") { Description = "frames to run", DefaultValueFactory = _ => d.Frames!.Value };
        var duration = new Option<double?>("--duration") { Description = "seconds to run (instead of a frame count)" };
        var every = new Option<int>("--question-every")
        {
            Description = "on the world without --query: ask a new world question every N frames, scored against the truth (a question of your own stops them)",
            DefaultValueFactory = _ => d.QuestionEvery,
        };
        var speed = new Option<double>("--speed") { Description = "object speed in canvas units per frame", DefaultValueFactory = _ => d.WorldSpeed };
        var tokens = new Option<int?>("--tokens") { Description = "visual tokens V (default from the manifest)" };
        var decoder = new Option<string?>("--decoder") { Description = "decoder name (default from the manifest)" };
        var compressor = new Option<string?>("--compressor") { Description = "compressor kind for the session: quecc or tokenpacker (world sets), full, pool or query (imported sets), and quecc or tokenpacker on an imported set after `models distill`; default from the manifest" };
        var record = new Option<string?>("--record") { Description = "write the session's options, then one JSON line per frame, to this file" };
        var latency = new Option<double?>("--latency-ms") { Description = "per-answer budget: the planner picks the decoder and V (calibrating this machine once)" };
        var models = new Option<string?>("--models") { Description = "model set folder (default: models/default)" };
        var overlay = new Option<bool>("--overlay") { Description = "serve the tuning overlay (live preview, HUD, streamed answer, controls) on a local web page; runs until Ctrl+C unless --frames is given" };
        var port = new Option<int>("--port") { Description = "overlay port (0: any free one)", DefaultValueFactory = _ => 8770 };
        var bind = new Option<string>("--bind") { Description = "overlay address; anything but loopback needs --allow-remote", DefaultValueFactory = _ => "127.0.0.1" };
        var ocrModels = ReadCommand.OcrModelsOption();
        var serve = new Option<bool>("--serve")
        {
            Description = "also serve the OpenAI-compatible API (docs/SERVE.md) on loopback: a request without a picture is answered about the newest frames, as a typed question; one with a picture as `assistant serve` answers it. Runs until Ctrl+C unless --frames is given",
        };
        var servePort = new Option<int>("--serve-port") { Description = "the API's port with --serve (0: any free one)", DefaultValueFactory = _ => 8080 };
        var allowRemote = new Option<bool>("--allow-remote") { Description = "let the overlay bind beyond loopback; prints an access token every request must carry" };
        var listen = new Option<bool>("--listen") { Description = "ask by voice: the microphone (ALSA) through voice activity and, with --asr-model, speech recognition; a heard question replaces the current one as a typed line does" };
        var micDevice = new Option<string>("--mic-device") { Description = "with --listen: ALSA capture device", DefaultValueFactory = _ => "default" };
        var asrModel = new Option<string?>("--asr-model") { Description = "with --listen: a Whisper ggml model to turn utterances into questions" };
        var ep = Cli.EpOption();
        var command = new Command("live", "Run the frame loop on a moving source and answer about every frame.")
        {
            source, loopFolder, realtime, targetFps, modeOption, perFrame, hudOption, onSourceError, query, frames, duration, every, speed, tokens, decoder, compressor, record,
            latency, models, overlay, port, bind, allowRemote, serve, servePort, listen, micDevice, asrModel, ocrModels, ep,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            bool withOverlay = parse.GetValue(overlay), withApi = parse.GetValue(serve), framesGiven = parse.GetResult(frames) is { Implicit: false };
            if (!withApi && parse.GetResult(servePort) is { Implicit: false }) throw new EngineException("--serve-port goes with --serve");
            double? seconds = parse.GetValue(duration);
            if (seconds is not null && framesGiven) throw new EngineException("give --frames or --duration, not both");
            if (!withOverlay && (parse.GetValue(allowRemote) || parse.GetResult(port) is { Implicit: false } || parse.GetResult(bind) is { Implicit: false }))
                throw new EngineException("--port, --bind and --allow-remote go with --overlay");
            var options = d with
            {
                Source = parse.GetValue(source)!, LoopSource = parse.GetValue(loopFolder), WorldSpeed = parse.GetValue(speed), Query = parse.GetValue(query),
                Frames = seconds is not null || ((withOverlay || withApi) && !framesGiven) ? null : parse.GetValue(frames),  // the overlay and the API run until Ctrl+C
                DurationSeconds = seconds, QuestionEvery = parse.GetValue(every), Decoder = parse.GetValue(decoder), Compressor = parse.GetValue(compressor), Tokens = parse.GetValue(tokens),
                LatencyMs = parse.GetValue(latency), TokensPerFrame = parse.GetValue(perFrame), RealtimeFps = parse.GetValue(realtime), TargetFps = parse.GetValue(targetFps),
                Mode = AnswerModes.Parse(parse.GetValue(modeOption)!, "--mode"),
                OnSourceError = parse.GetValue(onSourceError) switch
                {
                    "stop" => SourceErrorPolicy.Stop,
                    "skip" => SourceErrorPolicy.Skip,
                    var other => throw new EngineException($"--on-source-error must be stop or skip, got '{other}'"),
                },
            };
            using var models_ = Cli.LoadModels(parse.GetValue(models), parse.GetValue(ep)!, stderr);
            using var session = LiveSession.Open(models_, options);  // validated there, before the source opens
            // A question about text on the picture is read with OCR, as ask routes it (the reader loads at the first one).
            string ocrDir = parse.GetValue(ocrModels) ?? "", epName = parse.GetValue(ep)!;
            session.ReadTextWith(() => TextReading.Load(ocrDir.Length == 0 ? null : ocrDir, epName, stderr.WriteLine));
            bool useHud = parse.GetValue(hudOption);
            if (useHud && (Console.IsOutputRedirected || !ReferenceEquals(stdout, Console.Out)))
            {
                stderr.WriteLine("note: --hud needs a terminal; printing lines instead");
                useHud = false;
            }
            var hud = useHud ? new LiveHud() : null;
            session.Observe(hud is null ? new ConsoleLines(stdout, stderr, frameLines: true) : hud);
            using var recorder = parse.GetValue(record) is { } path ? new RecordWriter(path, session.Options, session.Configuration, session.Provider) : null;
            if (recorder is not null) session.Observe(recorder);
            var hub = withOverlay ? new Overlay.OverlayHub(session.Control) : null;
            await using var overlayServer = hub is null ? null
                : await Overlay.OverlayServer.StartAsync(new Overlay.OverlayOptions(parse.GetValue(bind)!, parse.GetValue(port), parse.GetValue(allowRemote)), hub, Planner.LawPoints(models_));
            if (overlayServer is not null)
            {
                session.Observe(new OverlayPublisher(hub!));
                stdout.WriteLine($"overlay: {overlayServer.Url}{(parse.GetValue(allowRemote) ? "  (the token is shown only now; every request needs it)" : "")}");
                stdout.Flush();
            }
            using var pool = withApi ? new AnswerPool(models_, pipelines: 1, queue: 8) : null;
            var liveAnswers = withApi ? new Serve.LiveAnswers(session, new AskPipeline(models_)) : null;
            await using var api = liveAnswers is null ? null
                : await Serve.ApiServer.StartAsync(new Serve.ApiOptions(Port: parse.GetValue(servePort), ApiKey: null), models_, pool!, stderr, liveAnswers,
                    () => TextReading.Load(ocrDir.Length == 0 ? null : ocrDir, epName));
            if (api is not null)
            {
                session.Observe(liveAnswers!);
                stdout.WriteLine($"api: {api.BaseUrl} (a request without a picture is answered about the newest frames)");
                stdout.Flush();
            }
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            // Voice: the microphone, VAD and recogniser open now (a bad device or model fails before the loop); a heard question is posted as a typed one.
            using var microphone = parse.GetValue(listen) ? MicrophoneListener.Open(parse.GetValue(micDevice)!, parse.GetValue(asrModel), parse.GetValue(ep)!) : null;
            if (microphone is { Transcribes: false }) stderr.WriteLine("note: --listen without --asr-model hears utterances but cannot turn them into questions");
            var listening = microphone is null ? Task.CompletedTask : Task.Run(() => microphone.RunAsync(heard =>
            {
                if (heard.Query is { } q)
                {
                    stdout.WriteLine($"heard ({heard.Start:F2}-{heard.End:F2} s): {q}");
                    session.Post(q);
                }
                else stdout.WriteLine($"heard an utterance ({heard.Start:F2}-{heard.End:F2} s){(microphone.Transcribes ? " with no words" : "; no --asr-model to transcribe it")}");
            }, error => stderr.WriteLine($"listening stopped: {error}"), stop: stop.Token));
            // With the HUD on a terminal, keys are read without echo into its own input line; otherwise typed lines.
            bool keys = hud is not null && !Console.IsInputRedirected && ReferenceEquals(stdin, Console.In);
            var typing = keys ? hud!.ReadKeysAsync(session.Post, stop.Token) : stdin is null ? Task.CompletedTask : Task.Run(async () =>
            {
                try
                {
                    while (await stdin.ReadLineAsync(stop.Token) is { } line) session.Post(line);
                }
                catch (OperationCanceledException)
                {
                    // the session ended
                }
            });
            SessionSummary summary;
            try
            {
                summary = hud is null ? await session.RunAsync(stop.Token) : await hud.ShowAsync(() => session.RunAsync(stop.Token));
            }
            finally
            {
                stop.Cancel();  // stops the stdin reader and the listener
                await listening;
            }
            PrintSummary(summary, stdout);
            return summary.ExitCode;
        });
        return command;
    }

    private static void PrintSummary(SessionSummary s, TextWriter stdout)
    {
        stdout.WriteLine($"{s.Frames} frames from {s.Source} in {s.Seconds:F1} s ({s.Fps:F1} fps) with {s.Configuration} on {s.Provider}");
        if (s.Capture is var (published, taken, dropped))
            stdout.WriteLine($"  captured {published} frames, answered {taken}, dropped {dropped} (newest frame wins; never a queue)");
        var c = s.Counters;
        stdout.WriteLine($"  vision encoder ran on {c.VisionRuns} frames, compressor on {c.CompressorRuns}, query prefills {c.QueryPrefills}; " +
                         $"text before the image prefilled {c.PrefixPrefills} times, reused on {Math.Max(0, c.Frames - c.PrefixPrefills)} frames");
        static string P(StagePercentiles p) => p.P50 is { } a && p.P95 is { } b ? $"{a:F2}/{b:F2}" : "-";
        stdout.WriteLine($"  ms p50/p95: frame {P(s.FrameMs)}; " + string.Join("; ", s.Stages.Select(p => $"{p.Stage} {P(p)}")));
        if (s.SlowFrames > 0) stdout.WriteLine($"  {s.SlowFrames} frames took longer than the target frame time");
        if (s.LiveAccuracy is { } accuracy) stdout.WriteLine($"  live accuracy {accuracy} over frames with a known truth");
    }
}
