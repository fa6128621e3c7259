namespace Assistant.Capture.World;

/// <summary>
/// The world as a live picture: a scene whose objects drift smoothly and bounce off the canvas edges.
/// Frame <c>n</c> is a pure function of (seed, n), so the truth of any question is known at every frame
/// (<see cref="Truth"/>), which is what lets a live run be scored. Objects may pass over each other.
/// </summary>
public sealed class WorldSource
{
    private readonly IReadOnlyList<WorldObject> _start;
    private readonly (double Vx, double Vy)[] _velocity;

    /// <param name="seed">Scene seed: frame 0 is exactly <see cref="WorldScene.Generate"/>(seed).</param>
    /// <param name="speed">Canvas units per frame (0.004: about a quarter of the canvas every 60 frames).</param>
    public WorldSource(long seed, double speed = 0.004)
    {
        if (!(speed >= 0 && speed < 0.1)) throw new ArgumentOutOfRangeException(nameof(speed), speed, "speed must be in [0, 0.1) canvas units per frame");
        Seed = seed;
        _start = WorldScene.Generate(seed);
        // Directions come from their own stream so the scene itself stays identical to the static world's.
        var rng = new SplitMix64(unchecked((ulong)seed ^ 0xA5A5_5A5A_F00D_BEEFUL));
        _velocity = _start.Select(_ =>
        {
            // A direction on the unit circle without trigonometry: rejection-sample the unit disc.
            double x, y, r2;
            do
            {
                x = 2 * rng.Uniform() - 1;
                y = 2 * rng.Uniform() - 1;
                r2 = x * x + y * y;
            } while (r2 > 1 || r2 < 1e-4);
            double scale = speed / Math.Sqrt(r2);
            return (x * scale, y * scale);
        }).ToArray();
    }

    /// <summary>The scene seed the world starts from.</summary>
    public long Seed { get; }

    /// <summary>Where every object is at frame <paramref name="frame"/>: straight motion, reflected at the edges.</summary>
    public IReadOnlyList<WorldObject> ObjectsAt(long frame)
    {
        if (frame < 0) throw new ArgumentOutOfRangeException(nameof(frame), frame, "frames start at 0");
        var result = new WorldObject[_start.Count];
        for (int i = 0; i < result.Length; i++)
        {
            var o = _start[i];
            double lo = o.R + WorldDefinition.Margin, hi = 1 - o.R - WorldDefinition.Margin;
            result[i] = o with { X = Reflect(o.X + _velocity[i].Vx * frame, lo, hi), Y = Reflect(o.Y + _velocity[i].Vy * frame, lo, hi) };
        }
        return result;
    }

    /// <summary>The picture at frame <paramref name="frame"/>, <paramref name="size"/> pixels square.</summary>
    public Frame Render(long frame, int size, TimeSpan timestamp = default) => WorldScene.RenderFrame(ObjectsAt(frame), size, timestamp);

    /// <summary>The true answer to <paramref name="question"/> at frame <paramref name="frame"/>.</summary>
    public string Truth(WorldQuestion question, long frame) => question.Answer(ObjectsAt(frame));

    /// <summary>Folds a coordinate into [lo, hi] as a ball bouncing between two walls would move.</summary>
    private static double Reflect(double v, double lo, double hi)
    {
        double span = hi - lo;
        double t = (v - lo) % (2 * span);
        if (t < 0) t += 2 * span;
        return lo + (t <= span ? t : 2 * span - t);
    }
}
