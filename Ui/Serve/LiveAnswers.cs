using Assistant.Engine;

namespace Assistant.Ui.Serve;

/// <summary>A live session's answer to a request's question: the text and the frame it describes.</summary>
internal sealed record LiveAnswer(string Text, long Frame, double CapturedSeconds, ModelChoice Choice, IReadOnlyDictionary<string, double> StageMs);

/// <summary>
/// Answers an API request without a picture about the live session's newest frames (<c>live --serve</c>): the question
/// is posted to the session as a typed one is (so the HUD, the overlay and the record file show it, and the loop's
/// caches serve it), and the first complete answer to it in a frame report is the response. One question at a time:
/// a second request waits for the first, as a second typed question would replace it. Observes the session.
/// </summary>
internal sealed class LiveAnswers(LiveSession session, AskPipeline checker) : ISessionObserver
{
    /// <summary>How long a question may go unanswered (a paused session, a source that stopped) before the request fails.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly SemaphoreSlim _one = new(1, 1);
    private readonly Lock _gate = new();
    private Waiter? _waiter;  // guarded by _gate
    private long _lastFrame = -1;  // guarded by _gate

    private sealed class Waiter(string question, long after)
    {
        public string Question { get; } = question;
        public long After { get; } = after;
        public TaskCompletionSource<FrameReport> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Posts <paramref name="question"/> and waits for its first complete answer; a question the set cannot take is an <see cref="EngineException"/> at once.</summary>
    public async Task<LiveAnswer> AskAsync(string question, CancellationToken cancellation)
    {
        string normalized = checker.CheckQuery(question);
        await _one.WaitAsync(cancellation);
        try
        {
            Waiter waiter;
            lock (_gate) _waiter = waiter = new Waiter(normalized, _lastFrame);
            session.Post(question);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            timeout.CancelAfter(Patience);
            FrameReport report;
            try
            {
                report = await waiter.Done.Task.WaitAsync(timeout.Token);
            }
            catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
            {
                throw new ApiException(504, $"the live session gave no answer within {Patience.TotalSeconds:F0} s (paused, or its source stopped?)", "server_error", "live_timeout");
            }
            finally
            {
                lock (_gate) _waiter = null;
            }
            return new LiveAnswer(report.Answer, report.Index, report.CapturedSeconds, report.Choice, report.StageMs);
        }
        finally
        {
            _one.Release();
        }
    }

    public void OnFrame(FrameReport report)
    {
        lock (_gate)
        {
            _lastFrame = report.Index;
            if (_waiter is { } w && report.Index > w.After && report.Question == w.Question && report.AnswerDone)
                w.Done.TrySetResult(report);
        }
    }

    public void OnNote(SessionNote note) { }
}
