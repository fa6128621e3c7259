using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>
/// A model set loaded for the command line, behind Engine's door: Ui holds this, never the inference layer's
/// <see cref="ModelSet"/>. Owns the set; Dispose frees every session.
/// </summary>
public sealed class LoadedModels : IDisposable
{
    private LoadedModels(ModelSet set) => Set = set;

    internal ModelSet Set { get; }

    /// <summary>The set's name from its manifest.</summary>
    public string Name => Set.Manifest.Name;

    /// <summary>The set's folder (absolute).</summary>
    public string Directory => Set.Directory;

    /// <summary>The side of the world's pictures the set was trained on; null for a set not trained on the world.</summary>
    public int? WorldImageSize => Set.Manifest.World?.ImageSize;

    /// <summary>The execution provider it runs on ("cpu", "cuda", "dml").</summary>
    public string Provider => Set.Provider.ToString().ToLowerInvariant();

    /// <summary>
    /// The model set to use: an explicit folder, else $ASSISTANT_MODELS, else the first models/default
    /// found from the working directory or the executable's folder upwards.
    /// </summary>
    public static string ResolveDirectory(string? explicitDir)
    {
        if (!string.IsNullOrEmpty(explicitDir)) return explicitDir;
        var env = Environment.GetEnvironmentVariable("ASSISTANT_MODELS");
        if (!string.IsNullOrEmpty(env)) return env;
        foreach (var start in new[] { System.IO.Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "models", "default");
                if (File.Exists(Path.Combine(candidate, "manifest.json"))) return candidate;
            }
        throw new InferenceException("no model set given and no models/default found: pass --models DIR or set ASSISTANT_MODELS");
    }

    /// <summary>Resolves, loads and validates a set on <paramref name="ep"/> (cpu, cuda, dml, auto); <paramref name="note"/> hears when auto fell back to the CPU.</summary>
    public static LoadedModels Load(string? directory, string ep, Action<string>? note = null) =>
        new(ModelSet.Load(ResolveDirectory(directory), Providers.Factory(ep, note)));

    /// <summary>
    /// Opens every graph the set lists that is not open yet (compressors open when first used), so that each is
    /// checked against its manifest entry now; any problem is one <see cref="InferenceException"/>. For <c>models check</c>.
    /// </summary>
    public void OpenEveryGraph() => Set.OpenEveryGraph();

    /// <summary>Every component with its dimensions, parameter counts and FLOPs, for <c>models check</c>.</summary>
    public ModelSetDescription Describe()
    {
        var m = Set.Manifest;
        var v = m.Vision;
        var vision = new VisionDescription(v.File, v.Params, v.ImageSize, v.PatchSize, v.Grid, v.Patches, v.Dim, v.MultiDim, v.Layers, v.MultiLayers, FlopsModel.Vision(v));
        var decoders = m.Decoders.Select(d => new DecoderDescription(d.Name, d.Params, d.Dim, d.Layers, d.Heads, d.KvHeads, d.HeadDim, d.Intermediate, d.VocabSize,
            FlopsModel.DecoderRun(d, 1, 31),
            d.Compressors.Select(c => new CompressorDescription(c.Kind, c.QueryAware, c.Params, c.Tokens,
                c.Tokens.Select(t => FlopsModel.Compressor(v, c.Kind, c.QueryAware, t, d.Dim)).ToList(),
                c.Tokens.Select(t => FlopsModel.DecoderRun(d, FlopsModel.VisualPositions(m.Prompt, t, 16), 16)).ToList())).ToList(),
            d.KvInPlace ? DecoderSpec.KvInPlaceValue : "concat")).ToList();
        return new ModelSetDescription(m.Name, Set.Directory, Provider, m.Description, vision, Set.Tokenizer.Count, m.Tokenizer.PreTokenizer,
            m.Tokenizer.Model is { } model ? [model] : [m.Tokenizer.Vocab ?? "", m.Tokenizer.Merges ?? ""], m.Tokenizer.SpecialTokens.Count, decoders, ModelChoice.Of(m.Default),
            Set.ResidentAtLoad.ToDictionary());
    }

    /// <summary>
    /// Runs the set's golden picture through its graphs against what the importer's PyTorch computed (an imported set's
    /// golden/golden.json) and says what was compared in one line; a mismatch or a non-finite value is an
    /// <see cref="InferenceException"/> with one line.
    /// </summary>
    public string CheckGolden()
    {
        var r = GoldenCheck.Run(Set);
        var distilled = r.Distilled == 0 ? ""
            : r.Compared ? $"; {r.Distilled} distilled compressor graphs{(r.QuestionPass ? " and the question's own pass" : "")} within {r.DistilledDiff:G2} of tools/distill.py's PyTorch"
            : $"; {r.Distilled} distilled compressor graphs finite";
        return (r.Compared
            ? $"golden: features, {r.Compressor} V={r.Tokens} visual tokens and first logits within {Math.Max(r.FeaturesDiff, Math.Max(r.TokensDiff, r.LogitsDiff)):G2} of the importer's PyTorch"
            : $"golden: features, {r.Compressor} V={r.Tokens} visual tokens and first logits finite (quantized weights: compared by the tests, not here)") + distilled;
    }

    /// <summary>Frees the set.</summary>
    public void Dispose() => Set.Dispose();
}

/// <summary>The vision encoder of a set: file, parameters, geometry, and FLOPs per image.</summary>
public sealed record VisionDescription(string File, long Params, int ImageSize, int PatchSize, int Grid, int Patches, int Dim, int MultiDim, int Layers,
    IReadOnlyList<int> MultiLayers, double Flops);

/// <summary>One compressor kind of a decoder: its V values, and per V the compressor's FLOPs and the visual prefill's (after a 16-token query).</summary>
public sealed record CompressorDescription(string Kind, bool QueryAware, long Params, IReadOnlyList<int> Tokens, IReadOnlyList<double> Flops, IReadOnlyList<double> PrefillFlops);

/// <summary>One decoder of a set, with its decode-step FLOPs at context 32, its compressors, and how its graph keeps
/// its cache (<c>in_place</c>: one buffer written at the new positions only; <c>concat</c>: appended to a copy).</summary>
public sealed record DecoderDescription(string Name, long Params, int Dim, int Layers, int Heads, int KvHeads, int HeadDim, int Intermediate, int VocabSize,
    double StepFlops, IReadOnlyList<CompressorDescription> Compressors, string KvCache);

/// <summary>What <c>models check</c> prints of a valid set.</summary>
public sealed record ModelSetDescription(string Name, string Directory, string Provider, string? Description, VisionDescription Vision,
    int TokenizerIds, string TokenizerKind, IReadOnlyList<string> TokenizerFiles, int SpecialTokens, IReadOnlyList<DecoderDescription> Decoders, ModelChoice Default,
    IReadOnlyDictionary<string, long> ResidentAtLoad);
