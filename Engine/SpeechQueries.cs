using Assistant.Inference.Audio;

namespace Assistant.Engine;

/// <summary>An utterance (seconds from the start of the audio) and, when a recogniser heard words in it, the question they make.</summary>
public sealed record HeardUtterance(double Start, double End, string? Query)
{
    internal HeardUtterance(Utterance span, string? query) : this(span.Start, span.End, query)
    {
    }

    /// <summary>Length in seconds.</summary>
    public double Duration => End - Start;
}

/// <summary>
/// Speech to questions: voice activity cuts the audio into utterances, the recogniser (if any) is called
/// once per utterance on exactly its samples, and its text goes through the same check as a typed
/// question (<see cref="AskPipeline.ValidateQuery"/>); an utterance that reads as nothing has no query.
/// </summary>
public static class SpeechQueries
{
    /// <summary>
    /// An audio file (any format NAudio or ffmpeg reads, resampled to 16 kHz mono) through the VAD and, with
    /// <paramref name="asrModel"/>, the recogniser: its utterances, the audio's length in seconds, and the
    /// time the VAD and recogniser took (loading excluded).
    /// </summary>
    public static async Task<(IReadOnlyList<HeardUtterance> Heard, double AudioSeconds, TimeSpan Hearing)> HearFileAsync(string path, string? asrModel, string ep,
        string? vadModels, float threshold, int minSilenceMs, Action<string>? note = null, CancellationToken cancellation = default)
    {
        var samples = Capture.Audio.AudioFile.Load16kMono(path);
        using var vad = SileroVad.Load(Providers.Factory(ep, note), vadModels);
        using var recognizer = asrModel is null ? null : WhisperRecognizer.Load(asrModel);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var heard = await HearAsync(vad, samples, new VadOptions(threshold, MinSilenceMs: minSilenceMs), recognizer, cancellation);
        return (heard, (double)samples.Length / Capture.Audio.AudioFile.SampleRate, clock.Elapsed);
    }

    /// <summary>The utterances of <paramref name="samples"/> (16 kHz mono) and, with <paramref name="recognizer"/>, their questions.</summary>
    public static async Task<IReadOnlyList<HeardUtterance>> HearAsync(SileroVad vad, float[] samples, VadOptions options,
        ISpeechRecognizer? recognizer, CancellationToken cancellation = default)
    {
        var heard = new List<HeardUtterance>();
        foreach (var u in UtteranceCutter.Cut(vad, samples, options))
        {
            int from = (int)Math.Round(u.Start * SileroVad.SampleRate), to = Math.Min(samples.Length, (int)Math.Round(u.End * SileroVad.SampleRate));
            heard.Add(new HeardUtterance(u, await QueryAsync(recognizer, samples[from..to], cancellation)));
        }
        return heard;
    }

    /// <summary>The recogniser's text for one utterance, checked as a typed question; null without a recogniser or words.</summary>
    internal static async Task<string?> QueryAsync(ISpeechRecognizer? recognizer, float[] utterance, CancellationToken cancellation)
    {
        if (recognizer is null) return null;
        var text = await recognizer.TranscribeAsync(utterance, cancellation);
        try
        {
            return AskPipeline.ValidateQuery(text);
        }
        catch (EngineException)
        {
            return null;  // nothing said, or an absurdly long hallucination: not a question
        }
    }
}

/// <summary>
/// Hears a live stream (the microphone) frame by frame: each 512-sample frame goes through the VAD, and
/// when an utterance ends it comes back, padded, with its question if a recogniser is given. Keeps only the
/// recent audio (the open utterance and a second before it), so it can run for hours.
/// </summary>
public sealed class SpeechListener(SileroVad vad, VadOptions options, ISpeechRecognizer? recognizer)
{
    private const double FrameSeconds = (double)SileroVad.FrameSamples / SileroVad.SampleRate;
    private readonly UtteranceCutter _cutter = new(options, FrameSeconds);
    private readonly List<float> _recent = [];
    private long _recentStart, _samples;  // stream index of _recent[0]; samples heard in all

    /// <summary>Seconds of audio heard so far.</summary>
    public double Seconds => (double)_samples / SileroVad.SampleRate;

    /// <summary>Feeds one 512-sample frame; the utterance that ended with it, if one did.</summary>
    public async Task<HeardUtterance?> PushAsync(float[] frame, CancellationToken cancellation = default)
    {
        _recent.AddRange(frame);
        _samples += frame.Length;
        var ended = _cutter.Push(vad.Process(frame));
        if (ended is { } u) return await Heard(u, cancellation);
        if (!_cutter.InSpeech && _recent.Count > 2 * SileroVad.SampleRate)
        {
            int drop = _recent.Count - SileroVad.SampleRate;  // keep one second for the next utterance's padding
            _recent.RemoveRange(0, drop);
            _recentStart += drop;
        }
        return null;
    }

    /// <summary>Ends the stream: an utterance still open ends here.</summary>
    public async Task<HeardUtterance?> FinishAsync(CancellationToken cancellation = default) =>
        _cutter.Finish() is { } u ? await Heard(u, cancellation) : null;

    private async Task<HeardUtterance> Heard(Utterance u, CancellationToken cancellation)
    {
        double pad = options.PadMs / 1000.0;
        var padded = new Utterance(Math.Max((double)_recentStart / SileroVad.SampleRate, u.Start - pad), Math.Min(Seconds, u.End + pad));
        int from = (int)(Math.Round(padded.Start * SileroVad.SampleRate) - _recentStart);
        int to = (int)Math.Min(_recent.Count, Math.Round(padded.End * SileroVad.SampleRate) - _recentStart);
        var samples = _recent.GetRange(from, Math.Max(0, to - from)).ToArray();
        return new HeardUtterance(padded, await SpeechQueries.QueryAsync(recognizer, samples, cancellation));
    }
}
