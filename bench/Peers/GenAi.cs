using System.Diagnostics;
using Microsoft.ML.OnnxRuntimeGenAI;

namespace Assistant.Bench.Peers;

/// <summary>
/// ONNX Runtime GenAI 0.18.0 on the set's own text decoder, joined with its embed graph by tools/genai_model.py
/// (GenAI has no LLaVA type, so this row has no vision): each run is a new generator, as a new frame would be, that
/// appends a prompt of as many token ids as llama.cpp's full prompt has positions (template, picture and question,
/// so the same prefill work), then decodes greedily. GenAI computes the prompt's logits in AppendTokens and each
/// later token's lazily in GenerateNextToken, so the first GenerateNextToken only picks the token.
/// </summary>
internal sealed class GenAi : IDisposable
{
    private readonly Model _model;
    private readonly int[] _prompt;

    /// <param name="d">The precision's folders; <see cref="Dirs.GenAi"/> holds the joined graph.</param>
    /// <param name="positions">The prompt's length: llama.cpp's full-prompt positions.</param>
    /// <param name="ids">Token ids to draw the prompt from (the first ids of the vocabulary).</param>
    public GenAi(Dirs d, int positions, int ids) : this(d.GenAi, positions, ids) { }

    /// <param name="dir">A GenAI model folder (tools/genai_model.py).</param>
    /// <param name="positions">The prompt's length.</param>
    /// <param name="ids">Token ids to draw the prompt from.</param>
    public GenAi(string dir, int positions, int ids)
    {
        _model = Load(dir);
        _prompt = PromptSet.Positions(positions, ids);
    }

    public Sample Run(int tokens)
    {
        using var parameters = Exactly(_model, _prompt.Length, tokens);
        var clock = Stopwatch.StartNew();
        using var generator = new Generator(_model, parameters);
        generator.AppendTokens(_prompt);
        generator.GenerateNextToken();
        double ttft = clock.Elapsed.TotalMilliseconds;
        var decode = Stopwatch.StartNew();
        for (int i = 1; i < tokens; i++) generator.GenerateNextToken();
        double decodeS = decode.Elapsed.TotalSeconds;
        return new Sample(0, ttft, ttft, 0, ttft, _prompt.Length, (tokens - 1) / decodeS, Runs.RssMb());
    }

    /// <summary>A generation of exactly <paramref name="tokens"/> answer tokens after a prompt of <paramref name="prompt"/>
    /// ids: no early stop on a stop id (random weights may pick one).</summary>
    private static GeneratorParams Exactly(Model model, int prompt, int tokens)
    {
        var parameters = new GeneratorParams(model);
        parameters.SetSearchOption("max_length", prompt + tokens);
        parameters.SetSearchOption("min_length", prompt + tokens);
        return parameters;
    }

    /// <summary>The next-token logits after each prompt, from a new generator per prompt (the prompt set's GenAI column).</summary>
    public static List<float[]> Logits(string dir, IReadOnlyList<int[]> prompts)
    {
        using var model = Load(dir);
        var result = new List<float[]>();
        foreach (var ids in prompts)
        {
            using var parameters = new GeneratorParams(model);
            parameters.SetSearchOption("max_length", ids.Length + 1);
            using var generator = new Generator(model, parameters);
            generator.AppendTokens(ids);
            using var logits = generator.GetOutput("logits");
            var shape = logits.Shape();
            int vocab = (int)shape[^1];
            var all = logits.GetData<float>();
            result.Add(all[^vocab..].ToArray());  // the last position's row, whatever positions GenAI kept
        }
        return result;
    }

    /// <summary>
    /// One generation of <paramref name="tokens"/> with ONNX Runtime's profiler on: kernel ms per decode step by
    /// operator (the prompt's run left out), and the runs' median wall time as the profiler saw it.
    /// </summary>
    public static (Dictionary<string, double> ByOp, double RunMs, int Steps) ProfileDecode(string dir, int positions, int ids, int tokens)
    {
        var prefix = Path.Combine(Path.GetTempPath(), $"genai-profile-{Guid.NewGuid():N}");
        using (var model = Load(dir, prefix))
        {
            var prompt = PromptSet.Positions(positions, ids);
            using var parameters = Exactly(model, prompt.Length, tokens);
            using var generator = new Generator(model, parameters);
            generator.AppendTokens(prompt);
            for (int i = 0; i < tokens; i++) generator.GenerateNextToken();
        }
        var file = Directory.GetFiles(Path.GetDirectoryName(prefix)!, Path.GetFileName(prefix) + "*.json").Single();
        // Left out: the prompt's run and the first step's (a warm-up).
        var (byOp, _, runMs) = DecodeProfile.KernelTimes(file, skipRuns: 2);
        return (byOp.ToDictionary(kv => kv.Key, kv => kv.Value / runMs.Count), runMs.Order().ElementAt(runMs.Count / 2), runMs.Count);
    }

    /// <summary>
    /// The model on every core, as the engine and llama.cpp run. GenAI's own default is half the hardware threads
    /// (one on a 2-core machine), which nearly halves its prefill here; docs/PERFORMANCE.md gives both.
    /// </summary>
    private static Model Load(string dir, string? profilePrefix = null)
    {
        using var config = new Config(dir);
        var profile = profilePrefix is null ? "" : ",\"enable_profiling\":" + System.Text.Json.JsonSerializer.Serialize(profilePrefix);
        config.Overlay("{\"model\":{\"decoder\":{\"session_options\":{\"intra_op_num_threads\":" + Environment.ProcessorCount + profile + "}}}}");
        return new Model(config);
    }

    public void Dispose() => _model.Dispose();
}
