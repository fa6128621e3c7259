namespace Assistant.Capture.Tests;

public sealed class LatestFrameTests
{
    private static Frame FrameAt(int i) => new([(byte)i, 0, 0], 1, 1, TimeSpan.FromMilliseconds(i));

    [Fact]
    public async Task AFastProducer_AndASlowConsumer_NeverBuildAQueue()
    {
        var latest = new LatestFrame();
        using var stop = new CancellationTokenSource();
        int produced = 0, maxPending = 0;
        var producer = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                latest.Publish(FrameAt(produced++ % 256));
                maxPending = Math.Max(maxPending, latest.Pending);
                Thread.SpinWait(200);
            }
        });
        var seen = new List<TimeSpan>();
        for (int i = 0; i < 20; i++)
        {
            Assert.True(latest.TryTake(TimeSpan.FromSeconds(5), out var f));
            seen.Add(f.Timestamp);
            await Task.Delay(5);  // a slow frame loop
        }
        stop.Cancel();
        await producer;
        var (published, taken, dropped) = latest.Counts;
        Assert.Equal(1, maxPending);
        Assert.Equal(20, taken);
        Assert.True(dropped > 0, "the slow consumer should have skipped frames");
        Assert.InRange(published - taken - dropped, 0, 1);  // every frame was taken, dropped, or is the one waiting
    }

    [Fact]
    public void TheNewestFrameWins()
    {
        var latest = new LatestFrame();
        latest.Publish(FrameAt(1));
        latest.Publish(FrameAt(2));
        latest.Publish(FrameAt(3));
        Assert.True(latest.TryTake(TimeSpan.Zero, out var f));
        Assert.Equal(3, f.Rgb[0]);
        Assert.Equal((3L, 1L, 2L), latest.Counts);
        Assert.False(latest.TryTake(TimeSpan.FromMilliseconds(20), out _));
    }
}
