namespace Assistant.Tests;

/// <summary>Test audio made by real tools: speech from espeak-ng, silence, noise and layout by sox.</summary>
public static class Speech
{
    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "assistant-tests", "audio-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>espeak-ng saying <paramref name="text"/>, as 16 kHz mono WAV.</summary>
    public static string Say(string dir, string text, string name)
    {
        var raw = Path.Combine(dir, name + "-raw.wav");
        Tool.Run("espeak-ng", ["-w", raw, text]);
        var wav = Path.Combine(dir, name + ".wav");
        Tool.Run("sox", [raw, "-r", "16000", "-c", "1", wav]);
        return wav;
    }

    /// <summary>Speaks <paramref name="text"/> with the given seconds of silence before and after: dir/name-padded.wav.</summary>
    public static string SayPadded(string dir, string text, string name, double before, double after)
    {
        var padded = Path.Combine(dir, name + "-padded.wav");
        Tool.Run("sox", [Say(dir, text, name), padded, "pad", Seconds(before), Seconds(after)]);
        return padded;
    }

    private static string Seconds(double s) => s.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Each of <paramref name="texts"/> spoken, with 1.0 s of silence before, between and after them, as one 16 kHz mono WAV.</summary>
    public static string SayApart(string dir, params string[] texts)
    {
        var gap = Path.Combine(dir, "gap.wav");
        Sox("-n", "-r", "16000", "-c", "1", "-b", "16", gap, "trim", "0", "1.0");
        var parts = new List<string> { gap };
        for (int i = 0; i < texts.Length; i++)
        {
            parts.Add(Say(dir, texts[i], $"part{i}"));
            parts.Add(gap);
        }
        var all = Path.Combine(dir, "apart.wav");
        Sox([.. parts, all]);
        return all;
    }

    /// <summary>Re-encodes an audio file with ffmpeg (the format from the output's extension: mp3, flac, ogg, ...).</summary>
    public static void Encode(string input, string output) => Tool.Run("ffmpeg", ["-v", "error", "-nostdin", "-y", "-i", input, output]);

    /// <summary>Runs sox with these arguments (the last one is the output file).</summary>
    public static void Sox(params string[] args) => Tool.Run("sox", args);

    /// <summary>
    /// A private HOME whose .asoundrc defines the ALSA capture device "speech": ALSA's file plugin playing
    /// <paramref name="text"/> (spoken, with 1.0 s of silence before and 1.5 s after) as if from a microphone.
    /// Returns the HOME and the WAV of what the device plays.
    /// </summary>
    public static (string Home, string Wav) AlsaSpeechDevice(string text)
    {
        var home = TempDir();
        var said = Say(home, text, "said");
        var wav = Path.Combine(home, "padded.wav");
        Sox(said, wav, "pad", "1.0", "1.5");
        var raw = Path.Combine(home, "speech.raw");
        Sox(wav, "-t", "raw", "-e", "signed-integer", "-b", "16", raw);
        File.WriteAllText(Path.Combine(home, ".asoundrc"),
            $"pcm.speech {{\n type file\n slave.pcm null\n file \"/dev/null\"\n infile \"{raw}\"\n format \"raw\"\n}}\n");
        return (home, wav);
    }

    /// <summary>16-bit PCM samples of a mono WAV as floats (a plain reader, independent of the code under test).</summary>
    public static float[] ReadMono16(string wav)
    {
        var bytes = File.ReadAllBytes(wav);
        int at = 12;
        while (at + 8 <= bytes.Length)
        {
            var id = System.Text.Encoding.ASCII.GetString(bytes, at, 4);
            int size = BitConverter.ToInt32(bytes, at + 4);
            if (id == "data")
                return Enumerable.Range(0, size / 2).Select(i => BitConverter.ToInt16(bytes, at + 8 + 2 * i) / 32768f).ToArray();
            at += 8 + size + (size & 1);
        }
        throw new InvalidOperationException($"no data chunk in {wav}");
    }

    /// <summary>Where sound is: the first and last 10 ms window whose RMS exceeds <paramref name="rms"/>, in seconds.</summary>
    public static (double Start, double End) SoundExtent(float[] samples, int rate = 16_000, float rms = 0.01f)
    {
        int w = rate / 100;
        var loud = Enumerable.Range(0, samples.Length / w)
            .Where(k => Math.Sqrt(samples.AsSpan(k * w, w).ToArray().Select(x => (double)x * x).Average()) > rms).ToList();
        return ((double)loud[0] * w / rate, (double)(loud[^1] + 1) * w / rate);
    }
}
