using System.CommandLine;
using Assistant.Engine;

namespace Assistant.Ui;

/// <summary>
/// <c>assistant hotkey</c>: each press of a global key grabs the screen and either answers the question about
/// it (<c>--mode ask</c>; a text question goes to OCR, as in ask) or reads its text aloud on stdout (<c>--mode read</c>). X11.
/// </summary>
internal static class HotkeyCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var key = new Option<string>("--key") { Description = "X keysym of the hotkey (F9, Pause, Scroll_Lock, ...)", DefaultValueFactory = _ => "F9" };
        var mode = new Option<string>("--mode") { Description = "ask: answer --query about the screen; read: print the screen's text (OCR)", DefaultValueFactory = _ => "ask" };
        var query = new Option<string?>("--query") { Description = "the question asked about the screen at each press (--mode ask)" };
        var region = new Option<string?>("--region") { Description = "only X,Y,W,H of the screen" };
        var presses = new Option<int?>("--presses") { Description = "stop after this many presses (default: until Ctrl+C)" };
        var display = new Option<string?>("--display") { Description = "X display (default: $DISPLAY)" };
        var models = new Option<string?>("--models") { Description = "model set folder (default: models/default)" };
        var tokens = new Option<int?>("--tokens") { Description = "visual tokens V (default from the manifest)" };
        var route = AskCommand.RouteOption();
        var ocrModels = ReadCommand.OcrModelsOption();
        var ep = Cli.EpOption();
        var command = new Command("hotkey", "Wait for a global hotkey; on each press capture the screen and answer the question about it, or read its text.")
        {
            key, mode, query, region, presses, display, models, tokens, route, ocrModels, ep,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            int? limit = parse.GetValue(presses);
            if (limit is < 1) throw new EngineException($"--presses must be at least 1, got {limit}");
            var m = parse.GetValue(mode)!;
            if (m is not ("ask" or "read")) throw new EngineException($"--mode must be ask or read, got '{m}'");
            var regionText = parse.GetValue(region);
            var area = regionText is null ? ((int, int, int, int)?)null : ReadCommand.ParseRegion(regionText);
            // Read mode, or a text question, needs OCR; a visual question needs the model set. Load only what is used.
            string? q = null;
            RouteDecision decision = new(QueryRoute.Ocr, "read mode");
            if (m == "ask")
            {
                q = AskPipeline.ValidateQuery(parse.GetValue(query));
                decision = QueryRouter.Decide(q, parse.GetValue(route)!);
            }
            else if (parse.GetValue(query) is not null) throw new EngineException("--query is for --mode ask; read mode reads the whole screen");
            using var reader = decision.Route == QueryRoute.Ocr ? ReadCommand.LoadReader(parse.GetValue(ocrModels), parse.GetValue(ep)!, stderr) : null;
            using var set = decision.Route == QueryRoute.Visual ? Cli.LoadModels(parse.GetValue(models), parse.GetValue(ep)!, stderr) : null;
            var pipeline = set is null ? null : new AskPipeline(set);
            var config = new AskConfig(Tokens: parse.GetValue(tokens), Answer: new AnswerOptions(32));
            pipeline?.CheckQuery(q);  // an unknown word fails now, not at the first press
            var displayName = parse.GetValue(display);
            using var screen = ScreenCapture.Open(displayName, area);
            using var hotkey = GlobalHotkey.Open(parse.GetValue(key)!, displayName);
            stdout.WriteLine($"waiting for {hotkey.Key} on the screen ({screen.ScreenWidth}x{screen.ScreenHeight}), {(m == "read" ? "reading its text" : decision.ToString())}; Ctrl+C ends");
            stdout.Flush();
            int count = 0;
            while ((limit is null || count < limit) && await hotkey.WaitAsync(cancellation))
            {
                count++;
                var frame = screen.Grab();
                if (reader is not null)
                {
                    var read = reader.Read(frame);
                    stdout.WriteLine($"press {count}: {read.Lines.Count} lines");
                    foreach (var line in read.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries)) stdout.WriteLine($"  {line}");
                    stdout.WriteLine($"  ocr: detect {read.Detect.TotalMilliseconds:F1} ms  recognize {read.Recognize.TotalMilliseconds:F1} ms");
                    stdout.Flush();
                    continue;
                }
                var timings = new StageTimings();
                var answer = new System.Text.StringBuilder();
                await foreach (var t in pipeline!.AskAsync(frame, q!, config, timings, cancellation))
                    answer.Append(t.Text);
                stdout.WriteLine($"press {count}: {TerminalText.Printable(answer.ToString().Trim())}");
                stdout.WriteLine($"  {decision}  {timings}");
                stdout.Flush();
            }
            return 0;
        });
        return command;
    }
}
