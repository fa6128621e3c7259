using Assistant.Capture;
using Assistant.Capture.Audio;
using Assistant.Inference;
using Assistant.Inference.Audio;

namespace Assistant.Engine;

/// <summary>
/// The one microphone -> voice activity -> (speech recognition) pipeline, for <c>listen --mic</c> and
/// <c>live --listen</c>. <see cref="Open"/> opens the VAD, the recogniser and the device (a bad one fails there,
/// before anything runs); <see cref="RunAsync"/> hands each utterance, as it ends, to a callback. Owns and
/// disposes all three.
/// </summary>
public sealed class MicrophoneListener : IDisposable
{
    private readonly SileroVad _vad;
    private readonly WhisperRecognizer? _recognizer;
    private readonly IMicrophone _microphone;
    private readonly SpeechListener _listener;

    private MicrophoneListener(SileroVad vad, WhisperRecognizer? recognizer, IMicrophone microphone, VadOptions options)
    {
        _vad = vad;
        _recognizer = recognizer;
        _microphone = microphone;
        _listener = new SpeechListener(vad, options, recognizer);
    }

    /// <param name="device">The capture device (ALSA name on Linux).</param>
    /// <param name="asrModel">A Whisper ggml model; null: utterances without words.</param>
    /// <param name="ep">The execution provider for the VAD.</param>
    /// <param name="vadModels">Where the Silero VAD model is; null: the fetched cache.</param>
    /// <param name="threshold">Speech probability threshold.</param>
    /// <param name="minSilenceMs">Silence that ends an utterance.</param>
    public static MicrophoneListener Open(string device, string? asrModel, string ep = "auto", string? vadModels = null,
        float threshold = 0.5f, int minSilenceMs = 300)
    {
        var options = new VadOptions(threshold, MinSilenceMs: minSilenceMs);
        var vad = SileroVad.Load(new SessionFactory(SessionConfig.FromOption(ep)), vadModels);
        WhisperRecognizer? recognizer = null;
        try
        {
            recognizer = asrModel is null ? null : WhisperRecognizer.Load(asrModel);
            return new MicrophoneListener(vad, recognizer, Microphones.Open(device), options);
        }
        catch
        {
            vad.Dispose();
            recognizer?.Dispose();
            throw;
        }
    }

    /// <summary>Where a speech-recognition model comes from, for help text.</summary>
    public const string WhereToGetAModel = WhisperRecognizer.WhereToGetOne;

    /// <summary>The device's name.</summary>
    public string Device => _microphone.Device;

    /// <summary>Whether utterances are turned into questions.</summary>
    public bool Transcribes => _recognizer is not null;

    /// <summary>Seconds of audio heard so far.</summary>
    public double Seconds => _listener.Seconds;

    /// <summary>Times the device lost samples.</summary>
    public int Overruns => _microphone.Overruns;

    /// <summary>
    /// Reads the microphone until <paramref name="stop"/> or <paramref name="seconds"/> of audio, calling
    /// <paramref name="heard"/> as each utterance ends (an utterance still open at the end is finished). A
    /// device failure ends it with <paramref name="failed"/> (the caller goes on without the microphone).
    /// </summary>
    public async Task RunAsync(Action<HeardUtterance> heard, Action<string> failed, double? seconds = null, CancellationToken stop = default)
    {
        var frame = new float[SileroVad.FrameSamples];
        try
        {
            while (!stop.IsCancellationRequested && (seconds is null || _listener.Seconds < seconds))
            {
                _microphone.Read(frame);
                if (await _listener.PushAsync(frame, stop) is { } h) heard(h);
            }
            if (await _listener.FinishAsync(CancellationToken.None) is { } last) heard(last);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // stopped while transcribing
        }
        catch (CaptureException e)
        {
            failed(e.Message);
        }
    }

    /// <summary>Frees the device, the recogniser and the VAD.</summary>
    public void Dispose()
    {
        _microphone.Dispose();
        _recognizer?.Dispose();
        _vad.Dispose();
    }
}
