using System.CommandLine;
using Assistant.Capture.Screen;
using Assistant.Engine;
using Assistant.Inference;

namespace Assistant.Ui;

/// <summary><c>assistant hotkey</c>: each press of a global key grabs the screen and answers the question about it (X11).</summary>
internal static class HotkeyCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var key = new Option<string>("--key") { Description = "X keysym of the hotkey (F9, Pause, Scroll_Lock, ...)", DefaultValueFactory = _ => "F9" };
        var query = new Option<string>("--query") { Description = "the question asked about the screen at each press", Required = true };
        var presses = new Option<int?>("--presses") { Description = "stop after this many presses (default: until Ctrl+C)" };
        var display = new Option<string?>("--display") { Description = "X display (default: $DISPLAY)" };
        var models = new Option<string?>("--models") { Description = "model set folder (default: models/default)" };
        var tokens = new Option<int?>("--tokens") { Description = "visual tokens V (default from the manifest)" };
        var ep = Cli.EpOption();
        var command = new Command("hotkey", "Wait for a global hotkey; on each press capture the screen and answer the question about it.")
        {
            key, query, presses, display, models, tokens, ep,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            int? limit = parse.GetValue(presses);
            if (limit is < 1) throw new EngineException($"--presses must be at least 1, got {limit}");
            var q = AskPipeline.ValidateQuery(parse.GetValue(query));
            using var set = Cli.LoadModels(parse.GetValue(models), parse.GetValue(ep)!, stderr);
            var pipeline = new AskPipeline(set);
            var config = new AskConfig(Tokens: parse.GetValue(tokens), Generation: new GenerationOptions(32));
            WorldQuery.Normalize(q, set.Manifest.World);  // an unknown word fails now, not at the first press
            var displayName = parse.GetValue(display);
            using var screen = new X11ScreenSource(displayName);
            using var hotkey = new X11Hotkey(parse.GetValue(key)!, displayName);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
            Console.CancelKeyPress += onCancel;
            try
            {
                stdout.WriteLine($"waiting for {hotkey.Key} on the screen ({screen.ScreenWidth}x{screen.ScreenHeight}); Ctrl+C ends");
                stdout.Flush();
                int count = 0;
                while ((limit is null || count < limit) && await hotkey.WaitAsync(cts.Token))
                {
                    count++;
                    screen.TryRead(out var frame);
                    var timings = new StageTimings();
                    var answer = new System.Text.StringBuilder();
                    await foreach (var t in pipeline.AskAsync(frame, q, config, timings, cts.Token))
                        answer.Append(t.Text);
                    stdout.WriteLine($"press {count}: {answer.ToString().Trim()}");
                    stdout.WriteLine($"  {timings}");
                    stdout.Flush();
                }
                return 0;
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
        });
        return command;
    }
}
