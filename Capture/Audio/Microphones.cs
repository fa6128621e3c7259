namespace Assistant.Capture.Audio;

/// <summary>A microphone as 16 kHz mono float samples; <see cref="Read"/> blocks until they are recorded.</summary>
public interface IMicrophone : IDisposable
{
    /// <summary>The device name as opened.</summary>
    string Device { get; }

    /// <summary>Times samples were lost because the reader fell behind (where the platform reports it).</summary>
    int Overruns { get; }

    /// <summary>Fills <paramref name="destination"/> with the next mono samples at 16 kHz, blocking until they are there.</summary>
    void Read(Span<float> destination);
}

/// <summary>The platform's microphone: WASAPI on Windows (untested), ALSA elsewhere.</summary>
public static class Microphones
{
    /// <param name="device">"default", an ALSA PCM name, or on Windows part of the device's name.</param>
    public static IMicrophone Open(string device = "default") =>
        OperatingSystem.IsWindows() ? new WasapiMicrophone(device) : new AlsaMicrophone(device);
}
