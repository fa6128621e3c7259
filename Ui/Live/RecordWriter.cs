using System.Text.Json;
using System.Text.Json.Serialization;
using Assistant.Engine;

namespace Assistant.Ui.Live;

/// <summary>
/// <c>live --record FILE</c>: the effective session options as the first line (<c>{"session": ...}</c>), then
/// one JSON line per frame report and one per lost frame (<c>{"frame", "error"}</c>). Owns the file. Each line
/// goes to the file in one unbuffered write, so a process cut off by a signal (<see cref="Termination"/>) leaves
/// whole lines only, and every line is on disk as soon as its frame is done.
/// </summary>
internal sealed class RecordWriter : ISessionObserver, IDisposable
{
    // The session line and the notes; a frame line is the report's own JSON (FrameReport.ToJson).
    private static readonly JsonSerializerOptions Json = new() { Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) } };
    private readonly FileStream _file;
    private readonly Lock _gate = new();

    public RecordWriter(string path, LiveSessionOptions options, LiveConfiguration configuration, string provider)
    {
        _file = Open(path);
        Line(JsonSerializer.Serialize(new { session = options, configuration = configuration.Choice.ToString(), provider }, Json));
    }

    /// <summary>
    /// Creates or truncates the file. A folder or an unwritable place is one line; a FIFO opens only once a reader
    /// has it open (a pipe to another program is a fine record), so the open is given 2 s, then refused rather
    /// than left to block the run before its first frame.
    /// </summary>
    private static FileStream Open(string path)
    {
        if (Directory.Exists(path)) throw new EngineException($"--record {path} is a folder; give a file name");
        var opening = Task.Run(() => new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 0));
        try
        {
            if (!opening.Wait(TimeSpan.FromSeconds(2)))
                throw new EngineException($"--record {path} did not open within 2 s: a FIFO with no reader?");
            return opening.Result;
        }
        catch (AggregateException e) when (e.InnerException is IOException or UnauthorizedAccessException)
        {
            throw new EngineException($"cannot write the record file {path}: {e.InnerException.Message}");
        }
    }

    public void OnFrame(FrameReport report) => Line(report.ToJson());

    public void OnNote(SessionNote note)
    {
        if (note.Frame is { } f && note.Error is { } error) Line(JsonSerializer.Serialize(new { frame = f, error }, Json));
    }

    private void Line(string json)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(json + "\n");
        try
        {
            lock (_gate) _file.Write(bytes);
        }
        catch (IOException e)  // a full disk, a device that refuses writes (--record /dev/full was an internal error)
        {
            throw new EngineException($"cannot write the record file {_file.Name}: {e.Message}", exitCode: 1);
        }
    }

    public void Dispose()
    {
        lock (_gate) _file.Dispose();
    }
}

/// <summary>
/// The plain console view: notes on stdout (information) or stderr (warnings), and a line for each completed answer
/// that differs from the last one printed for the same question or is about another file, naming the frame's origin
/// (the file for image files and folders, the capture time otherwise): <c>frame N (ORIGIN): question -> answer (truth
/// T)</c>. A camera's answer that stays the same frame after frame is printed once; every change is printed; every
/// file of a folder gets its line.
/// </summary>
internal sealed class ConsoleLines(TextWriter stdout, TextWriter stderr, bool frameLines) : ISessionObserver
{
    private (string Question, string Answer, string? Origin)? _last;
    private bool _warned;

    /// <summary>How far to trust an answer, for a person: its confidence, and a flag on a picture the set does not know.</summary>
    public static string Trust(FrameReport r) =>
        (r.Confidence is { } c && r.AnswerDone ? $"  (confidence {100 * c:F0}%)" : "") + (r.Familiar == false ? "  [unfamiliar picture: the answer means little]" : "");

    public void OnFrame(FrameReport r)
    {
        if (!frameLines || !r.AnswerDone || _last == (r.Question, r.Answer, r.Origin)) return;
        _last = (r.Question, r.Answer, r.Origin);
        if (r.Familiar == false && !_warned)
        {
            _warned = true;
            stderr.WriteLine($"warning: {PictureFamiliarity.Warning}");
        }
        stdout.WriteLine($"frame {r.Index} ({TerminalText.Printable(r.OriginText)}): {TerminalText.Printable(r.Question)} -> {TerminalText.Printable(r.Answer)}" +
                         (r.Truth is null ? "" : $" (truth {r.Truth})") + Trust(r));
    }

    public void OnNote(SessionNote note)
    {
        if (!note.Repeat) (note.Level == NoteLevel.Info ? stdout : stderr).WriteLine(note.Message);
    }
}

/// <summary>Publishes each frame, and the controls while paused, to the overlay's hub.</summary>
internal sealed class OverlayPublisher(Overlay.OverlayHub hub) : ISessionObserver
{
    private FrameReport? _last;

    public void OnFrame(FrameReport r)
    {
        _last = r;
        hub.Publish(r);
    }

    public void OnNote(SessionNote note) { }

    /// <summary>Shows a change at once, also when paused: the last picture again, with the controls as they are now.</summary>
    public void OnControls(SessionControls controls)
    {
        if (_last is not { } shown) return;
        _last = shown with { Controls = controls };
        hub.Publish(_last);
    }
}
