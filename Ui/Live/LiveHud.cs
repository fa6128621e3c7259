using Assistant.Engine;
using Spectre.Console;

namespace Assistant.Ui.Live;

/// <summary>
/// The console HUD of <c>assistant live --hud</c>: a Spectre.Console live table redrawn at most 10 times a second
/// (drawing every frame would cost more than a small model's frame). It has its own input line: keys are read
/// without echo (<see cref="ReadKeysAsync"/>), so typed text is drawn in the table's "ask" row and never over the
/// box; Enter asks. What happens to a question (taken, ignored and why, sent to OCR) and every warning show in its
/// "note" row, not as lines a redraw would overwrite.
/// </summary>
internal sealed class LiveHud : ISessionObserver
{
    private static readonly string[] Rows = ["frame", "question", "answer", "truth", "live accuracy", "configuration", "fps", "stages (ms)", "caches", "note", "ask"];
    private const int NoteRow = 9, AskRow = 10, MaxInput = 500;
    private readonly Table _table = MakeTable();
    private readonly Lock _gate = new();  // the table, the input and the note: the loop's thread and the key reader's
    private readonly System.Text.StringBuilder _input = new();
    private LiveDisplayContext? _context;
    private long _lastDraw;
    private string _note = "type a question and press Enter (Esc clears)";

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
            lock (_gate)
            {
                _context = ctx;
                DrawInput();
            }
            result = await run();
            lock (_gate) ctx.Refresh();
        });
        return result;
    }

    /// <summary>
    /// Reads keys from the terminal without echo until <paramref name="stop"/>: printable keys edit the "ask" row,
    /// Backspace deletes, Escape clears, Enter hands the line to <paramref name="ask"/>. Polls, so it ends promptly.
    /// </summary>
    public Task ReadKeysAsync(Action<string> ask, CancellationToken stop) => Task.Run(async () =>
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                if (!Console.KeyAvailable)
                {
                    await Task.Delay(30, stop);
                    continue;
                }
                var key = Console.ReadKey(intercept: true);
                string? line = null;
                lock (_gate)
                {
                    if (key.Key == ConsoleKey.Enter)
                    {
                        line = _input.ToString().Trim();
                        _input.Clear();
                    }
                    else if (key.Key == ConsoleKey.Backspace && _input.Length > 0) _input.Length--;
                    else if (key.Key == ConsoleKey.Escape) _input.Clear();
                    else if (!char.IsControl(key.KeyChar) && _input.Length < MaxInput) _input.Append(key.KeyChar);
                    DrawInput();
                }
                if (!string.IsNullOrEmpty(line)) ask(line);
            }
        }
        catch (OperationCanceledException)
        {
            // the session ended
        }
        catch (InvalidOperationException)
        {
            // no terminal to read keys from (input redirected): typed lines come through stdin instead
        }
    });

    /// <summary>The "ask" and "note" rows, redrawn at once (typing should not wait for a frame). Under <see cref="_gate"/>.</summary>
    private void DrawInput()
    {
        _table.UpdateCell(AskRow, 1, new Text("> " + TerminalText.Printable(_input.ToString()) + "_"));
        _table.UpdateCell(NoteRow, 1, new Text(TerminalText.Printable(_note)));
        _context?.Refresh();
    }

    public void OnFrame(FrameReport r)
    {
        long now = Environment.TickCount64;
        if (now - _lastDraw < 100) return;
        _lastDraw = now;
        var c = r.Counters;
        string[] values =
        [
            r.Index.ToString(), TerminalText.Printable(r.Question), TerminalText.Printable(r.Answer) + ConsoleLines.Trust(r), r.Truth ?? "-",
            r.LiveAccuracy is { } a ? $"{100 * a:F1}%" : "-", $"{r.Decoder} + {r.Compressor} V={r.Tokens}", $"{r.Fps:F1}{(r.IsRunningSlowly ? " (running slowly)" : "")}",
            string.Join("  ", r.StageMs.Select(kv => $"{kv.Key} {kv.Value:F2}")),
            $"vision ran {c.VisionRuns}/{c.Frames}, compressor {c.CompressorRuns}, query prefills {c.QueryPrefills}, prefix reused {Math.Max(0, c.Frames - c.PrefixPrefills)}, dropped {r.Dropped}",
        ];
        lock (_gate)
        {
            if (_context is null) return;
            for (int i = 0; i < values.Length; i++) _table.UpdateCell(i, 1, new Text(values[i]));
            DrawInput();
        }
    }

    /// <summary>A note shows in the table's note row (a line printed under a live table would be drawn over at once).</summary>
    public void OnNote(SessionNote note)
    {
        if (note.Repeat) return;
        lock (_gate)
        {
            _note = (note.Level == NoteLevel.Warning ? "warning: " : "") + note.Message;
            if (_context is not null) DrawInput();
        }
    }
}
