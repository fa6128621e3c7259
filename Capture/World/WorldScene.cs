namespace Assistant.Capture.World;

/// <summary>One shape in a scene. Position is its centre in canvas units (the canvas is the unit square).</summary>
public sealed record WorldObject(string Shape, string Color, string Size, double X, double Y)
{
    /// <summary>Radius in canvas units.</summary>
    public double R => WorldDefinition.Radius(Size);

    /// <summary>The attribute "shape", "color" or "size".</summary>
    public string Attr(string name) => name switch
    {
        "shape" => Shape,
        "color" => Color,
        "size" => Size,
        _ => throw new ArgumentException($"no attribute {name}"),
    };
}

/// <summary>The world's fixed vocabulary and geometry; tools/world.py holds the same numbers.</summary>
public static class WorldDefinition
{
    /// <summary>Object colours.</summary>
    public static readonly string[] Colors = ["red", "green", "blue", "yellow", "purple", "orange"];
    /// <summary>Object shapes.</summary>
    public static readonly string[] Shapes = ["circle", "square", "triangle"];
    /// <summary>Object sizes.</summary>
    public static readonly string[] Sizes = ["small", "large"];
    /// <summary>Count answers.</summary>
    public static readonly string[] Numbers = ["zero", "one", "two", "three", "four", "five", "six"];
    /// <summary>Question families.</summary>
    public static readonly string[] Families = ["attribute", "count", "spatial", "nearest", "exists", "compare"];
    /// <summary>Spatial relations.</summary>
    public static readonly string[] Relations = ["left of", "right of", "above", "below"];
    /// <summary>Every answer the world can have.</summary>
    public static readonly string[] Answers = [.. Colors, .. Shapes, .. Numbers, "yes", "no"];

    /// <summary>The canvas colour.</summary>
    public static readonly (byte R, byte G, byte B) Background = (236, 236, 230);

    /// <summary>Objects per scene: at least <see cref="MinObjects"/>, at most <see cref="MaxObjects"/>.</summary>
    public const int MinObjects = 3, MaxObjects = 6;
    /// <summary>Layout margins in canvas units: <see cref="Gap"/> between objects, <see cref="Margin"/> to the edge, and the least separation that makes a spatial (<see cref="SpatialMargin"/>) or nearest (<see cref="NearestMargin"/>) question unambiguous.</summary>
    public const double Gap = 0.04, Margin = 0.02, SpatialMargin = 0.05, NearestMargin = 0.005;

    /// <summary>Seed ranges of the splits: train [0, 1e6), val [1e6, 1.01e6), test [2e6, 2.01e6).</summary>
    public static readonly IReadOnlyDictionary<string, (long Lo, long Hi)> Splits = new Dictionary<string, (long, long)>
    {
        ["train"] = (0, 1_000_000),
        ["val"] = (1_000_000, 1_010_000),
        ["test"] = (2_000_000, 2_010_000),
    };

    /// <summary>The radius of a size in canvas units.</summary>
    public static double Radius(string size) => size == "small" ? 0.07 : 0.115;

    /// <summary>The RGB value of a colour name.</summary>
    public static (byte R, byte G, byte B) Rgb(string color) => color switch
    {
        "red" => (220, 40, 40),
        "green" => (40, 170, 60),
        "blue" => (40, 80, 220),
        "yellow" => (230, 200, 40),
        "purple" => (150, 60, 200),
        "orange" => (240, 140, 30),
        _ => throw new ArgumentException($"no colour {color}"),
    };

    internal static double Sq(double v) => v * v;
}

/// <summary>Scenes: generated from a seed, rendered to pixels, mirrored exactly by tools/world.py.</summary>
public static class WorldScene
{
    /// <summary>The objects of scene <paramref name="seed"/> in drawing order; no (size, colour, shape) twice.</summary>
    public static IReadOnlyList<WorldObject> Generate(long seed)
    {
        var rng = new SplitMix64((ulong)seed);
        int n = WorldDefinition.MinObjects + rng.Below(WorldDefinition.MaxObjects - WorldDefinition.MinObjects + 1);
        var objs = new List<WorldObject>();
        for (int i = 0; i < n; i++)
        {
            for (int attempt = 0; attempt < 100; attempt++)
            {
                string shape = rng.Choice(WorldDefinition.Shapes), color = rng.Choice(WorldDefinition.Colors), size = rng.Choice(WorldDefinition.Sizes);
                double r = WorldDefinition.Radius(size);
                double x = r + WorldDefinition.Margin + rng.Uniform() * (1.0 - 2.0 * (r + WorldDefinition.Margin));
                double y = r + WorldDefinition.Margin + rng.Uniform() * (1.0 - 2.0 * (r + WorldDefinition.Margin));
                if (objs.Any(o => o.Shape == shape && o.Color == color && o.Size == size)) continue;
                if (objs.Any(o => WorldDefinition.Sq(o.X - x) + WorldDefinition.Sq(o.Y - y) < WorldDefinition.Sq(o.R + r + WorldDefinition.Gap))) continue;
                objs.Add(new WorldObject(shape, color, size, x, y));
                break;
            }
        }
        return objs;
    }

    /// <summary>Renders into <paramref name="rgb"/> (size x size x 3, row-major). Each pixel is sampled at its
    /// centre with no antialiasing, which is what keeps C# and Python pixel-identical.</summary>
    public static void Render(IReadOnlyList<WorldObject> objs, int size, Span<byte> rgb)
    {
        if (rgb.Length < size * size * 3) throw new ArgumentException("buffer too small", nameof(rgb));
        var bg = WorldDefinition.Background;
        for (int p = 0; p < size * size; p++)
        {
            rgb[3 * p] = bg.R;
            rgb[3 * p + 1] = bg.G;
            rgb[3 * p + 2] = bg.B;
        }
        foreach (var o in objs)
        {
            double r = o.R;
            int i0 = Math.Max((int)Math.Floor((o.X - r) * size), 0), i1 = Math.Min((int)Math.Ceiling((o.X + r) * size), size);
            int j0 = Math.Max((int)Math.Floor((o.Y - r) * size), 0), j1 = Math.Min((int)Math.Ceiling((o.Y + r) * size), size);
            var (cr, cg, cb) = WorldDefinition.Rgb(o.Color);
            double top = o.Y - r, bottom = o.Y + 0.75 * r;
            for (int j = j0; j < j1; j++)
            {
                double dy = (j + 0.5) / size - o.Y;
                double t = ((j + 0.5) / size - top) / (bottom - top);
                for (int i = i0; i < i1; i++)
                {
                    double dx = (i + 0.5) / size - o.X;
                    bool inside = o.Shape switch
                    {
                        "circle" => dx * dx + dy * dy <= r * r,
                        "square" => Math.Abs(dx) <= r * 0.85 && Math.Abs(dy) <= r * 0.85,
                        _ => t >= 0.0 && t <= 1.0 && Math.Abs(dx) <= r * t,  // triangle, apex up
                    };
                    if (!inside) continue;
                    int p = 3 * (j * size + i);
                    rgb[p] = cr;
                    rgb[p + 1] = cg;
                    rgb[p + 2] = cb;
                }
            }
        }
    }

    /// <summary><paramref name="objs"/> drawn on a <paramref name="size"/>-pixel square canvas, stamped <paramref name="timestamp"/>.</summary>
    public static Frame RenderFrame(IReadOnlyList<WorldObject> objs, int size, TimeSpan timestamp = default)
    {
        var rgb = new byte[size * size * 3];
        Render(objs, size, rgb);
        return new Frame(rgb, size, size, timestamp);
    }
}
