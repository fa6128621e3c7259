using NAudio.CoreAudioApi;
using NAudio.Wave;
using NAudio.Wave.SampleProviders;

namespace Assistant.Capture.Audio;

/// <summary>
/// The microphone on Windows through NAudio's WASAPI capture: the device's shared-mode format, buffered,
/// averaged to mono and resampled to 16 kHz. Run under Wine 8 (its WASAPI over ALSA) by tests/Ui.Tests/Windows:
/// it opens, streams and the VAD hears an utterance; not yet run on Windows itself. Uses NAudio's event-based
/// WasapiCapture, which 3.x marks obsolete in favour of WasapiRecorder; the older API is the one whose
/// behaviour is documented and known, and it stays until the new one can be tried on Windows.
/// Owns the capture.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("windows")]
#pragma warning disable CS0618  // WasapiCapture: see above
public sealed class WasapiMicrophone : IMicrophone
{
    private static readonly TimeSpan Silence = TimeSpan.FromSeconds(2);
    private readonly WasapiCapture _capture;
    private readonly BufferedWaveProvider _buffer;
    private readonly ISampleProvider _samples;
    private readonly AutoResetEvent _arrived = new(false);
    private Exception? _stopped;

    /// <summary>Opens the default (or named) WASAPI capture endpoint (Windows; run under Wine, not yet on Windows hardware).</summary>
    /// <param name="device">"default", or part of an endpoint's friendly name.</param>
    public WasapiMicrophone(string device = "default")
    {
        if (!OperatingSystem.IsWindows()) throw new CaptureException("WASAPI capture needs Windows");
        try
        {
            _capture = device == "default" ? new WasapiCapture() : new WasapiCapture(Find(device));
        }
        catch (Exception e) when (e is not CaptureException)
        {
            throw CannotOpen(device, e);
        }
        Device = device;
        _buffer = new BufferedWaveProvider(_capture.WaveFormat) { DiscardOnBufferOverflow = true, ReadFully = false };
        ISampleProvider samples = _buffer.ToSampleProvider();
        if (samples.WaveFormat.Channels > 1) samples = new AudioFile.Downmix(samples);
        if (samples.WaveFormat.SampleRate != AudioFile.SampleRate) samples = new WdlResamplingSampleProvider(samples, AudioFile.SampleRate);
        _samples = samples;
        _capture.DataAvailable += (_, a) => { _buffer.AddSamples(a.Buffer, 0, a.BytesRecorded); _arrived.Set(); };
        _capture.RecordingStopped += (_, a) => { _stopped = a.Exception ?? new InvalidOperationException("recording stopped"); _arrived.Set(); };
        try
        {
            _capture.StartRecording();  // the endpoint is initialised here: a device that refuses the mix format fails now
        }
        catch (Exception e)
        {
            _capture.Dispose();
            _arrived.Dispose();
            throw CannotOpen(device, e);
        }
    }

    /// <summary>The one error for an endpoint that cannot be had, whether finding it or starting it failed.</summary>
    private static CaptureException CannotOpen(string device, Exception e) =>
        new($"cannot open microphone '{device}': {e.Message.Split('\n')[0]}");

    /// <summary>The endpoint as opened.</summary>
    public string Device { get; }

    /// <summary>Always 0: WASAPI's buffered provider discards overflow without saying so.</summary>
    public int Overruns => 0;  // BufferedWaveProvider discards silently

    /// <summary>Fills <paramref name="destination"/> with the next 16 kHz mono samples, blocking until they are there.</summary>
    public void Read(Span<float> destination)
    {
        int done = 0;
        while (done < destination.Length)
        {
            int n = _samples.Read(destination[done..]);
            done += n;
            if (n > 0) continue;
            if (_stopped is { } e) throw new CaptureException($"microphone '{Device}' stopped: {e.Message.Split('\n')[0]}");
            if (!_arrived.WaitOne(Silence)) throw new CaptureException($"microphone '{Device}' delivered nothing for {Silence.TotalSeconds:G} s");
        }
    }

    private static MMDevice Find(string name)
    {
        using var devices = new MMDeviceEnumerator();
        var active = devices.EnumerateAudioEndPoints(DataFlow.Capture, DeviceState.Active).ToList();
        return active.FirstOrDefault(d => d.FriendlyName.Contains(name, StringComparison.OrdinalIgnoreCase))
            ?? throw new CaptureException($"no microphone named like '{name}'; there are: {string.Join(", ", active.Select(d => d.FriendlyName))}");
    }

    /// <summary>Stops capture and frees the endpoint.</summary>
    public void Dispose()
    {
        _capture.StopRecording();
        _capture.Dispose();
        _arrived.Dispose();
    }
}
#pragma warning restore CS0618
