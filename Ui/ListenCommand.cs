using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Assistant.Engine;

namespace Assistant.Ui;

/// <summary>
/// <c>assistant listen --file PATH [--asr-model M]</c>: where the speech is (each utterance's start and end,
/// Silero VAD) and, with a Whisper model, what each utterance asks.
/// </summary>
internal static class ListenCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var file = new Option<string?>("--file") { Description = "audio file: WAV or AIFF, or MP3, FLAC, Ogg and the other formats ffmpeg reads (any rate and channel count; resampled to 16 kHz mono)" };
        var mic = new Option<bool>("--mic") { Description = "the microphone (ALSA on Linux, WASAPI on Windows), printing utterances as they end; Ctrl+C stops" };
        var device = new Option<string>("--device") { Description = "with --mic: ALSA capture device (Windows: part of the device name)", DefaultValueFactory = _ => "default" };
        var seconds = new Option<double?>("--seconds") { Description = "with --mic: stop after this much audio" };
        var vadModels = new Option<string?>("--vad-models") { Description = "folder with silero_vad_v5.onnx (default: $ASSISTANT_VAD_MODELS, else the cache tools/fetch_models.sh fills)" };
        var threshold = new Option<float>("--threshold") { Description = "speech probability that starts an utterance", DefaultValueFactory = _ => 0.5f };
        var minSilence = new Option<int>("--min-silence-ms") { Description = "silence that ends an utterance", DefaultValueFactory = _ => 300 };
        var asrModel = new Option<string?>("--asr-model") { Description = $"transcribe each utterance with Whisper: {MicrophoneListener.WhereToGetAModel}" };
        var ep = Cli.EpOption();
        var json = Cli.JsonOption();
        var command = new Command("listen", "Find the utterances in audio with voice-activity detection (Silero VAD): start and end of each.")
        {
            file, mic, device, seconds, vadModels, threshold, minSilence, asrModel, ep, json,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            var path = parse.GetValue(file);
            bool fromMic = parse.GetValue(mic);
            if ((path is null) == !fromMic) throw new EngineException("give exactly one of --file PATH (a WAV or AIFF file) or --mic");
            if (parse.GetValue(seconds) is { } limit && !(limit > 0)) throw new EngineException($"--seconds must be positive, got {limit}");
            float t = parse.GetValue(threshold);
            if (!(t > 0.15f && t < 1f)) throw new EngineException($"--threshold must be in (0.15, 1), got {t}");
            int silence = parse.GetValue(minSilence);
            if (silence is < 32 or > 10_000) throw new EngineException($"--min-silence-ms must be in 32..10000, got {silence}");
            if (fromMic)
                return await ListenToMicrophone(parse.GetValue(device)!, parse.GetValue(seconds), parse.GetValue(vadModels), parse.GetValue(asrModel),
                    t, silence, parse.GetValue(ep)!, parse.GetValue(json), stdout, stderr, cancellation);
            var asr = parse.GetValue(asrModel);
            var (heard, audioSeconds, hearing) = await SpeechQueries.HearFileAsync(path!, asr, parse.GetValue(ep)!, parse.GetValue(vadModels), t, silence, stderr.WriteLine, cancellation);
            var utterances = heard;
            double ms = hearing.TotalMilliseconds;
            if (parse.GetValue(json))
            {
                stdout.WriteLine(JsonSerializer.Serialize(new
                {
                    file = path,
                    audio_seconds = Math.Round(audioSeconds, 3),
                    utterances = heard.Select(h => new { start = Math.Round(h.Start, 3), end = Math.Round(h.End, 3), text = h.Query }),
                    vad_asr_ms = Math.Round(ms, 1),
                }));
                return 0;
            }
            for (int i = 0; i < utterances.Count; i++)
                stdout.WriteLine($"utterance {i + 1}: {utterances[i].Start:F2} s - {utterances[i].End:F2} s ({utterances[i].Duration:F2} s)" +
                                 (heard[i].Query is { } q ? $": {q}" : ""));
            stdout.WriteLine($"{utterances.Count} utterances in {audioSeconds:F2} s of audio  | {(asr is null ? "vad" : "vad + asr")} {ms:F0} ms ({audioSeconds * 1000 / Math.Max(ms, 1e-9):F0}x real time)");
            return 0;
        });
        return command;
    }

    /// <summary>Streams the microphone through the VAD (and recogniser), printing each utterance when it ends.</summary>
    private static async Task<int> ListenToMicrophone(string device, double? limit, string? vadDir, string? asrModel, float threshold, int minSilenceMs,
        string ep, bool asJson, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        using var microphone = MicrophoneListener.Open(device, asrModel, ep, vadDir, threshold, minSilenceMs);
        int count = 0;
        void Print(HeardUtterance h)
        {
            count++;
            stdout.WriteLine(asJson
                ? JsonSerializer.Serialize(new { start = Math.Round(h.Start, 3), end = Math.Round(h.End, 3), text = h.Query })
                : $"utterance {count}: {h.Start:F2} s - {h.End:F2} s ({h.Duration:F2} s)" + (h.Query is { } q ? $": {q}" : ""));
            stdout.Flush();
        }
        if (!asJson) stdout.WriteLine($"listening on '{microphone.Device}'{(limit is { } l ? $" for {l:G4} s" : "; Ctrl+C stops")}");
        string? failure = null;
        await microphone.RunAsync(Print, error => failure = error, limit, cancellation);
        if (failure is not null) throw new EngineException($"the microphone failed: {failure}");
        if (!asJson) stdout.WriteLine($"{count} utterances in {microphone.Seconds:F2} s of audio{(microphone.Overruns > 0 ? $", {microphone.Overruns} overruns (samples lost)" : "")}");
        return 0;
    }
}
