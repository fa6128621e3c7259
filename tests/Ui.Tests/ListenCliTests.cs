using System.Text.Json;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

public sealed class ListenCliTests
{
    [Fact]
    public async Task Listen_PrintsEachUtterance_AndJsonHasTheirTimes()
    {
        var dir = Speech.TempDir();
        var wav = Speech.SayPadded(dir, "Read the screen please.", "s", 1.0, 1.0);
        var (code, stdout, stderr) = await CliRun.Run("listen", "--file", wav);
        Assert.True(code == 0, stderr);
        Assert.Matches(@"^utterance 1: 0\.9\d s - \d\.\d\d s \(\d\.\d\d s\)\n1 utterances in \d\.\d\d s of audio", stdout.Replace("\r", ""));

        (code, stdout, _) = await CliRun.Run("listen", "--file", wav, "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(stdout);
        var u = Assert.Single(doc.RootElement.GetProperty("utterances").EnumerateArray());
        Assert.InRange(u.GetProperty("start").GetDouble(), 0.85, 1.15);
        Assert.True(u.GetProperty("end").GetDouble() > u.GetProperty("start").GetDouble() + 0.5);
    }

    [Theory]
    [InlineData(new[] { "listen" }, "give exactly one of --file PATH")]
    [InlineData(new[] { "listen", "--mic", "--file", "a.wav" }, "give exactly one of --file PATH")]
    [InlineData(new[] { "listen", "--mic", "--device", "hw:9,0", "--seconds", "1" }, "cannot open microphone 'hw:9,0'")]
    [InlineData(new[] { "listen", "--mic", "--seconds", "0" }, "--seconds must be positive")]
    [InlineData(new[] { "listen", "--file", "/no/such.wav" }, "audio file not found")]
    [InlineData(new[] { "listen", "--file", "x.wav", "--threshold", "2" }, "--threshold must be in")]
    [InlineData(new[] { "listen", "--file", "/tmp/x.ogg" }, "audio file not found")]
    public async Task Listen_BadInput_IsOneLine(string[] args, string message)
    {
        var (code, _, stderr) = await CliRun.Run(args);
        Assert.Equal(2, code);
        Assert.Contains(message, stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Fact]
    public async Task Listen_ACorruptCompressedFile_IsOneLine()
    {
        var ogg = Path.Combine(Speech.TempDir(), "x.ogg");
        await File.WriteAllBytesAsync(ogg, [1, 2, 3]);
        var (code, _, stderr) = await CliRun.Run("listen", "--file", ogg);
        Assert.Equal(2, code);
        Assert.Contains("not an audio file ffmpeg can decode", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }
}

public sealed class ListenAsrCliTests
{
    [Fact]
    public async Task Listen_WithAnAsrModelThatIsMissingOrJunk_IsAClearError()
    {
        var dir = Speech.TempDir();
        var wav = Speech.Say(dir, "Hello there.", "h");
        var (code, _, stderr) = await CliRun.Run("listen", "--file", wav, "--asr-model", Path.Combine(dir, "none.bin"));
        Assert.Equal(2, code);
        Assert.Contains("ASR model not found", stderr);
        var junk = Path.Combine(dir, "junk.bin");
        await File.WriteAllBytesAsync(junk, new byte[2048]);
        (code, _, stderr) = await CliRun.Run("listen", "--file", wav, "--asr-model", junk);
        Assert.Equal(2, code);
        Assert.Contains("as a Whisper model", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }
}

/// <summary>
/// The microphone path through real alsa-lib: ALSA's "file" plugin plays a raw recording as a capture device
/// (defined in an .asoundrc under a private HOME), so the stream is heard exactly as a microphone's would be.
/// </summary>
public sealed class ListenMicTests
{
    /// <summary>The assistant as a process with HOME set (alsa-lib reads $HOME/.asoundrc) and the VAD model found.</summary>
    internal static Task<(int Code, string Out, string Err)> RunAssistant(string home, params string[] args) =>
        AssistantProcess.RunAsync(args, new Dictionary<string, string>
        {
            ["HOME"] = home, ["ASSISTANT_VAD_MODELS"] = Inference.Audio.SileroVad.DefaultDirectory(),
        });

    [Fact]
    public async Task Mic_HearsSpeechFromACaptureDevice_WithinA100MsOfTheTruth_AndSilenceFromNull()
    {
        var (home, wav) = Speech.AlsaSpeechDevice("What color is the square?");
        var (start, end) = Speech.SoundExtent(Speech.ReadMono16(wav));

        var (code, stdout, stderr) = await RunAssistant(home, "listen", "--mic", "--device", "speech", "--seconds", "3.5", "--json");
        Assert.True(code == 0, stderr);
        using var doc = System.Text.Json.JsonDocument.Parse(Assert.Single(stdout.Trim().Split('\n')));
        Assert.InRange(doc.RootElement.GetProperty("start").GetDouble(), start - 0.1, start + 0.1);
        Assert.InRange(doc.RootElement.GetProperty("end").GetDouble(), end - 0.1, end + 0.1);

        (code, stdout, stderr) = await RunAssistant(home, "listen", "--mic", "--device", "null", "--seconds", "2");
        Assert.True(code == 0, stderr);
        Assert.Contains("0 utterances in 2.02 s of audio", stdout);
        Assert.Equal("", stderr);  // alsa-lib's own messages are kept off stderr
    }

    [Fact]
    public async Task LiveListen_HearsTheMicrophoneWhileTheLoopRuns_AndABadDeviceOrModelFailsFirst()
    {
        var (home, wav) = Speech.AlsaSpeechDevice("How many circles are there?");
        var (start, end) = Speech.SoundExtent(Speech.ReadMono16(wav));
        var (code, stdout, stderr) = await RunAssistant(home, "live", "--listen", "--mic-device", "speech", "--realtime-fps", "10", "--frames", "40");
        Assert.True(code == 0, stderr);
        var heard = System.Text.RegularExpressions.Regex.Match(stdout, @"heard an utterance \(([\d.]+)-([\d.]+) s\); no --asr-model to transcribe it");
        Assert.True(heard.Success, stdout);
        Assert.InRange(double.Parse(heard.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), start - 0.1, start + 0.1);
        Assert.InRange(double.Parse(heard.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), end - 0.1, end + 0.1);
        Assert.Contains("40 frames from world", stdout);
        Assert.Contains("cannot turn them into questions", stderr);

        (code, _, stderr) = await RunAssistant(home, "live", "--listen", "--mic-device", "hw:9,0", "--frames", "5");
        Assert.Equal(2, code);
        Assert.Equal("error: cannot open microphone 'hw:9,0': No such file or directory", stderr.Trim());
        var junk = Path.Combine(home, "junk.bin");
        await File.WriteAllBytesAsync(junk, new byte[1024]);
        (code, _, stderr) = await RunAssistant(home, "live", "--listen", "--mic-device", "speech", "--asr-model", junk, "--frames", "5");
        Assert.Equal(2, code);
        Assert.Contains("as a Whisper model", stderr);
    }
}
