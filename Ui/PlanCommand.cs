using System.CommandLine;
using System.Text.Json;
using Assistant.Engine;

namespace Assistant.Ui;

/// <summary><c>assistant plan --latency-ms L</c>: the (decoder, V) with the best predicted accuracy that fits a latency budget here.</summary>
internal static class PlanCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var latency = new Option<double>("--latency-ms") { Description = "latency budget per answer, in milliseconds", Required = true };
        var queryTokens = new Option<int>("--query-tokens") { Description = "query length in tokens", DefaultValueFactory = _ => PlanRequest.DefaultQueryTokens };
        var cached = new Option<bool>("--cached-query") { Description = "the query's KV cache is reused (a live question asked again each frame)" };
        var answerTokens = new Option<int>("--answer-tokens") { Description = "tokens to generate per answer", DefaultValueFactory = _ => 2 };
        var recalibrate = new Option<bool>("--recalibrate") { Description = "measure this machine again instead of using the cached calibration" };
        var models = new Option<string?>("--models") { Description = "model set folder (default: models/default)" };
        var ep = Cli.EpOption();
        var json = Cli.JsonOption();
        var command = new Command("plan", "Choose the decoder and visual-token count with the best predicted accuracy within a latency budget on this machine.")
        {
            latency, queryTokens, cached, answerTokens, recalibrate, models, ep, json,
        };
        command.SetAction(parse =>
        {
            int answers = parse.GetValue(answerTokens);
            if (answers is < 1 or > 4096) throw new EngineException($"--answer-tokens must be in 1..4096, got {answers}");
            var request = new PlanRequest(parse.GetValue(latency), parse.GetValue(queryTokens), parse.GetValue(cached), answers);
            using var set = Cli.LoadModels(parse.GetValue(models), parse.GetValue(ep)!, stderr);
            var (plan, measured, measuredUtc, calibrationPath) = Planner.PlanFor(set, request, parse.GetValue(recalibrate), stderr.WriteLine);

            static object Describe(PlanCandidate c) => new
            {
                decoder = c.Config.Decoder, compressor = c.Config.Compressor, tokens = c.Config.Tokens,
                predicted_accuracy = Math.Round(c.PredictedAccuracy, 4), total_ms = Math.Round(c.TotalMs, 3),
                stage_ms = c.StageMs.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value, 3)),
                mflop = new
                {
                    vision = Math.Round(c.Flops.Vision / 1e6, 3), query_prefill = Math.Round(c.Flops.QueryPrefill / 1e6, 3),
                    quecc = Math.Round(c.Flops.Compressor / 1e6, 3), visual_prefill = Math.Round(c.Flops.VisualPrefill / 1e6, 3),
                    decode = Math.Round(c.Flops.Decode / 1e6, 3),
                },
            };
            if (parse.GetValue(json))
            {
                stdout.WriteLine(JsonSerializer.Serialize(new
                {
                    models = set.Directory, set_name = set.Name, law = Planner.LawOrigin(set), budget_ms = plan.BudgetMs, fits = plan.Fits, query_tokens = request.QueryTokens, cached_query = request.CachedQuery,
                    answer_tokens = request.AnswerTokens, ep = set.Provider,
                    calibration = new { path = calibrationPath, measured, measured_utc = measuredUtc },
                    choice = Describe(plan.Choice), runner_up = plan.RunnerUp is { } r ? Describe(r) : null,
                    candidates = plan.All.Select(Describe),
                }));
                return 0;
            }
            string Line(PlanCandidate c) =>
                $"{c.Config}: predicted accuracy {100 * c.PredictedAccuracy:F1}%, {c.TotalMs:F2} ms " +
                $"({string.Join(", ", c.StageMs.Select(kv => $"{kv.Key} {kv.Value:F2}"))}), {c.Flops.Total / 1e6:F1} MFLOP" +
                (request.CachedQuery ? $" ({c.Flops.PerFrameCachedQuery / 1e6:F1} per frame with the query cached)" : "");
            stdout.WriteLine($"budget {plan.BudgetMs:G4} ms per answer; query {request.QueryTokens} tokens{(request.CachedQuery ? " (cached)" : "")}, " +
                             $"answer {request.AnswerTokens} tokens; {set.Provider}, calibration {(measured ? "measured now" : $"from {measuredUtc:u}")}");
            stdout.WriteLine($"  predicted accuracy: {Planner.LawOrigin(set)}");
            if (plan.Fits)
            {
                stdout.WriteLine($"  choice     {Line(plan.Choice)}");
                if (plan.RunnerUp is { } runner) stdout.WriteLine($"  runner-up  {Line(runner)}");
            }
            else
            {
                stdout.WriteLine($"  nothing fits {plan.BudgetMs:G4} ms on this machine; the cheapest is:");
                stdout.WriteLine($"  cheapest   {Line(plan.Choice)}");
            }
            return 0;
        });
        return command;
    }
}
