using Assistant.Capture.World;

namespace Assistant.Capture.Tests;

public sealed class WorldSourceTests
{
    [Fact]
    public void FrameZero_IsTheStaticScene()
    {
        var source = new WorldSource(2_000_000);
        Assert.Equal(WorldScene.Generate(2_000_000), source.ObjectsAt(0));
    }

    [Fact]
    public void Objects_MoveSmoothly_AndStayOnTheCanvas()
    {
        var source = new WorldSource(17, speed: 0.01);
        var previous = source.ObjectsAt(0);
        for (long f = 1; f < 600; f++)
        {
            var now = source.ObjectsAt(f);
            for (int i = 0; i < now.Count; i++)
            {
                var o = now[i];
                Assert.InRange(o.X, o.R, 1 - o.R);
                Assert.InRange(o.Y, o.R, 1 - o.R);
                // A step never exceeds the speed on either axis (a bounce only folds the path back).
                Assert.True(Math.Abs(o.X - previous[i].X) <= 0.01 + 1e-12 && Math.Abs(o.Y - previous[i].Y) <= 0.01 + 1e-12);
                Assert.Equal((previous[i].Shape, previous[i].Color, previous[i].Size), (o.Shape, o.Color, o.Size));
            }
            previous = now;
        }
    }

    [Fact]
    public void Objects_DoMove_AndTheTruthFollowsThem()
    {
        var source = new WorldSource(3, speed: 0.01);
        var moved = source.ObjectsAt(0).Zip(source.ObjectsAt(50)).Count(p => Math.Abs(p.First.X - p.Second.X) + Math.Abs(p.First.Y - p.Second.Y) > 0.05);
        Assert.True(moved >= 2);
        // Over a long run, a left/right question about two moving objects changes its answer.
        var objs = source.ObjectsAt(0);
        var q = new WorldQuestion("spatial", Ref: ObjectRef.Of(objs[0], ["size", "color", "shape"]), Relation: "left of",
            RefB: ObjectRef.Of(objs[1], ["size", "color", "shape"]));
        var truths = Enumerable.Range(0, 2000).Select(f => source.Truth(q, f)).ToHashSet();
        Assert.Equal(new HashSet<string> { "yes", "no" }, truths);
    }

    [Fact]
    public void Frames_AreDeterministic()
    {
        var a = new WorldSource(99).Render(123, 64);
        var b = new WorldSource(99).Render(123, 64);
        Assert.Equal(a.Rgb, b.Rgb);
        Assert.NotEqual(a.Rgb, new WorldSource(99).Render(0, 64).Rgb);
    }
}
