using NAudio.Wave;
using NAudio.Wave.SampleProviders;

namespace Assistant.Capture.Audio;

/// <summary>
/// Reads an audio file through NAudio and hands it over as 16 kHz mono float samples in [-1, 1] (what the
/// voice-activity model and speech recognisers take): channels averaged, then resampled (WDL resampler).
/// On Linux NAudio reads WAV (PCM 8/16/24/32-bit, IEEE float) and AIFF; other formats are a one-line
/// error suggesting a conversion.
/// </summary>
public static class AudioFile
{
    public const int SampleRate = 16_000;

    public static float[] Load16kMono(string path)
    {
        if (!File.Exists(path)) throw new CaptureException($"audio file not found: {path}");
        WaveStream reader;
        try
        {
            reader = Path.GetExtension(path).ToLowerInvariant() switch
            {
                ".wav" or ".wave" => new WaveFileReader(path),
                ".aif" or ".aiff" => new AiffFileReader(path),
                var ext => throw new CaptureException($"cannot read {path}: {(ext.Length == 0 ? "no extension" : ext)} is not a supported audio format here (WAV or AIFF; convert with: ffmpeg -i IN -ar 16000 -ac 1 OUT.wav)"),
            };
        }
        catch (Exception e) when (e is FormatException or InvalidDataException or EndOfStreamException or ArgumentException)
        {
            throw new CaptureException($"cannot read {path}: not a valid audio file ({e.Message.Split('\n')[0]})");
        }
        using (reader)
        {
            ISampleProvider samples;
            try
            {
                samples = reader.ToSampleProvider();
            }
            catch (ArgumentException e)
            {
                throw new CaptureException($"cannot read {path}: unsupported encoding {reader.WaveFormat.Encoding} ({e.Message.Split('\n')[0]})");
            }
            if (samples.WaveFormat.Channels > 1) samples = new Downmix(samples);
            if (samples.WaveFormat.SampleRate != SampleRate) samples = new WdlResamplingSampleProvider(samples, SampleRate);
            var all = new List<float>();
            var buffer = new float[SampleRate];
            int n;
            while ((n = samples.Read(buffer.AsSpan())) > 0) all.AddRange(buffer.AsSpan(0, n));
            return [.. all];
        }
    }

    /// <summary>Averages interleaved channels into one.</summary>
    internal sealed class Downmix(ISampleProvider source) : ISampleProvider
    {
        private readonly int _channels = source.WaveFormat.Channels;
        private float[] _buffer = [];

        public WaveFormat WaveFormat { get; } = WaveFormat.CreateIeeeFloatWaveFormat(source.WaveFormat.SampleRate, 1);

        public int Read(Span<float> destination)
        {
            int need = destination.Length * _channels;
            if (_buffer.Length < need) _buffer = new float[need];
            int read = source.Read(_buffer.AsSpan(0, need));
            int frames = read / _channels;
            for (int f = 0; f < frames; f++)
            {
                float sum = 0;
                for (int c = 0; c < _channels; c++) sum += _buffer[f * _channels + c];
                destination[f] = sum / _channels;
            }
            return frames;
        }
    }
}
