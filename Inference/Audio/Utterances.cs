namespace Assistant.Inference.Audio;

/// <summary>One stretch of speech, in seconds from the start of the stream.</summary>
public readonly record struct Utterance(double Start, double End)
{
    /// <summary>Length in seconds.</summary>
    public double Duration => End - Start;
}

/// <summary>
/// How frame probabilities become utterances (Silero's thresholds; 300 ms of silence ends an utterance, longer
/// than the gaps between words): speech starts at a frame at or above
/// <see cref="Threshold"/>, ends once the probability has stayed below <see cref="Threshold"/> - 0.15 for
/// <see cref="MinSilenceMs"/>; utterances shorter than <see cref="MinSpeechMs"/> are dropped; each is
/// widened by <see cref="PadMs"/> on both sides (never past its neighbours or the stream).
/// </summary>
public sealed record VadOptions(float Threshold = 0.5f, int MinSpeechMs = 250, int MinSilenceMs = 300, int PadMs = 30);

/// <summary>Cuts a stream of per-frame speech probabilities into utterances; frames are fed in order.</summary>
public sealed class UtteranceCutter(VadOptions options, double frameSeconds)
{
    private readonly List<Utterance> _done = [];
    private long _frame;
    private long? _start, _silenceFrom;

    /// <summary>An utterance has started and not yet ended.</summary>
    public bool InSpeech => _start is not null;

    /// <summary>Feeds the next frame's probability; returns an utterance when this frame ended one (before padding).</summary>
    public Utterance? Push(float probability)
    {
        long i = _frame++;
        Utterance? ended = null;
        if (probability >= options.Threshold)
        {
            _start ??= i;
            _silenceFrom = null;
        }
        else if (_start is { } start && probability < options.Threshold - 0.15f)
        {
            _silenceFrom ??= i;
            if ((i + 1 - _silenceFrom.Value) * frameSeconds * 1000 >= options.MinSilenceMs)
            {
                ended = Close(start, _silenceFrom.Value);
                _start = _silenceFrom = null;
            }
        }
        return ended;
    }

    /// <summary>Ends the stream: an utterance still open ends here.</summary>
    public Utterance? Finish()
    {
        Utterance? ended = _start is { } start ? Close(start, _silenceFrom ?? _frame) : null;
        _start = _silenceFrom = null;
        return ended;
    }

    private Utterance? Close(long startFrame, long endFrame)
    {
        var u = new Utterance(startFrame * frameSeconds, endFrame * frameSeconds);
        if (u.Duration * 1000 < options.MinSpeechMs) return null;
        _done.Add(u);
        return u;
    }

    /// <summary>Every utterance so far, padded by <see cref="VadOptions.PadMs"/> without overlapping or passing the stream's ends.</summary>
    public IReadOnlyList<Utterance> Padded()
    {
        double pad = options.PadMs / 1000.0, total = _frame * frameSeconds;
        var result = new List<Utterance>(_done.Count);
        for (int k = 0; k < _done.Count; k++)
        {
            double lo = k == 0 ? 0 : (_done[k - 1].End + _done[k].Start) / 2;
            double hi = k == _done.Count - 1 ? total : (_done[k].End + _done[k + 1].Start) / 2;
            result.Add(new Utterance(Math.Max(lo, _done[k].Start - pad), Math.Min(hi, _done[k].End + pad)));
        }
        return result;
    }

    /// <summary>Runs <paramref name="vad"/> over whole 16 kHz mono audio (the last partial frame is dropped).</summary>
    public static IReadOnlyList<Utterance> Cut(SileroVad vad, ReadOnlySpan<float> samples, VadOptions? options = null)
    {
        vad.Reset();
        var cutter = new UtteranceCutter(options ?? new VadOptions(), (double)SileroVad.FrameSamples / SileroVad.SampleRate);
        for (int at = 0; at + SileroVad.FrameSamples <= samples.Length; at += SileroVad.FrameSamples)
            cutter.Push(vad.Process(samples.Slice(at, SileroVad.FrameSamples)));
        cutter.Finish();
        return cutter.Padded();
    }
}
