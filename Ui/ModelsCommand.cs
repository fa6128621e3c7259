using System.CommandLine;
using System.Text.Json;
using Assistant.Engine;

namespace Assistant.Ui;

/// <summary><c>assistant models check [DIR]</c>: load and validate a set, then describe it.</summary>
internal static class ModelsCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var dirArg = new Argument<string?>("DIR") { Description = "model set folder (default: models/default)", Arity = ArgumentArity.ZeroOrOne };
        var ep = Cli.EpOption();
        var json = Cli.JsonOption();
        var check = new Command("check", "Validate a model set against the contract and print its components.") { dirArg, ep, json };
        check.SetAction(parse =>
        {
            using var set = Cli.LoadModels(parse.GetValue(dirArg), parse.GetValue(ep)!, stderr);
            var m = set.Describe();
            var v = m.Vision;
            if (parse.GetValue(json))
            {
                stdout.WriteLine(JsonSerializer.Serialize(new
                {
                    ok = true,
                    directory = m.Directory,
                    name = m.Name,
                    ep = m.Provider,
                    vision = new { file = v.File, @params = v.Params, v.ImageSize, v.PatchSize, v.Grid, v.Dim, v.MultiDim, v.Layers },
                    tokenizer = new { ids = m.TokenizerIds },
                    decoders = m.Decoders.Select(d => new
                    {
                        d.Name, @params = d.Params, d.Dim, d.Layers, d.Heads, d.KvHeads, d.HeadDim, d.VocabSize,
                        compressors = d.Compressors.Select(c => new { c.Kind, c.QueryAware, @params = c.Params, tokens = c.Tokens }),
                    }),
                    @default = m.Default,
                }, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
                return 0;
            }
            stdout.WriteLine($"model set '{m.Name}' in {m.Directory}: OK on {m.Provider}");
            if (m.Description is { } desc) stdout.WriteLine($"  {desc}");
            stdout.WriteLine($"  vision   {v.File}: {v.Params:N0} params, {v.ImageSize}px, patch {v.PatchSize} ({v.Grid}x{v.Grid}={v.Patches} patches), dim {v.Dim}, multi {v.MultiDim} (layers {string.Join(",", v.MultiLayers)}), {Mflops(v.Flops)} per image");
            stdout.WriteLine($"  tokenizer {m.Vocab} + {m.Merges}: {m.TokenizerIds} ids ({m.SpecialTokens} special)");
            foreach (var d in m.Decoders)
            {
                stdout.WriteLine($"  decoder  {d.Name}: {d.Params:N0} params, dim {d.Dim}, {d.Layers} layers, {d.Heads} heads / {d.KvHeads} kv, head {d.HeadDim}, ffn {d.Intermediate}, vocab {d.VocabSize}; decode step at context 32: {Mflops(d.StepFlops)}");
                foreach (var c in d.Compressors)
                    stdout.WriteLine($"    {c.Kind,-12} {(c.QueryAware ? "query-aware" : "query-agnostic")}, {c.Params:N0} params, V in {{{string.Join(", ", c.Tokens)}}}; " +
                                     string.Join(", ", c.Tokens.Select((t, i) => $"V={t}: {Mflops(c.Flops[i])} + prefill {Mflops(c.PrefillFlops[i])}")));
            }
            stdout.WriteLine($"  default  {m.Default.Decoder} + {m.Default.Compressor} at V={m.Default.Tokens}");
            stdout.WriteLine("  (FLOPs: matrix work per run, 2 per multiply-accumulate; prefill after a 16-token query)");
            return 0;
        });
        return new Command("models", "Inspect model sets.") { check };
    }

    private static string Mflops(double flops) => $"{flops / 1e6:F2} MFLOP";
}
