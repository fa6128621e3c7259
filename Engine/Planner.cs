using System.Diagnostics;
using System.Text.Json;
using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>
/// Measured speed of this machine and execution provider for one model set: the vision encoder and each
/// compressor graph per run, and per decoder a line ms = overhead + ms_per_mflop x MFLOP fitted to runs of
/// several lengths (small models are dominated by the per-run overhead, large ones by the FLOPs).
/// </summary>
public sealed record Calibration(string Set, string Provider, string Machine, DateTime MeasuredUtc, double VisionMs,
    IReadOnlyDictionary<string, double> CompressorMs, IReadOnlyDictionary<string, DecoderSpeed> Decoders)
{
    /// <summary>The calibration's key of one compressor graph.</summary>
    public static string CompressorKey(string decoder, string kind, int tokens) => $"{decoder}|{kind}|{tokens}";
}

/// <summary>Decoder latency model: overhead per run plus time per MFLOP of the run.</summary>
public sealed record DecoderSpeed(double OverheadMs, double MsPerMflop)
{
    /// <summary>Predicted ms of a decoder run of <paramref name="flops"/>.</summary>
    public double Ms(double flops) => OverheadMs + MsPerMflop * flops / 1e6;
}

/// <summary>One candidate configuration with its predicted cost and accuracy.</summary>
/// <remarks><paramref name="PredictedError"/> is the law's error unclamped, which ranks the candidates even where the
/// accuracy shown (1 - error, held to [0, 1]) is the same for several: a law used far outside its fitted range.</remarks>
public sealed record PlanCandidate(ModelChoice Config, double PredictedAccuracy, AskFlops Flops,
    IReadOnlyDictionary<string, double> StageMs, double PredictedError)
{
    /// <summary>Every stage's predicted ms together.</summary>
    public double TotalMs => StageMs.Values.Sum();
}

/// <summary>The planner's answer: the best configuration within the budget (or none), and the runner-up.</summary>
public sealed record Plan(double BudgetMs, bool Fits, PlanCandidate Choice, PlanCandidate? RunnerUp, IReadOnlyList<PlanCandidate> All);

/// <summary>What one plan is for: the latency budget per answer, the query's length, whether its KV cache is reused.</summary>
/// <param name="LatencyMs">The budget per answer.</param>
/// <param name="QueryTokens">The query's length in tokens.</param>
/// <param name="CachedQuery">Whether the query's prefill is already cached (a live session's later frames).</param>
/// <param name="AnswerTokens">Answer tokens to pay for.</param>
/// <param name="Compressor">The compressor kind planned with; null: <see cref="Planner.PlannedCompressor"/> (QueCC on a world set, query on an imported one).</param>
public sealed record PlanRequest(double LatencyMs, int QueryTokens = PlanRequest.DefaultQueryTokens, bool CachedQuery = false, int AnswerTokens = 2, string? Compressor = null)
{
    /// <summary>The query length planned for when none is given (a typical world question, query-start token included).</summary>
    public const int DefaultQueryTokens = 12;
}

/// <summary>A plan for a loaded set, with where the machine's calibration came from.</summary>
public sealed record PlanResult(Plan Plan, bool Measured, DateTime MeasuredUtc, string CalibrationPath);

/// <summary>One point of the scaling-law chart: a configuration the planner could pick, its FLOPs per frame and predicted accuracy.</summary>
public sealed record LawPoint(string Decoder, int Tokens, double Flops, double Accuracy);

/// <summary>
/// Picks the (decoder, V) with the best accuracy predicted by the set's scaling law whose latency, predicted
/// from the FLOPs model and the machine's calibration, fits the budget. The live engine calls the same code.
/// </summary>
public static class Planner
{
    /// <summary>The law shipped in the manifest; sets without one cannot be planned for.</summary>
    public static LawParameters Law(Manifest manifest)
    {
        if (manifest.ScalingLaw is not { ValueKind: JsonValueKind.Object } law)
            throw new EngineException($"model set '{manifest.Name}' ships no scaling law: the planner needs one (manifest.json scaling_law)");
        double Get(string name) => law.TryGetProperty(name, out var v) && v.TryGetDouble(out var x) ? x
            : throw new EngineException($"manifest.json scaling_law has no number '{name}'");
        return new LawParameters(Get("a"), Get("alpha"), Get("beta"), Get("d"));
    }

    /// <summary>
    /// Where the set's law comes from, for a person reading a predicted accuracy: the set's own fit, or the paper's law
    /// carried by an imported set (fitted on other models, so its accuracies are the paper's trend, not this set's).
    /// </summary>
    public static string LawOrigin(LoadedModels set) => LawOrigin(set.Set.Manifest);

    /// <inheritdoc cref="LawOrigin(LoadedModels)"/>
    internal static string LawOrigin(Manifest manifest) =>
        manifest.ScalingLaw is { ValueKind: JsonValueKind.Object } law && law.TryGetProperty("origin", out var o) && o.ValueKind == JsonValueKind.String && o.GetString() == "paper"
            ? "the paper's law (fitted on LLaVA-style models with Qwen-1.5 decoders, not on this set): accuracies are its trend, not this set's"
            : "this set's own fitted law";

