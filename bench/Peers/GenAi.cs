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
    public GenAi(Dirs d, int positions, int ids)
    {
        _model = Load(d.GenAi);
        _prompt = PromptSet.Positions(positions, ids);
    }

    public Sample Run(int tokens)
    {
        using var parameters = new GeneratorParams(_model);
        // Exactly `tokens` answer tokens: no early stop on a stop id (random weights may pick one).
        parameters.SetSearchOption("max_length", _prompt.Length + tokens);
        parameters.SetSearchOption("min_length", _prompt.Length + tokens);
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
    /// The model on every core, as the engine and llama.cpp run. GenAI's own default is half the hardware threads
    /// (one on a 2-core machine), which nearly halves its prefill here; docs/PERFORMANCE.md gives both.
    /// </summary>
    private static Model Load(string dir)
    {
        using var config = new Config(dir);
        config.Overlay("{\"model\":{\"decoder\":{\"session_options\":{\"intra_op_num_threads\":" + Environment.ProcessorCount + "}}}}");
        return new Model(config);
    }

    public void Dispose() => _model.Dispose();
}
