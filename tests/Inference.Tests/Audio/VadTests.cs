using Assistant.Capture;
using Assistant.Capture.Audio;
using Assistant.Inference.Audio;
using Assistant.Tests;

namespace Assistant.Inference.Tests.Audio;

/// <summary>The real Silero VAD model on espeak-ng speech, silence and noise made with sox.</summary>
public sealed class VadTests : IDisposable
{
    private readonly SileroVad _vad = SileroVad.Load(new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)));
    private readonly string _dir = Speech.TempDir();

    public void Dispose() => _vad.Dispose();

    [Fact]
    public void One_sentence_between_silences_is_one_utterance_within_100_ms_of_the_truth()
    {
        var padded = Speech.SayPadded(_dir, "Please read the error message on the screen.", "one", 1.2, 1.5);
        var (start, end) = Speech.SoundExtent(Speech.ReadMono16(padded));
        var found = UtteranceCutter.Cut(_vad, AudioFile.Load16kMono(padded));
        var u = Assert.Single(found);
        Assert.InRange(u.Start, start - 0.1, start + 0.1);
        Assert.InRange(u.End, end - 0.1, end + 0.1);
    }

    [Fact]
    public void Two_sentences_apart_are_two_utterances_each_within_100_ms()
    {
        var both = Speech.SayApart(_dir, "What color is the square?", "How many circles are there?");
        var samples = Speech.ReadMono16(both);
        var found = UtteranceCutter.Cut(_vad, AudioFile.Load16kMono(both));
        Assert.Equal(2, found.Count);
        // The truth of each: the sound extent within its half of the file.
        int mid = (int)((found[0].End + found[1].Start) / 2 * 16_000);
        var first = Speech.SoundExtent(samples[..mid]);
        var second = Speech.SoundExtent(samples[mid..]);
        double offset = mid / 16_000.0;
        Assert.InRange(found[0].Start, first.Start - 0.1, first.Start + 0.1);
        Assert.InRange(found[0].End, first.End - 0.1, first.End + 0.1);
        Assert.InRange(found[1].Start, offset + second.Start - 0.1, offset + second.Start + 0.1);
        Assert.InRange(found[1].End, offset + second.End - 0.1, offset + second.End + 0.1);
    }

    [Theory]
    [InlineData("silence")]
    [InlineData("whitenoise")]
    [InlineData("pinknoise")]
    [InlineData("brownnoise")]
    public void Silence_and_noise_have_no_utterance(string kind)
    {
        var wav = Path.Combine(_dir, kind + ".wav");
        if (kind == "silence") Speech.Sox("-n", "-r", "16000", "-c", "1", "-b", "16", wav, "trim", "0", "4");
        else Speech.Sox("-n", "-r", "16000", "-c", "1", "-b", "16", wav, "synth", "4", kind, "vol", "0.3");
        Assert.Empty(UtteranceCutter.Cut(_vad, AudioFile.Load16kMono(wav)));
    }

    [Fact]
    public void Stereo_44k_speech_is_resampled_and_found_at_the_same_place()
    {
        var mono = Speech.SayPadded(_dir, "Is there a red triangle?", "q", 0.8, 0.8);
        var stereo = Path.Combine(_dir, "q-stereo.wav");
        Speech.Sox(mono, "-r", "44100", "-c", "2", stereo);
        var a = Assert.Single(UtteranceCutter.Cut(_vad, AudioFile.Load16kMono(mono)));
        var b = Assert.Single(UtteranceCutter.Cut(_vad, AudioFile.Load16kMono(stereo)));
        Assert.InRange(b.Start, a.Start - 0.05, a.Start + 0.05);
        Assert.InRange(b.End, a.End - 0.05, a.End + 0.05);
        Assert.InRange(AudioFile.Load16kMono(stereo).Length, 16_000 * 2.5, 16_000 * 5.0);
    }

    [Theory]
    [InlineData("mp3")]
    [InlineData("flac")]
    [InlineData("ogg")]
    public void Compressed_formats_are_decoded_and_heard_like_the_wav(string format)
    {
        var wav = Speech.SayPadded(_dir, "Is the blue square above the circle?", "c", 0.8, 0.8);
        var other = Path.Combine(_dir, "c-padded." + format);
        Speech.Encode(wav, other);
        var a = Assert.Single(UtteranceCutter.Cut(_vad, AudioFile.Load16kMono(wav)));
        var b = Assert.Single(UtteranceCutter.Cut(_vad, AudioFile.Load16kMono(other)));
        Assert.InRange(b.Start, a.Start - 0.05, a.Start + 0.05);
        Assert.InRange(b.End, a.End - 0.05, a.End + 0.05);
    }

    [Fact]
    public void Bad_audio_and_a_bad_model_are_one_line_errors()
    {
        var mp3 = Path.Combine(_dir, "x.mp3");
        File.WriteAllBytes(mp3, [1, 2, 3]);
        Assert.Contains("not an audio file ffmpeg can decode", Assert.Throws<CaptureException>(() => AudioFile.Load16kMono(mp3)).Message);
        var junk = Path.Combine(_dir, "junk.wav");
        File.WriteAllBytes(junk, Enumerable.Range(0, 300).Select(i => (byte)(i * 7)).ToArray());
        Assert.Contains("not a valid audio file", Assert.Throws<CaptureException>(() => AudioFile.Load16kMono(junk)).Message);
        Assert.Contains("not found", Assert.Throws<CaptureException>(() => AudioFile.Load16kMono(Path.Combine(_dir, "none.wav"))).Message);

        var factory = new SessionFactory(new SessionConfig(ExecutionProvider.Cpu));
        var missing = Assert.Throws<InferenceException>(() => SileroVad.Load(factory, _dir));
        Assert.Contains("fetch_models.sh vad", missing.Message);
        File.WriteAllBytes(Path.Combine(_dir, SileroVad.File), [0, 1, 2]);
        Assert.Contains("SHA-256", Assert.Throws<InferenceException>(() => SileroVad.Load(factory, _dir)).Message);
        Assert.Throws<InferenceException>(() => _vad.Process(new float[100]));
    }
}

