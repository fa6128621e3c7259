using System.Diagnostics;
using Assistant.Engine;
using Assistant.Inference;

namespace Assistant.Bench;

/// <summary>One answer's timings: frame to first token for a changed and an unchanged picture, and decoding.</summary>
/// <param name="VisualTokens">V: the visual tokens the compressor gave the decoder.</param>
/// <param name="TtftMs">A changed picture to the first answer token (vision encoder, compressor, prefill, first step).</param>
/// <param name="StaticTtftMs">The same picture again: features and visual tokens reused, only prefill and first step.</param>
/// <param name="VisionMs">The vision encoder's share of the changed-picture run.</param>
/// <param name="PrefillMs">The visual prefill's share of it.</param>
/// <param name="PrefillPositions">Positions that prefill ran over.</param>
/// <param name="DecodeTokS">Answer tokens per second after the first.</param>
/// <param name="DecodeRunShare">Of the decode's wall time after the first token, the share spent inside the
/// decoder's ONNX Runtime runs (the rest is the engine's own work per token, and waits).</param>
internal sealed record FrameSample(int VisualTokens, double TtftMs, double StaticTtftMs, double VisionMs, double PrefillMs, int PrefillPositions,
    double DecodeTokS, double DecodeRunShare = double.NaN);

/// <summary>
/// The engine as the live loop runs it, timed frame to first token (bench/Peers and bench --frame-ttft): one frame
/// pipeline per configuration, kept across reps, so the chat template's text before the image stays cached as in a
/// live session. A "changed picture" run alternates two pictures (the second the first's negative), so the vision
/// encoder runs every time; the "unchanged picture" run asks again on the same one. Lifetime: owns the set and the
/// pipelines until disposed.
/// </summary>
internal sealed class FrameLatency : IDisposable
{
    private readonly ModelSet _set;
    private readonly string _question;
    private readonly Capture.Frame _a, _b;
    private readonly Dictionary<(string, int), FramePipeline> _pipelines = [];
    private bool _flip;

    public FrameLatency(string setDir, string imagePath, string question, SessionConfig sessions)
    {
        _set = ModelSet.Load(setDir, new SessionFactory(sessions));
        _question = question;
        _a = Capture.ImageFile.Load(imagePath);
        _b = _a with { Rgb = _a.Rgb.Select(x => (byte)(255 - x)).ToArray() };
    }

    /// <summary>The provider the set's sessions run on.</summary>
    public ExecutionProvider Provider => _set.Provider;

    /// <summary>Whether the set is an imported one, with the full compressor that <see cref="Configs"/> starts from.</summary>
    public bool IsChatSet => _set.Manifest.Decoders[0].Compressors.Any(c => c.Kind == "full");

    /// <summary>full at every patch; pool and query at V = 1, 4, 16 where the set offers them.</summary>
    public List<(string Kind, int V)> Configs()
    {
        var d = _set.Manifest.Decoders[0];
        var list = new List<(string, int)> { ("full", d.Compressors.Single(c => c.Kind == "full").Tokens[0]) };
        foreach (var kind in new[] { "pool", "query" })
            foreach (var v in d.Compressors.Where(c => c.Kind == kind).SelectMany(c => c.Tokens).Where(v => v is 1 or 4 or 16))
                list.Add((kind, v));
        return list;
    }

    public FrameSample Run(string kind, int v, int tokens) => RunAsync(kind, v, tokens).GetAwaiter().GetResult();

    private async Task<FrameSample> RunAsync(string kind, int v, int tokens)
    {
        if (!_pipelines.TryGetValue((kind, v), out var pipeline))
        {
            _pipelines[(kind, v)] = pipeline = new FramePipeline(_set);
            pipeline.SetQuery(_question);
        }
        var config = new AskConfig(Compressor: kind, Tokens: v, Answer: new AnswerOptions(tokens, IgnoreStop: true, RepeatLimit: 0));
        _flip = !_flip;
        var frame = _flip ? _a : _b;
        var timings = new StageTimings();
        var clock = Stopwatch.StartNew();
        double first = 0, last = 0;
        TimeSpan runFirst = default, runLast = default;  // the set's ONNX Runtime time: only the decoder runs between tokens
        int n = 0;
        await foreach (var _ in pipeline.AnswerAsync(frame, config, timings, new FrameStats()))
        {
            if (n++ == 0) (first, runFirst) = (clock.Elapsed.TotalMilliseconds, _set.RunTime);
            (last, runLast) = (clock.Elapsed.TotalMilliseconds, _set.RunTime);
        }
        // The same picture again: the encoder's features and the visual tokens are reused; only the prefill and the first token run.
        var again = Stopwatch.StartNew();
        double staticTtft = 0;
        await foreach (var _ in pipeline.AnswerAsync(frame, config, new StageTimings(), new FrameStats()))
        {
            staticTtft = again.Elapsed.TotalMilliseconds;
            break;
        }
        return new FrameSample(v, first, staticTtft, timings[Stage.Vision], timings[Stage.VisualPrefill], timings.VisualPositions,
            (n - 1) / ((last - first) / 1000), (runLast - runFirst).TotalMilliseconds / (last - first));
    }

    public void Dispose()
    {
        foreach (var p in _pipelines.Values) p.Dispose();
        _set.Dispose();
    }
}
