using System.CommandLine;
using System.Text.Json;
using Assistant.Engine;

namespace Assistant.Ui;

/// <summary><c>assistant ask --image PATH --query TEXT</c>: one picture, one question, a streamed answer and stage timings.</summary>
internal static class AskCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var image = new Option<string>("--image") { Description = "image file (PNG, JPEG, BMP, GIF, TGA, WebP, TIFF)", Required = true };
        var query = new Option<string>("--query") { Description = "the question", Required = true };
        var models = new Option<string?>("--models") { Description = "model set folder (default: models/default)" };
        var tokens = new Option<int?>("--tokens") { Description = "visual tokens V (one the set offers; default from the manifest)" };
        var decoder = new Option<string?>("--decoder") { Description = "decoder name (default from the manifest)" };
        var compressor = new Option<string?>("--compressor") { Description = "the set's compressor kind: quecc or tokenpacker (world sets), full, pool or query (imported sets), and quecc or tokenpacker on an imported set after `models distill`; default from the manifest" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "answer length limit in tokens", DefaultValueFactory = _ => 32 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy; > 0 samples", DefaultValueFactory = _ => 0f };
        var topP = new Option<float>("--top-p") { Description = "nucleus sampling mass (with --temperature > 0)", DefaultValueFactory = _ => 1f };
        var seed = new Option<int>("--seed") { Description = "sampling seed", DefaultValueFactory = _ => 0 };
        var ignoreStop = new Option<bool>("--ignore-stop") { Description = "decode all --max-tokens: past stop tokens, the word limit and the repetition guard (to compare with other runtimes)" };
        var route = RouteOption();
        var ocrModels = ReadCommand.OcrModelsOption();
        var ep = Cli.EpOption();
        var json = Cli.JsonOption();

        var command = new Command("ask", "Answer a question about an image, streaming the answer, then print per-stage timings. Questions about text on it (read, says, error, ...) go to OCR.")
        {
            image, query, models, tokens, decoder, compressor, maxTokens, temperature, topP, seed, ignoreStop, route, ocrModels, ep, json,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            // Cheap checks first, so bad input fails before any model loads.
            var q = AskPipeline.ValidateQuery(parse.GetValue(query));
            var frame = FramePicture.Load(parse.GetValue(image)!);
            int max = parse.GetValue(maxTokens);
            bool ignore = parse.GetValue(ignoreStop);
            var answerOptions = new AnswerOptions(max, parse.GetValue(temperature), parse.GetValue(topP), parse.GetValue(seed), ignore, ignore ? 0 : 4).Validate();
            var decision = QueryRouter.Decide(q, parse.GetValue(route)!);
            if (decision.Route == QueryRoute.Ocr)
            {
                using var reader = ReadCommand.LoadReader(parse.GetValue(ocrModels), parse.GetValue(ep)!, stderr);
                return AnswerByReading(reader, frame, decision, parse.GetValue(json), stdout, stderr);
            }
            using var set = Cli.LoadModels(parse.GetValue(models), parse.GetValue(ep)!, stderr);
            var pipeline = new AskPipeline(set);
            var config = new AskConfig(parse.GetValue(decoder), parse.GetValue(compressor), parse.GetValue(tokens), answerOptions);
            var resolved = pipeline.Resolve(config);

            var timings = new StageTimings();
            var ids = new List<int>();
            var answer = new System.Text.StringBuilder();
            bool asJson = parse.GetValue(json);
            bool cancelled = false;
            try
            {
                await foreach (var t in pipeline.AskAsync(frame, q, config, timings, cancellation))
                {
                    ids.Add(t.Id);
                    answer.Append(t.Text);
                    if (!asJson)
                    {
                        stdout.Write(TerminalText.Printable(t.Text));  // --json keeps the exact text
                        stdout.Flush();
                    }
                }
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                cancelled = true;
            }

            if (asJson)
            {
                var result = new
                {
                    answer = answer.ToString(),
                    token_ids = ids,
                    cancelled,
                    models = set.Directory,
                    set_name = set.Name,
                    ep = set.Provider,
                    decoder = resolved.Decoder,
                    compressor = resolved.Compressor,
                    tokens = resolved.Tokens,
                    query_tokens = timings.QueryTokens,
                    route = "visual",
                    route_rule = decision.Rule,
                    timings_ms = timings.ToDictionary(),
                    decode_tokens_per_s = Math.Round(timings.DecodeTokensPerSecond, 2),
                    confidence = timings.Confidence is { } c ? Math.Round(c, 4) : (double?)null,
                    familiar = timings.Familiarity?.Familiar,
                    familiarity = timings.Familiarity is { } f ? Math.Round(f.Score, 3) : (double?)null,
                    familiarity_threshold = timings.Familiarity?.Threshold,
                };
                stdout.WriteLine(JsonSerializer.Serialize(result));
            }
            else
            {
                stdout.WriteLine(cancelled ? " [cancelled]" : "");
                // The answer alone on stdout (`$(assistant ask ...)` is the answer); how it was made, and how far to trust it, on stderr.
                stderr.WriteLine($"[{resolved} on {set.Provider}, {decision}] {timings.Line(resolved.Compressor)}" +
                                 (timings.Confidence is { } c ? $"  | confidence {100 * c:F0}%" : ""));
                if (timings.Familiarity is { Familiar: false } f)
                    stderr.WriteLine($"warning: {PictureFamiliarity.Warning} (familiarity score {f.Score:F1}, at most {f.Threshold:F1} for its scenes)");
            }
            return cancelled ? 130 : 0;
        });
        return command;
    }

    internal static Option<string> RouteOption() => new("--route")
    {
        Description = "auto (text questions to OCR, the rest to the visual path), visual or ocr",
        DefaultValueFactory = _ => "auto",
    };

    /// <summary>
    /// A text question is answered with the text read. The shipped decoders were trained on world questions
    /// only, so OCR text is given straight to the user (read mode) rather than put in their prompt.
    /// </summary>
    private static int AnswerByReading(TextReading reader, FramePicture frame, RouteDecision decision, bool asJson, TextWriter stdout, TextWriter stderr)
    {
        var result = reader.Read(frame);
        var text = result.Lines.Count == 0 ? "(no text found)" : result.Text;
        if (asJson)
        {
            stdout.WriteLine(JsonSerializer.Serialize(new
            {
                answer = text,
                route = "ocr",
                route_rule = decision.Rule,
                lines = result.Lines.Select(l => new { text = l.Text, confidence = Math.Round(l.Confidence, 4), box = new[] { l.X, l.Y, l.Width, l.Height } }),
                timings_ms = new { detect = Math.Round(result.Detect.TotalMilliseconds, 3), recognize = Math.Round(result.Recognize.TotalMilliseconds, 3) },
            }));
        }
        else
        {
            stdout.WriteLine(TerminalText.Printable(text));
            stderr.WriteLine($"[ocr, {decision}] detect {result.Detect.TotalMilliseconds:F1} ms  recognize {result.Recognize.TotalMilliseconds:F1} ms  | {result.Lines.Count} lines");
        }
        return 0;
    }
}
