using Assistant.Capture.Audio;
using Assistant.Inference;
using Assistant.Inference.Audio;
using Assistant.Tests;

namespace Assistant.Engine.Tests;

/// <summary>The speech-to-question path with the real VAD on espeak-ng audio and a recogniser the test supplies.</summary>
public sealed class SpeechQueriesTests
{
    /// <summary>Answers each call with the next scripted text, and records what it was given.</summary>
    private sealed class ScriptedRecognizer(params string[] texts) : ISpeechRecognizer
    {
        public List<int> Calls { get; } = [];

        public Task<string> TranscribeAsync(float[] samples, CancellationToken cancellation = default)
        {
            Calls.Add(samples.Length);
            return Task.FromResult(texts[Calls.Count - 1]);
        }

        public void Dispose() { }
    }

    [Fact]
    public async Task TheRecogniser_IsCalledOncePerUtterance_OnItsSamples_AndItsTextBecomesTheQuery()
    {
        var dir = Speech.TempDir();
        var both = Speech.SayApart(dir, "What color is the square?", "How many circles are there?");
        var samples = AudioFile.Load16kMono(both);
        using var vad = SileroVad.Load(new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)));
        using var recognizer = new ScriptedRecognizer("  what color is the square?  ", "how many circles are there?");

        var heard = await SpeechQueries.HearAsync(vad, samples, new VadOptions(), recognizer);

        Assert.Equal(2, heard.Count);
        Assert.Equal(2, recognizer.Calls.Count);
        for (int i = 0; i < 2; i++)
            Assert.InRange(recognizer.Calls[i], (int)(heard[i].Duration * 16_000) - 2, (int)(heard[i].Duration * 16_000) + 2);
        // The same check a typed question gets (trimmed), so the world's own vocabulary check comes next as usual.
        Assert.Equal(["what color is the square?", "how many circles are there?"], heard.Select(h => h.Query));
        WorldQuery.Normalize(heard[0].Query!, null);
    }

    [Fact]
    public async Task WithoutARecogniser_ThereAreUtterancesButNoQueries_AndSilenceGivesNothing()
    {
        var dir = Speech.TempDir();
        var padded = Speech.SayPadded(dir, "Is there a red triangle?", "q", 0.5, 0.5);
        using var vad = SileroVad.Load(new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)));
        var heard = await SpeechQueries.HearAsync(vad, AudioFile.Load16kMono(padded), new VadOptions(), null);
        Assert.Null(Assert.Single(heard).Query);

        using var silent = new ScriptedRecognizer("   ");
        var blank = await SpeechQueries.HearAsync(vad, AudioFile.Load16kMono(padded), new VadOptions(), silent);
        Assert.Null(Assert.Single(blank).Query);  // heard nothing: not a question
        Assert.Single(silent.Calls);
    }
}
