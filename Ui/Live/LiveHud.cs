using Assistant.Engine;
using Spectre.Console;

namespace Assistant.Ui.Live;

/// <summary>
/// The console HUD of <c>assistant live --hud</c>: a Spectre.Console live table redrawn at most 10 times a
/// second (drawing every frame would cost more than a small model's frame). Notes go to stderr as lines.
/// </summary>
internal sealed class LiveHud(TextWriter stderr) : ISessionObserver
{
    private static readonly string[] Rows = ["frame", "question", "answer", "truth", "live accuracy", "configuration", "fps", "stages (ms)", "caches"];
    private readonly Table _table = MakeTable();
    private LiveDisplayContext? _context;
    private long _lastDraw;

    private static Table MakeTable()
    {
        var table = new Table().Border(TableBorder.Rounded).HideHeaders().AddColumn("").AddColumn("");
        foreach (var r in Rows) table.AddRow(new Markup($"[grey]{r}[/]"), new Text(""));
        return table;
    }

    /// <summary>Runs <paramref name="run"/> with the table on screen.</summary>
    public async Task<T> ShowAsync<T>(Func<Task<T>> run)
    {
        T result = default!;
        await AnsiConsole.Live(_table).AutoClear(false).StartAsync(async ctx =>
        {
            _context = ctx;
            result = await run();
            ctx.Refresh();
        });
        return result;
    }

    public void OnFrame(FrameReport r)
    {
        long now = Environment.TickCount64;
        if (_context is null || now - _lastDraw < 100) return;
        _lastDraw = now;
        var c = r.Counters;
        string[] values =
        [
            r.Index.ToString(), TerminalText.Printable(r.Question), TerminalText.Printable(r.Answer) + ConsoleLines.Trust(r), r.Truth ?? "-",
            r.LiveAccuracy is { } a ? $"{100 * a:F1}%" : "-", $"{r.Decoder} + {r.Compressor} V={r.Tokens}", $"{r.Fps:F1}{(r.IsRunningSlowly ? " (running slowly)" : "")}",
            string.Join("  ", r.StageMs.Select(kv => $"{kv.Key} {kv.Value:F2}")),
            $"vision ran {c.VisionRuns}/{c.Frames}, compressor {c.CompressorRuns}, query prefills {c.QueryPrefills}, prefix reused {Math.Max(0, c.Frames - c.PrefixPrefills)}, dropped {r.Dropped}",
        ];
        for (int i = 0; i < values.Length; i++) _table.UpdateCell(i, 1, new Text(values[i]));
        _context.Refresh();
    }

    public void OnNote(SessionNote note)
    {
        if (note.Level == NoteLevel.Warning && !note.Repeat) stderr.WriteLine(note.Message);
    }
}
