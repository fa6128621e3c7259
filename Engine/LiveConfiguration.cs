using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>
/// What the session runs right now, derived from the budget and any forced choices: the configuration, how
/// many answer tokens a frame may decode, and the FLOPs the budget allows (for the overlay's chart).
/// </summary>
/// <param name="Config">The request the session answers with: <paramref name="Choice"/> and the answer options.</param>
/// <param name="Choice">The (decoder, compressor, V) it runs.</param>
/// <param name="TokensPerFrame">Answer tokens decoded per frame at most.</param>
/// <param name="BudgetFlops">The largest per-frame FLOPs among the configurations that fit the budget; null without a budget or when none fits.</param>
/// <param name="Plan">The planner's answer, when a budget chose the configuration.</param>
public sealed record LiveConfiguration(AskConfig Config, ModelChoice Choice, int TokensPerFrame, double? BudgetFlops, Plan? Plan)
{
    /// <summary>
    /// Plans the configuration on <paramref name="set"/>: the planner's choice for <paramref name="latencyMs"/>
    /// (for a cached query: the session reuses it), then any forced decoder or V. An unknown decoder or V fails
    /// here, before anything changes. <paramref name="calibration"/> is asked for only when there is a budget.
    /// </summary>
    internal static LiveConfiguration Make(ModelSet set, double? latencyMs, string? decoder, int? tokens, int? tokensPerFrame,
        AnswerOptions answer, Func<Calibration> calibration, string? compressor = null)
    {
        var config = new AskConfig(Answer: answer);
        int perFrame = tokensPerFrame ?? 64;
        double? budgetFlops = null;
        Plan? plan = null;
        if (latencyMs is { } budget)
        {
            var cal = calibration();
            var request = new PlanRequest(budget, CachedQuery: true);
            plan = Planner.Choose(set.Manifest, Planner.Law(set.Manifest), cal, request);
            config = AskConfig.For(plan.Choice.Config, answer);
            var fitting = plan.All.Where(x => x.TotalMs <= budget).ToList();
            budgetFlops = fitting.Count == 0 ? null : fitting.Max(x => x.Flops.PerFrameCachedQuery);
            if (tokensPerFrame is null)
            {
                // What the budget leaves after the per-frame stages pays for decode steps (at least one). A step
                // attends to the query, the V visual tokens and their two markers.
                var chosen = set.Manifest.FindDecoder(plan.Choice.Config.Decoder);
                var prompt = set.Manifest.Prompt;
                int past = FlopsModel.PrefixPositions(prompt, request.QueryTokens) + FlopsModel.VisualPositions(prompt, plan.Choice.Config.Tokens, request.QueryTokens);
                double stepMs = cal.Decoders[chosen.Name].Ms(FlopsModel.DecoderRun(chosen, 1, past));
                double fixedMs = new[] { Stage.Vision, Stage.Compress, Stage.VisualPrefill }.Sum(s => plan.Choice.StageMs[StageTimings.Name(s)]);
                perFrame = Math.Max(1, (int)Math.Floor((budget - fixedMs) / Math.Max(stepMs, 1e-6)));
            }
        }
        if (decoder is not null) config = config with { Decoder = decoder };
        if (compressor is not null) config = config with { Compressor = compressor };
        if (tokens is not null) config = config with { Tokens = tokens };
        var choice = config.Choice(set);
        return new LiveConfiguration(AskConfig.For(choice, answer), choice, perFrame, budgetFlops, plan);
    }
}
