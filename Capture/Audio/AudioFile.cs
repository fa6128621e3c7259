using NAudio.Wave;
using NAudio.Wave.SampleProviders;

namespace Assistant.Capture.Audio;

/// <summary>
/// Reads an audio file through NAudio and hands it over as 16 kHz mono float samples in [-1, 1] (what the
/// voice-activity model and speech recognisers take): channels averaged, then resampled (WDL resampler).
/// NAudio reads WAV (PCM 8/16/24/32-bit, IEEE float) and AIFF on every platform; its MP3/AAC readers need
/// Windows codecs, so other formats (MP3, FLAC, Ogg, M4A, ...) are decoded by ffmpeg when it is installed
/// (to 16 kHz mono WAV on a pipe, read by NAudio), and are otherwise a one-line error saying so.
/// </summary>
public static class AudioFile
{
    /// <summary>The rate every loaded file is resampled to (16 kHz, what the VAD and Whisper take).</summary>
    public const int SampleRate = 16_000;

    /// <summary>Largest audio file read (2 GB).</summary>
    public const long MaxFileBytes = 2L << 30;

    /// <summary>Longest audio decoded (one hour: 230 MB of samples); a longer file, or a header claiming one, is refused.</summary>
    public const int MaxSeconds = 3600;

    /// <summary>Decodes an audio file to 16 kHz mono floats in [-1, 1]; an unreadable one is a one-line <see cref="CaptureException"/>.</summary>
    public static float[] Load16kMono(string path)
    {
        RegularFile.Check(path, "audio file", MaxFileBytes);  // a FIFO blocked, /dev/zero streamed without end
        WaveStream reader;
        try
        {
            reader = Path.GetExtension(path).ToLowerInvariant() switch
            {
                ".wav" or ".wave" => new WaveFileReader(path),
                ".aif" or ".aiff" => new AiffFileReader(path),
                _ => new WaveFileReader(new MemoryStream(DecodeWithFfmpeg(path))),
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
            while ((n = samples.Read(buffer.AsSpan())) > 0)
            {
                all.AddRange(buffer.AsSpan(0, n));
                if (all.Count > (long)SampleRate * MaxSeconds)
                    throw new CaptureException($"cannot read {path}: it is longer than the {MaxSeconds / 60} minutes of audio read at once");
            }
            return [.. all];
        }
    }

    /// <summary>Any format ffmpeg knows, as 16 kHz mono 16-bit WAV bytes.</summary>
    private static byte[] DecodeWithFfmpeg(string path)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("ffmpeg") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-v", "error", "-nostdin", "-i", path, "-f", "wav", "-acodec", "pcm_s16le", "-ac", "1", "-ar", SampleRate.ToString(System.Globalization.CultureInfo.InvariantCulture), "-" })
            psi.ArgumentList.Add(a);
        System.Diagnostics.Process? ffmpeg;
        try
        {
            ffmpeg = System.Diagnostics.Process.Start(psi);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            ffmpeg = null;
        }
        if (ffmpeg is null)
            throw new CaptureException($"cannot read {path}: {Path.GetExtension(path)} needs ffmpeg, which is not installed (WAV and AIFF are read without it)");
        using (ffmpeg)
        {
            var err = ffmpeg.StandardError.ReadToEndAsync();
            long limit = 44 + 2L * SampleRate * MaxSeconds;  // the WAV header and an hour of 16-bit samples
            var wav = RegularFile.ReadAtMost(ffmpeg.StandardOutput.BaseStream, limit);
            if (wav is null)
            {
                ffmpeg.Kill();
                throw new CaptureException($"cannot read {path}: it is longer than the {MaxSeconds / 60} minutes of audio read at once");
            }
            ffmpeg.WaitForExit();
            if (ffmpeg.ExitCode != 0 || wav.Length <= 44)
                throw new CaptureException($"cannot read {path}: not an audio file ffmpeg can decode ({err.Result.Trim().Split('\n')[^1]})");
            return wav;
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
