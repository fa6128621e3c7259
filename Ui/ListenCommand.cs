using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Assistant.Capture.Audio;
using Assistant.Engine;
using Assistant.Inference;
using Assistant.Inference.Audio;

namespace Assistant.Ui;

/// <summary>
/// <c>assistant listen --file PATH [--asr-model M]</c>: where the speech is (each utterance's start and end,
/// Silero VAD) and, with a Whisper model, what each utterance asks.
/// </summary>
internal static class ListenCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var file = new Option<string?>("--file") { Description = "audio file (WAV or AIFF, any rate and channel count; resampled to 16 kHz mono)" };
        var mic = new Option<bool>("--mic") { Description = "the microphone (not built yet)" };
        var vadModels = new Option<string?>("--vad-models") { Description = "folder with silero_vad_v5.onnx (default: $ASSISTANT_VAD_MODELS, else the cache tools/fetch_models.sh fills)" };
        var threshold = new Option<float>("--threshold") { Description = "speech probability that starts an utterance", DefaultValueFactory = _ => 0.5f };
        var minSilence = new Option<int>("--min-silence-ms") { Description = "silence that ends an utterance", DefaultValueFactory = _ => 300 };
        var asrModel = new Option<string?>("--asr-model") { Description = $"transcribe each utterance with Whisper: {WhisperRecognizer.WhereToGetOne}" };
        var ep = Cli.EpOption();
        var json = Cli.JsonOption();
        var command = new Command("listen", "Find the utterances in audio with voice-activity detection (Silero VAD): start and end of each.")
        {
            file, mic, vadModels, threshold, minSilence, asrModel, ep, json,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            var path = parse.GetValue(file);
            if (parse.GetValue(mic))
                throw new EngineException("--mic is not built yet (ALSA/WASAPI capture is planned); record to a WAV file and use --file");
            if (path is null) throw new EngineException("give --file PATH (a WAV or AIFF file)");
            float t = parse.GetValue(threshold);
            if (!(t > 0.15f && t < 1f)) throw new EngineException($"--threshold must be in (0.15, 1), got {t}");
            int silence = parse.GetValue(minSilence);
            if (silence is < 32 or > 10_000) throw new EngineException($"--min-silence-ms must be in 32..10000, got {silence}");
            var samples = AudioFile.Load16kMono(path);
            var factory = new SessionFactory(new SessionConfig(ExecutionProviders.Parse(parse.GetValue(ep)!)));
            if (factory.FallbackReason is { } why) stderr.WriteLine($"note: {why}; running on the CPU");
            using var vad = SileroVad.Load(factory, parse.GetValue(vadModels));
            using var recognizer = parse.GetValue(asrModel) is { } model ? WhisperRecognizer.Load(model) : null;
            var clock = Stopwatch.StartNew();
            var heard = await SpeechQueries.HearAsync(vad, samples, new VadOptions(t, MinSilenceMs: silence), recognizer, cancellation);
            var utterances = heard.Select(h => h.Span).ToList();
            double ms = clock.Elapsed.TotalMilliseconds, seconds = (double)samples.Length / AudioFile.SampleRate;
            if (parse.GetValue(json))
            {
                stdout.WriteLine(JsonSerializer.Serialize(new
                {
                    file = path,
                    audio_seconds = Math.Round(seconds, 3),
                    utterances = heard.Select(h => new { start = Math.Round(h.Span.Start, 3), end = Math.Round(h.Span.End, 3), text = h.Query }),
                    vad_asr_ms = Math.Round(ms, 1),
                }));
                return 0;
            }
            for (int i = 0; i < utterances.Count; i++)
                stdout.WriteLine($"utterance {i + 1}: {utterances[i].Start:F2} s - {utterances[i].End:F2} s ({utterances[i].Duration:F2} s)" +
                                 (heard[i].Query is { } q ? $": {q}" : ""));
            stdout.WriteLine($"{utterances.Count} utterances in {seconds:F2} s of audio  | {(recognizer is null ? "vad" : "vad + asr")} {ms:F0} ms ({seconds * 1000 / Math.Max(ms, 1e-9):F0}x real time)");
            return 0;
        });
        return command;
    }
}
