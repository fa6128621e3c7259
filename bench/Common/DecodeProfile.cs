using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;

namespace Assistant.Bench;

/// <summary>
/// Where one decode step's time goes: the set's decoder graph run with ONNX Runtime's profiler (the same optimisation
/// level and threads the engine uses), one token at a context of <c>past</c> cached positions, kernel time summed by
/// operator over a few steps, and by execution provider (on CUDA the kernel times are the host's time in each node's
/// launch, and nodes left on the CPU, copies between the two among them, show under the CPU's name).
/// </summary>
internal static class DecodeProfile
{
    /// <summary>
    /// An ONNX Runtime profile's kernel time (ms) summed by operator and by provider (with its node count), and each
    /// run's wall time, read from the file <see cref="InferenceSession.EndProfiling"/> wrote, which is deleted. The
    /// first <paramref name="skipRuns"/> runs (a prompt, a warm-up) and their nodes are left out.
    /// </summary>
    public static (Dictionary<string, double> ByOp, Dictionary<string, (double Ms, int Nodes)> ByProvider, List<double> RunMs) KernelTimes(
        string file, int skipRuns = 0)
    {
        var runs = new List<(double Start, double End)>();
        var nodes = new List<(double Ts, string Op, string Provider, double Ms)>();
        using (var doc = JsonDocument.Parse(File.ReadAllText(file)))
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                string cat = e.GetProperty("cat").GetString()!, name = e.GetProperty("name").GetString()!;
                double ts = e.GetProperty("ts").GetDouble(), dur = e.GetProperty("dur").GetDouble();
                if (cat == "Session" && name == "model_run") runs.Add((ts, ts + dur));
                if (cat != "Node" || !name.EndsWith("_kernel_time")) continue;
                var args = e.GetProperty("args");
                var provider = args.TryGetProperty("provider", out var p) ? p.GetString() ?? "?" : "?";
                nodes.Add((ts, args.GetProperty("op_name").GetString()!, provider, dur / 1000.0));
            }
        File.Delete(file);
        runs.Sort();
        double from = skipRuns > 0 && runs.Count >= skipRuns ? runs[skipRuns - 1].End : double.NegativeInfinity;
        var byOp = new Dictionary<string, double>();
        var byProvider = new Dictionary<string, (double Ms, int Nodes)>();
        foreach (var (ts, op, provider, ms) in nodes)
        {
            if (ts < from) continue;
            byOp[op] = byOp.GetValueOrDefault(op) + ms;
            var (sum, count) = byProvider.GetValueOrDefault(provider);
            byProvider[provider] = (sum + ms, count + 1);
        }
        return (byOp, byProvider, [.. runs.Skip(skipRuns).Select(r => (r.End - r.Start) / 1000.0)]);
    }

    public static void Print(string set, int past, int steps, TextWriter o, bool cuda = false)
    {
        var m = Assistant.Inference.Manifest.Read(set);
        var d = m.Decoders[0];
        var prefix = Path.Combine(Path.GetTempPath(), $"peers-profile-{Guid.NewGuid():N}");
        using var options = new SessionOptions { EnableProfiling = true, ProfileOutputPathPrefix = prefix, IntraOpNumThreads = Environment.ProcessorCount };
        if (cuda) options.AppendExecutionProvider_CUDA(0);
        using var session = new InferenceSession(Path.Combine(set, d.Decoder.File), options);
        var names = new List<string> { "inputs_embeds", "attention_mask", "position_ids" };
        var values = new List<OrtValue>
        {
            OrtValue.CreateTensorValueFromMemory(new float[d.Dim], [1, 1, d.Dim]),
            OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, past + 1).ToArray(), [1, past + 1]),
            OrtValue.CreateTensorValueFromMemory(new long[] { past }, [1, 1]),
        };
        // A graph that writes its cache in place gets one buffer as past and present, as the engine binds it (room for
        // the new position: the mask says how many are valid); else the past alone, and the present comes back new.
        int room = d.KvInPlace ? past + 1 : past;
        for (int i = 0; i < d.Layers; i++)
            foreach (var kv in new[] { "key", "value" })
            {
                names.Add($"past_key_values.{i}.{kv}");
                values.Add(OrtValue.CreateTensorValueFromMemory(new float[d.KvHeads * room * d.HeadDim], [1, d.KvHeads, room, d.HeadDim]));
            }
        using var run = new RunOptions();
        using var binding = session.CreateIoBinding();
        for (int i = 0; i < names.Count; i++) binding.BindInput(names[i], values[i]);
        binding.BindOutputToDevice("logits", OrtMemoryInfo.DefaultInstance);
        binding.BindOutputToDevice("last_hidden_state", OrtMemoryInfo.DefaultInstance);
        for (int i = 0; i < 2 * d.Layers; i++)
        {
            var present = $"present.{i / 2}.{(i % 2 == 0 ? "key" : "value")}";
            if (d.KvInPlace) binding.BindOutput(present, values[3 + i]);
            else binding.BindOutputToDevice(present, OrtMemoryInfo.DefaultInstance);
        }
        var wall = new List<double>();
        for (int s = 0; s < steps + 1; s++)
        {
            var clock = Stopwatch.StartNew();
            session.RunWithBinding(run, binding);
            if (s > 0) wall.Add(clock.Elapsed.TotalMilliseconds);
        }
        foreach (var v in values) v.Dispose();
        var (byOp, byProvider, _) = KernelTimes(session.EndProfiling());
        double total = byOp.Values.Sum();
        o.WriteLine($"decode step of {d.Name} at context {past + 1}, cache {(d.KvInPlace ? "in place" : "appended")}: median {wall.Order().ElementAt(wall.Count / 2):F1} ms wall over {steps} steps (warm-up included in the kernel sums below)");
        foreach (var (provider, (ms, nodes)) in byProvider.OrderByDescending(x => x.Value.Ms))
            o.WriteLine($"  {provider,-24} {ms / (steps + 1),8:F2} ms/step  {nodes / (steps + 1),5} nodes/step");
        foreach (var (op, ms) in byOp.OrderByDescending(x => x.Value).Take(12))
            o.WriteLine($"  {op,-24} {ms / (steps + 1),8:F2} ms/step  {100 * ms / total,5:F1}%");
    }
}