public sealed class UtteranceCutterTests
{
    private const double Frame = 0.032;

    private static IReadOnlyList<Utterance> Cut(VadOptions options, params float[] probabilities)
    {
        var cutter = new UtteranceCutter(options, Frame);
        foreach (var p in probabilities) cutter.Push(p);
        cutter.Finish();
        return cutter.Padded();
    }

    private static float[] Run(float p, int frames) => Enumerable.Repeat(p, frames).ToArray();

    [Fact]
    public void Speech_starts_at_the_threshold_and_ends_after_enough_silence()
    {
        var options = new VadOptions(MinSpeechMs: 250, MinSilenceMs: 300, PadMs: 0);
        var u = Assert.Single(Cut(options, [.. Run(0.1f, 10), .. Run(0.9f, 20), .. Run(0.1f, 30)]));
        Assert.Equal(10 * Frame, u.Start, 6);
        Assert.Equal(30 * Frame, u.End, 6);
    }

    [Fact]
    public void A_short_pause_does_not_split_and_a_short_blip_is_dropped()
    {
        var options = new VadOptions(MinSpeechMs: 250, MinSilenceMs: 300, PadMs: 0);
        // 5 frames (160 ms) of silence inside speech: one utterance; a 3-frame blip (96 ms): none.
        Assert.Single(Cut(options, [.. Run(0.9f, 15), .. Run(0.1f, 5), .. Run(0.9f, 15), .. Run(0.1f, 20)]));
        Assert.Empty(Cut(options, [.. Run(0.1f, 10), .. Run(0.9f, 3), .. Run(0.1f, 20)]));
        // Between the thresholds (0.35..0.5) speech goes on.
        Assert.Equal(25 * Frame, Assert.Single(Cut(options, [.. Run(0.9f, 10), .. Run(0.4f, 15), .. Run(0.1f, 20)])).End, 6);
    }

    [Fact]
    public void Padding_widens_but_never_overlaps_or_passes_the_ends()
    {
        var options = new VadOptions(MinSpeechMs: 100, MinSilenceMs: 64, PadMs: 100);
        var us = Cut(options, [.. Run(0.9f, 10), .. Run(0.1f, 3), .. Run(0.9f, 10)]);
        Assert.Equal(2, us.Count);
        Assert.Equal(0, us[0].Start);
        Assert.True(us[0].End <= us[1].Start);
        Assert.Equal(23 * Frame, us[1].End, 6);  // speech to the last frame: open at the end, closed by Finish
    }
}

/// <summary>The Whisper.net adapter's errors (no ggml model can be had on these machines).</summary>
public sealed class WhisperRecognizerTests
{
    [Fact]
    public void Without_a_model_it_says_what_is_needed_and_where_to_get_one()
    {
        var e = Assert.Throws<InferenceException>(() => WhisperRecognizer.Load(null));
        Assert.Contains("--asr-model", e.Message);
        Assert.Contains("huggingface.co/ggerganov/whisper.cpp", e.Message);
        Assert.Contains("not found", Assert.Throws<InferenceException>(() => WhisperRecognizer.Load("/no/such/ggml.bin")).Message);
    }

    [Fact]
    public void A_file_that_is_not_a_ggml_model_is_refused_by_the_real_runtime()
    {
        var junk = Path.Combine(Speech.TempDir(), "ggml-junk.bin");
        File.WriteAllBytes(junk, new byte[4096]);
        var e = Assert.Throws<InferenceException>(() => WhisperRecognizer.Load(junk));
        Assert.Contains("cannot load", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
