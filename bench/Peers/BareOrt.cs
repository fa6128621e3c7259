using System.Diagnostics;
using Assistant.Inference;
using Microsoft.ML.OnnxRuntime;

namespace Assistant.Bench.Peers;

/// <summary>
/// The set's own embed and decoder graphs run by bare ONNX Runtime calls, none of the engine's code: one
/// InferenceSession each with ONNX Runtime's defaults but the engine's thread count, a prompt of as many ids as the engine's full-token frame
/// prefills, then greedy steps that feed each step's present cache back as the next past. The floor the engine's
/// own decode loop is measured against (the "overhead over the bare ONNX Runtime runs").
/// </summary>
internal sealed class BareOrt : IDisposable
{
    private readonly InferenceSession _embed, _decoder;
    private readonly DecoderSpec _spec;
    private readonly int[] _prompt;
    private readonly RunOptions _run = new();

    public BareOrt(string set, int positions, int ids)
    {
        var manifest = Manifest.Read(set);
        _spec = manifest.Decoders[0];
        // The engine's thread count (ONNX Runtime's own default is half of it on a machine without SMT: CpuCores).
        using var options = new SessionOptions();
        if (CpuCores.DefaultIntraOpThreads > 0) options.IntraOpNumThreads = CpuCores.DefaultIntraOpThreads;
        _embed = new InferenceSession(Path.Combine(set, _spec.Embed.File), options);
        _decoder = new InferenceSession(Path.Combine(set, _spec.Decoder.File), options);
        _prompt = PromptSet.Positions(positions, ids);
    }

    public Sample Run(int tokens)
    {
        var clock = Stopwatch.StartNew();
        var past = Enumerable.Range(0, 2 * _spec.Layers)
            .Select(_ => OrtValue.CreateTensorValueFromMemory(Array.Empty<float>(), [1, _spec.KvHeads, 0, _spec.HeadDim])).ToList();
        int next = Step(_prompt, 0, ref past);
        double ttft = clock.Elapsed.TotalMilliseconds;
        var decode = Stopwatch.StartNew();
        for (int i = 1; i < tokens; i++) next = Step([next], _prompt.Length + i - 1, ref past);
        double decodeS = decode.Elapsed.TotalSeconds;
        foreach (var p in past) p.Dispose();
        return new Sample(0, ttft, ttft, 0, ttft, _prompt.Length, (tokens - 1) / decodeS, Runs.RssMb());
    }

    /// <summary>One decoder call on <paramref name="ids"/> at positions from <paramref name="start"/>; returns the greedy next id.</summary>
    private int Step(int[] ids, int start, ref List<OrtValue> past)
    {
        long[] ids64 = [.. ids.Select(i => (long)i)];
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids64, [1, ids.Length]);
        using var embeds = _embed.Run(_run, ["input_ids"], [idsValue], ["inputs_embeds"])[0];
        int total = start + ids.Length;
        using var mask = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, total).ToArray(), [1, total]);
        using var positions = OrtValue.CreateTensorValueFromMemory(Enumerable.Range(start, ids.Length).Select(p => (long)p).ToArray(), [1, ids.Length]);
        var names = new List<string> { "inputs_embeds", "attention_mask", "position_ids" };
        var values = new List<OrtValue> { embeds, mask, positions };
        for (int l = 0; l < _spec.Layers; l++)
        {
            names.AddRange([$"past_key_values.{l}.key", $"past_key_values.{l}.value"]);
            values.AddRange([past[2 * l], past[2 * l + 1]]);
        }
        var outputs = new List<string> { "logits" };
        for (int l = 0; l < _spec.Layers; l++) outputs.AddRange([$"present.{l}.key", $"present.{l}.value"]);
        var results = _decoder.Run(_run, names, values, outputs);
        foreach (var p in past) p.Dispose();
        past = [.. results.Skip(1)];
        using var logits = results[0];
        var all = logits.GetTensorDataAsSpan<float>();
        return VocabMath.ArgMax(all[^_spec.VocabSize..]);
    }

    public void Dispose()
    {
        _embed.Dispose();
        _decoder.Dispose();
        _run.Dispose();
    }
}
