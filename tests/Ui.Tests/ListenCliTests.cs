using System.Text.Json;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

public sealed class ListenCliTests
{
    [Fact]
    public async Task Listen_PrintsEachUtterance_AndJsonHasTheirTimes()
    {
        var dir = Speech.TempDir();
        var said = Speech.Say(dir, "Read the screen please.", "s");
        var wav = Path.Combine(dir, "padded.wav");
        Speech.Sox(said, wav, "pad", "1.0", "1.0");
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
    [InlineData(new[] { "listen" }, "give --file PATH")]
    [InlineData(new[] { "listen", "--mic" }, "--mic is not built yet")]
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
    public async Task Listen_AnUnsupportedFormat_SaysHowToConvert()
    {
        var ogg = Path.Combine(Speech.TempDir(), "x.ogg");
        await File.WriteAllBytesAsync(ogg, [1, 2, 3]);
        var (code, _, stderr) = await CliRun.Run("listen", "--file", ogg);
        Assert.Equal(2, code);
        Assert.Contains("ffmpeg -i IN -ar 16000 -ac 1 OUT.wav", stderr);
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
