using System.Collections.Concurrent;
using Assistant.Capture;
using Assistant.Capture.World;
using Assistant.Inference;
using Assistant.Tests;

namespace Assistant.Engine.Tests;

/// <summary>Collects what a session says; an optional delay per frame makes artificially slow frames.</summary>
internal sealed class Recorder(Func<long, TimeSpan>? delay = null) : ISessionObserver
{
    public ConcurrentQueue<FrameReport> Reports { get; } = new();
    public ConcurrentQueue<SessionNote> Notes { get; } = new();
    public event Action<FrameReport>? Frame;

    public void OnFrame(FrameReport report)
    {
        Reports.Enqueue(report);
        if (delay?.Invoke(report.Index) is { } d && d > TimeSpan.Zero) Thread.Sleep(d);
        Frame?.Invoke(report);
    }

    public void OnNote(SessionNote note) => Notes.Enqueue(note);
}

/// <summary>The Engine's game loop driven directly, on the trained set and the moving world (no CLI text).</summary>
public sealed class LiveSessionTests(TrainedFixture fixture) : IClassFixture<TrainedFixture>
{
    private static WorldFrameSource World(long seed = 2_000_100) => new(new WorldSource(seed, 0.004), 64);

    [Fact]
    public async Task ThreeHundredFrames_OneImmutableReportEach_InOrder()
    {
        using var session = new LiveSession(fixture.Models, LiveSessionOptions.Default with { Frames = 300 }, World());
        var recorder = new Recorder();
        session.Observe(recorder);
        var summary = await session.RunAsync();
        var reports = recorder.Reports.ToList();
        Assert.Equal(SessionEnd.Completed, summary.End);
        Assert.Equal(300, summary.Frames);
        Assert.Equal(Enumerable.Range(0, 300).Select(i => (long)i), reports.Select(r => r.Index));
        Assert.Equal(6, summary.Counters.QueryPrefills);  // a world question every 50 frames
        Assert.True(summary.Counters.VisionRuns < 300);   // the scene-change gate skipped some frames
        Assert.NotNull(summary.LiveAccuracy);
        Assert.All(reports, r => Assert.Equal(r.Index, reports[(int)r.Index].Index));
        Assert.All(reports.Where(r => r.Truth is not null), r => Assert.Equal(r.Answer == r.Truth, r.Correct));
    }

    [Fact]
    public async Task RealtimeCapture_DropsFramesTheLoopHadNoTimeFor_AndCountsThem()
    {
        // Capture at 200 fps; each frame is held 15 ms by an observer, so most captured frames are superseded.
        var options = LiveSessionOptions.Default with { Frames = 40, RealtimeFps = 200 };
        using var session = new LiveSession(fixture.Models, options, World());
        var recorder = new Recorder(_ => TimeSpan.FromMilliseconds(15));
        session.Observe(recorder);
        var summary = await session.RunAsync();
        var (published, taken, dropped) = summary.Capture!.Value;
        Assert.Equal(40, taken);
        Assert.True(dropped > 20, $"dropped {dropped} of {published}");
        Assert.InRange(published - taken - dropped, 0, 1);
        var stamps = recorder.Reports.Select(r => r.CapturedSeconds).ToList();
        Assert.Equal(stamps.Order(), stamps);  // always the newest, never an older frame
        Assert.True(recorder.Reports.Last().Dropped > 0);
    }

    [Fact]
    public async Task RunningSlowly_IsSetUnderSlowFrames_AndClearedWithHysteresis()
    {
        // A 10 fps target (100 ms; a frame here takes 2-10 ms); frames 10-19 are made 180 ms long by the observer.
        var options = LiveSessionOptions.Default with { Frames = 45, TargetFps = 10 };
        using var session = new LiveSession(fixture.Models, options, World());
        var recorder = new Recorder(f => f is >= 10 and < 20 ? TimeSpan.FromMilliseconds(180) : TimeSpan.Zero);
        session.Observe(recorder);
        var summary = await session.RunAsync();
        var slow = recorder.Reports.Select(r => r.IsRunningSlowly).ToList();  // the flag as each frame began
        Assert.All(slow.Take(11), Assert.False);
        int set = slow.IndexOf(true);
        Assert.InRange(set, 12, 14);  // after three slow frames (13), give or take one a loaded host made slow
        Assert.All(slow.Skip(set).Take(20 - set), Assert.True);
        Assert.True(slow[21]);  // hysteresis: still set after the slow frames end
        Assert.False(slow[^1]);  // cleared once on time again
        Assert.False(session.IsRunningSlowly);
        Assert.InRange(summary.SlowFrames, 10, 15);
        Assert.Contains(recorder.Notes, n => n.Message.StartsWith("running slowly", StringComparison.Ordinal));
        Assert.Contains(recorder.Notes, n => n.Message == "back on time");
    }

