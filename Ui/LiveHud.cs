using Assistant.Engine;
using Spectre.Console;

namespace Assistant.Ui;

/// <summary>What the HUD shows after a frame.</summary>
internal sealed record HudState(long Frame, string Question, string Answer, string? Truth, double? Accuracy, StageTimings Timings,
    double Fps, string Configuration, LoopCounters Counters, long Dropped);

/// <summary>
/// The console HUD of <c>assistant live --hud</c>: a Spectre.Console live table redrawn at most 10 times a
/// second (drawing every frame would cost more than a small model's frame).
/// </summary>
internal static class LiveHud
{
    public static async Task RunAsync(Action<Action<HudState>> attach, Func<Task> run)
    {
        var table = new Table().Border(TableBorder.Rounded).HideHeaders().AddColumn("").AddColumn("");
        var rows = new[] { "frame", "question", "answer", "truth", "live accuracy", "configuration", "fps", "stages (ms)", "caches" };
        foreach (var r in rows) table.AddRow(new Markup($"[grey]{r}[/]"), new Text(""));
        long lastDraw = 0;
        await AnsiConsole.Live(table).AutoClear(false).StartAsync(async ctx =>
        {
            attach(s =>
            {
                long now = Environment.TickCount64;
                if (now - lastDraw < 100) return;
                lastDraw = now;
                var t = s.Timings;
                string[] values =
                [
                    s.Frame.ToString(), s.Question, s.Answer, s.Truth ?? "-",
                    s.Accuracy is { } a ? $"{100 * a:F1}%" : "-", s.Configuration, $"{s.Fps:F1}",
                    string.Join("  ", Enum.GetValues<Stage>().Select(st => $"{StageTimings.Name(st)} {t[st]:F2}")),
                    $"vision ran {s.Counters.VisionRuns}/{s.Counters.Frames}, quecc {s.Counters.CompressorRuns}, query prefills {s.Counters.QueryPrefills}, dropped {s.Dropped}",
                ];
                for (int i = 0; i < values.Length; i++) table.UpdateCell(i, 1, new Text(values[i]));
                ctx.Refresh();
            });
            await run();
            ctx.Refresh();
        });
    }
}
