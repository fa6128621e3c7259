namespace Assistant.Engine.Tests;

/// <summary>The live session's fixed-size history: exact percentiles while it fits, a fair sample after, flat memory.</summary>
public sealed class SessionHistoryTests
{
    [Fact]
    public void UpToItsCapacity_TheReservoirKeepsEveryValue_SoPercentilesAreExact()
    {
        var r = new Reservoir(capacity: 100);
        var values = Enumerable.Range(0, 100).Select(i => (double)((i * 37) % 100)).ToList();
        foreach (var v in values) r.Add(v);
        var sorted = values.Order().ToList();
        Assert.Equal(sorted[50], r.Quantile(0.5));
        Assert.Equal(sorted[95], r.Quantile(0.95));
        Assert.Null(new Reservoir().Quantile(0.5));
    }

    [Fact]
    public void PastItsCapacity_ItHoldsCapacityValues_AFairSampleOfAll_TheSameEachRun()
    {
        Reservoir Fill()
        {
            var r = new Reservoir(capacity: 1000);
            for (int i = 0; i < 200_000; i++) r.Add(i % 1000);  // uniform on 0..999, seen 200 times over
            return r;
        }
        var a = Fill();
        Assert.Equal(1000, a.Count);
        Assert.Equal(200_000, a.Seen);
        Assert.InRange(a.Quantile(0.5)!.Value, 450, 550);
        Assert.InRange(a.Quantile(0.95)!.Value, 910, 990);
        Assert.Equal(a.Quantile(0.5), Fill().Quantile(0.5));
    }

    [Fact]
    public void RecentFrames_KeepTheLastFrames_AndClampAnOlderIndexToTheOldestKept()
    {
        var frames = new RecentFrames(capacity: 4);
        for (long f = 0; f < 10; f++) frames.Add(100 + f);
        Assert.Equal(109, frames.At(9));
        Assert.Equal(106, frames.At(6));
        Assert.Equal(106, frames.At(2));  // fell out: the oldest kept
        Assert.Equal(109, frames.At(50));
        Assert.Throws<InvalidOperationException>(() => new RecentFrames().At(0));
    }
}