    [Fact]
    public async Task TargetFps_PacesTheLoop_WithElapsedTimeClamped()
    {
        var options = LiveSessionOptions.Default with { Frames = 20, TargetFps = 50, MaxElapsedMs = 30 };
        using var session = new LiveSession(fixture.Models, options, World());
        var recorder = new Recorder(f => f == 5 ? TimeSpan.FromMilliseconds(200) : TimeSpan.Zero);
        session.Observe(recorder);
        var summary = await session.RunAsync();
        Assert.InRange(summary.Seconds, 0.35, 10);  // 20 frames at 50 fps take at least 0.38 s (less the stall's catch-up)
        Assert.All(recorder.Reports, r => Assert.InRange(r.ElapsedMs, 0, 30));  // the 200 ms stall is clamped
    }

    [Fact]
    public async Task AQuestionPostedFromAnotherThread_IsAnsweredOnALaterFrame()
    {
        var options = LiveSessionOptions.Default with { Frames = 120 };
        using var session = new LiveSession(fixture.Models, options, World());
        var recorder = new Recorder();
        var reached = new ManualResetEventSlim();
        recorder.Frame += r => { if (r.Index == 20) reached.Set(); };
        session.Observe(recorder);
        const string question = "how many circles are there?";
        var poster = Task.Run(() =>
        {
            reached.Wait(TimeSpan.FromSeconds(60));
            session.Post(question);
        });
        await session.RunAsync();
        await poster;
        var asked = recorder.Reports.Where(r => r.Question == question).ToList();
        Assert.NotEmpty(asked);
        Assert.True(asked[0].Index > 20);
        Assert.True(asked[0].QueryPrefilled);
        Assert.All(recorder.Reports.SkipWhile(r => r.Question != question), r => Assert.Equal(question, r.Question));  // the world stops asking
        Assert.Contains(recorder.Notes, n => n.Message == $"frame {asked[0].Index}: new question: {question}");
        Assert.Contains(asked, r => r.AnswerDone && r.Answer.Length > 0);
    }

    [Fact]
    public async Task PauseAndControls_PostedWhileRunning_AreAppliedBetweenFrames()
    {
        var options = LiveSessionOptions.Default with { Frames = 30 };
        using var session = new LiveSession(fixture.Models, options, World());
        var recorder = new Recorder();
        var small = fixture.Models.Decoders.OrderBy(d => d.Spec.Params).First().Spec.Name;
        EngineException? refused = null;
        recorder.Frame += r =>
        {
            if (r.Index == 5) session.Control(new ControlChange(Decoder: small, Tokens: new TokenChoice(4), Mode: AnswerMode.Snapshot));
            // Not offered: refused with its reason before it is queued (issue 32; before, queued and ignored with a warning), the rest stays.
            if (r.Index == 10) refused = Assert.Throws<EngineException>(() => session.Control(new ControlChange(Tokens: new TokenChoice(5))));
        };
        session.Observe(recorder);
        await session.RunAsync();
        var reports = recorder.Reports.ToList();
        Assert.Equal(fixture.Models.Manifest.Default.Decoder, reports[5].Decoder);
        Assert.All(reports.Skip(6), r => Assert.Equal((small, 4, "snapshot"), (r.Decoder, r.Tokens, r.Controls.Mode)));
        Assert.Contains("is not offered", refused!.Message);
    }