    /// <summary>
    /// The compressor kind a plan chooses V for when none is asked for: QueCC where the set has it (the world sets),
    /// else an imported set's query-guided one, else its first kind.
    /// </summary>
    public static string PlannedCompressor(Manifest manifest)
    {
        var kinds = manifest.Decoders.SelectMany(d => d.Compressors.Select(c => c.Kind)).ToList();
        return kinds.Contains("quecc") ? "quecc" : kinds.Contains("query") ? "query" : kinds.FirstOrDefault() ?? "quecc";
    }

    /// <summary>The configuration with the best predicted accuracy that fits <paramref name="request"/>'s budget (ties to the cheaper), else the cheapest; every candidate with its cost.</summary>
    public static Plan Choose(Manifest manifest, LawParameters law, Calibration calibration, PlanRequest request)
    {
        if (!(request.LatencyMs > 0)) throw new EngineException($"--latency-ms must be positive, got {request.LatencyMs}");
        if (request.QueryTokens is < 0 or > 4096) throw new EngineException($"--query-tokens must be in 0..4096, got {request.QueryTokens}");
        var all = new List<PlanCandidate>();
        var kind = request.Compressor ?? PlannedCompressor(manifest);
        foreach (var d in manifest.Decoders)
        {
            if (!calibration.Decoders.TryGetValue(d.Name, out var speed))
                throw new EngineException($"calibration has no figures for decoder {d.Name}: recalibrate (--recalibrate)");
            foreach (var c in d.Compressors.Where(c => c.Kind == kind))
                foreach (int v in c.Tokens)
                {
                    var flops = FlopsModel.Ask(manifest, d, c, v, request.QueryTokens, request.AnswerTokens);
                    var key = Calibration.CompressorKey(d.Name, c.Kind, v);
                    if (!calibration.CompressorMs.TryGetValue(key, out var compressorMs))
                        throw new EngineException($"calibration has no figure for {key}: recalibrate (--recalibrate)");
                    double decodeMs = 0;
                    for (int i = 1; i < request.AnswerTokens; i++)
                        decodeMs += speed.Ms(FlopsModel.DecoderRun(d, 1, FlopsModel.PrefixPositions(manifest.Prompt, request.QueryTokens)
                                                                      + FlopsModel.VisualPositions(manifest.Prompt, v, request.QueryTokens) + i - 1));
                    var stages = new Dictionary<string, double>
                    {
                        [StageTimings.Name(Stage.Vision)] = calibration.VisionMs,
                        [StageTimings.Name(Stage.QueryPrefill)] = request.CachedQuery ? 0 : speed.Ms(flops.QueryPrefill),
                        [StageTimings.Name(Stage.Compress)] = compressorMs,
                        [StageTimings.Name(Stage.VisualPrefill)] = speed.Ms(flops.VisualPrefill),
                        [StageTimings.Name(Stage.Decode)] = decodeMs,
                    };
                    all.Add(new PlanCandidate(new ModelChoice(d.Name, c.Kind, v), law.Accuracy(d.Params / 1e9, v), flops, stages, law.Error(d.Params / 1e9, v)));
                }
        }
        if (all.Count == 0) throw new EngineException($"model set '{manifest.Name}' has no '{kind}' compressor to plan with");
        // Lowest predicted error (best accuracy) first; ties go to the cheaper configuration.
        var fitting = all.Where(c => c.TotalMs <= request.LatencyMs).OrderBy(c => c.PredictedError).ThenBy(c => c.TotalMs).ToList();
        if (fitting.Count > 0)
            return new Plan(request.LatencyMs, true, fitting[0], fitting.Count > 1 ? fitting[1] : null, all);
        var cheapest = all.OrderBy(c => c.TotalMs).ToList();
        return new Plan(request.LatencyMs, false, cheapest[0], cheapest.Count > 1 ? cheapest[1] : null, all);
    }

    /// <summary>Every configuration of the planned compressor kind the planner could pick, with its FLOPs per frame (cached query) and the law's accuracy; empty without a law.</summary>
    public static IReadOnlyList<LawPoint> LawPoints(LoadedModels set) => LawPoints(set.Set);

    internal static IReadOnlyList<LawPoint> LawPoints(ModelSet set)
    {
        var manifest = set.Manifest;
        if (manifest.ScalingLaw is not { ValueKind: JsonValueKind.Object }) return [];
        var law = Law(manifest);
        var kind = PlannedCompressor(manifest);
        return manifest.Decoders
            .SelectMany(d => d.Compressors.Where(c => c.Kind == kind).SelectMany(c => c.Tokens.Select(v =>
                new LawPoint(d.Name, v, FlopsModel.Ask(manifest, d, c, v, PlanRequest.DefaultQueryTokens, 2).PerFrameCachedQuery,
                    law.Accuracy(d.Params / 1e9, v)))))
            .ToList();
    }

    /// <summary>
    /// <c>assistant plan</c>: this machine's calibration for <paramref name="set"/> (cached; measured when absent or
    /// <paramref name="recalibrate"/>, saying so through <paramref name="note"/> first), then the plan for <paramref name="request"/>.
    /// </summary>
    public static PlanResult PlanFor(LoadedModels set, PlanRequest request, bool recalibrate, Action<string>? note = null)
    {
        var law = Law(set.Set.Manifest);
        var path = Calibrator.CachePath(set.Set);
        if (recalibrate || !File.Exists(path)) note?.Invoke("calibrating this machine: timing each stage of the set once (then cached)...");
        var (calibration, measured) = Calibrator.Load(set.Set, recalibrate, progress: note);
        return new PlanResult(Choose(set.Set.Manifest, law, calibration, request), measured, calibration.MeasuredUtc, path);
    }
}