    [Fact]
    public async Task AControlToACompressorWhoseGraphCannotOpen_IsRefusedAtOnce_AndTheSessionRunsOn()
    {
        // Compressors open when first used; a control change opens the one it asks for on the caller's thread, so a
        // broken graph is the control's own one-line refusal, not a frame that ends the session.
        var dir = Repo.CopyFolder(Repo.TrainedModels);
        Repo.CutToAThird(Path.Combine(dir, "medium-d128-l3", "quecc_V4.onnx"));
        using var models = ModelSet.Load(dir, new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)));
        using var session = new LiveSession(models, LiveSessionOptions.Default with { Frames = 4 }, World());
        var e = Assert.Throws<EngineException>(() => session.Control(new ControlChange(Tokens: new TokenChoice(4))));
        Assert.Contains("cannot load", e.Message);
        Assert.Contains("quecc_V4.onnx", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        session.Control(new ControlChange(Tokens: new TokenChoice(1)));  // a graph that opens is taken
        var recorder = new Recorder();
        session.Observe(recorder);
        await session.RunAsync();
        Assert.Equal(4, recorder.Reports.Count);
        Assert.All(recorder.Reports, r => Assert.Equal(1, r.Tokens));
    }

    [Fact]
    public async Task AFailingSource_IsSkippedOrStopsTheRun_AsThePolicySays()
    {
        foreach (var policy in new[] { SourceErrorPolicy.Skip, SourceErrorPolicy.Stop })
        {
            using var session = new LiveSession(fixture.Models, LiveSessionOptions.Default with { Frames = 6, OnSourceError = policy, Query = "how many circles are there?" },
                new FailingSource(World(), failAt: 2));
            var recorder = new Recorder();
            session.Observe(recorder);
            var summary = await session.RunAsync();
            var lost = Assert.Single(recorder.Notes, n => n.Error is not null);
            Assert.Equal(2, lost.Frame);
            if (policy == SourceErrorPolicy.Skip)
            {
                Assert.Equal((SessionEnd.Completed, 5L), (summary.End, summary.Frames));
                Assert.Equal([0L, 1, 3, 4, 5], recorder.Reports.Select(r => r.Index));
            }
            else Assert.Equal((SessionEnd.SourceFailed, 2L, 1), (summary.End, summary.Frames, summary.ExitCode));
        }
    }

    [Fact]
    public async Task ARepeatingSourceFailure_IsOneLineWithACount_WhileTheRecordKeepsEveryLostFrame()
    {
        var options = LiveSessionOptions.Default with { Frames = 10, OnSourceError = SourceErrorPolicy.Skip, Query = "how many circles are there?" };
        using var session = new LiveSession(fixture.Models, options, new FailingSource(World(), failAt: 2, failAfter: true));
        var recorder = new Recorder();
        session.Observe(recorder);
        var summary = await session.RunAsync();
        var lost = recorder.Notes.Where(n => n.Error is not null).ToList();
        Assert.Equal(Enumerable.Range(2, 8).Select(i => (long?)i), lost.Select(n => n.Frame));  // every lost frame, for the record
        Assert.Single(lost, n => !n.Repeat);                                                    // one line on the console
        Assert.Contains(recorder.Notes, n => n.Message.EndsWith("the failure above repeated 7 more times", StringComparison.Ordinal));
        Assert.Equal(2, summary.Frames);
    }

    [Fact]
    public async Task Duration_EndsTheRun_EvenWhenEveryFrameIsSkipped()
    {
        // Issue 20: with --on-source-error skip, a 3 s run once ran until it was killed at 20 s.
        var options = LiveSessionOptions.Default with { Frames = null, DurationSeconds = 1, OnSourceError = SourceErrorPolicy.Skip, Query = "how many circles are there?" };
        using var session = new LiveSession(fixture.Models, options, new FailingSource(World(), failAt: 0, failAfter: true));
        var summary = await session.RunAsync();
        Assert.Equal((SessionEnd.Completed, 0L), (summary.End, summary.Frames));
        Assert.InRange(summary.Seconds, 1, 3);
    }

    [Fact]
    public void ASourceWithoutQuestions_NeedsAQuery_BeforeAnyFrame()
    {
        var still = new FailingSource(World(), failAt: -1, name: "folder:x");
        var e = Assert.Throws<EngineException>(() => new LiveSession(fixture.Models, LiveSessionOptions.Default, still));
        Assert.Contains("give --query", e.Message);
    }

    /// <summary>The world, but reading frame <paramref name="failAt"/> (and, with <paramref name="failAfter"/>, every later one) fails; and not a world source, so it has no questions.</summary>
    private sealed class FailingSource(WorldFrameSource world, int failAt, string name = "failing", bool failAfter = false) : IFrameSource
    {
        private int _reads;
        public string Name => name;

        public bool TryRead([System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out Frame frame)
        {
            int read = _reads++;
            if (read == failAt || (failAfter && read > failAt)) throw new CaptureException("the device went away");
            return world.TryRead(out frame);
        }

        public void Dispose() => world.Dispose();
    }
}
