using System.Text.Json.Nodes;

namespace Assistant.Capture.World;

/// <summary>A referring expression: the attributes that pick out one object (unset ones are not used).</summary>
public sealed record ObjectRef(string? Size, string? Color, string? Shape)
{
    /// <summary>Whether <paramref name="o"/> has every attribute this reference names.</summary>
    public bool Matches(WorldObject o) =>
        (Size is null || o.Size == Size) && (Color is null || o.Color == Color) && (Shape is null || o.Shape == Shape);

    /// <summary>The reference in words, e.g. "small red circle" or "object".</summary>
    public string Describe() => string.Join(' ', new[] { Size, Color }.Where(w => w is not null).Append(Shape ?? "object"));

    /// <summary>The reference as JSON, as tools/world.py writes it.</summary>
    public JsonObject ToJson()
    {
        var j = new JsonObject();
        if (Size is not null) j["size"] = Size;
        if (Color is not null) j["color"] = Color;
        if (Shape is not null) j["shape"] = Shape;
        return j;
    }

    /// <summary>A reference to <paramref name="o"/> by the attributes named in <paramref name="attrs"/>.</summary>
    public static ObjectRef Of(WorldObject o, IEnumerable<string> attrs)
    {
        var set = attrs.ToHashSet();
        return new ObjectRef(set.Contains("size") ? o.Size : null, set.Contains("color") ? o.Color : null, set.Contains("shape") ? o.Shape : null);
    }
}

/// <summary>
/// A world question as data (the same fields as tools/world.py's dicts): <see cref="Text"/> renders it,
/// <see cref="Answer"/> evaluates it on any scene, so a question keeps a known truth while objects move.
/// </summary>
public sealed record WorldQuestion(string Family, string? Ask = null, ObjectRef? Ref = null, ObjectRef? RefB = null,
    string? Kind = null, string? Value = null, string? Relation = null, bool Far = false, string? Color = null,
    string? Shape = null, string? A = null, string? B = null)
{
    /// <summary>The question in words.</summary>
    public string Text => Family switch
    {
        "attribute" => $"what {Ask} is the {Ref!.Describe()}?",
        "count" => Kind == "shape" ? $"how many {Value}s are there?" : $"how many {Value} objects are there?",
        "spatial" => $"is the {Ref!.Describe()} {Relation} the {RefB!.Describe()}?",
        "nearest" => $"what {Ask} is the object {(Far ? "farthest from" : "nearest to")} the {Ref!.Describe()}?",
        "exists" => $"is there {("aeiou".Contains(Color![0]) ? "an" : "a")} {Color} {Shape}?",
        "compare" => Kind == "shape" ? $"are there more {A}s than {B}s?" : $"are there more {A} objects than {B} objects?",
        _ => throw new InvalidOperationException(Family),
    };

    /// <summary>The true answer on <paramref name="objs"/>; "none" when a referred object is not (uniquely) there.</summary>
    public string Answer(IReadOnlyList<WorldObject> objs)
    {
        static string YesNo(bool b) => b ? "yes" : "no";
        switch (Family)
        {
            case "attribute":
                return WorldQuestions.Resolve(objs, Ref!)?.Attr(Ask!) ?? "none";
            case "count":
                return WorldDefinition.Numbers[Math.Min(objs.Count(o => o.Attr(Kind!) == Value), WorldDefinition.Numbers.Length - 1)];
            case "spatial":
            {
                var a = WorldQuestions.Resolve(objs, Ref!);
                var b = WorldQuestions.Resolve(objs, RefB!);
                if (a is null || b is null) return "none";
                return YesNo(Relation switch
                {
                    "left of" => a.X < b.X,
                    "right of" => a.X > b.X,
                    "above" => a.Y < b.Y,
                    _ => a.Y > b.Y,
                });
            }
            case "nearest":
            {
                var o = WorldQuestions.Resolve(objs, Ref!);
                if (o is null) return "none";
                var others = objs.Where(p => !ReferenceEquals(p, o)).OrderBy(p => WorldDefinition.Sq(p.X - o.X) + WorldDefinition.Sq(p.Y - o.Y)).ToList();
                return (Far ? others[^1] : others[0]).Attr(Ask!);
            }
            case "exists":
                return YesNo(objs.Any(o => o.Color == Color && o.Shape == Shape));
            case "compare":
                return YesNo(objs.Count(o => o.Attr(Kind!) == A) > objs.Count(o => o.Attr(Kind!) == B));
            default:
                throw new InvalidOperationException(Family);
        }
    }

    /// <summary>The same JSON shape as the Python dict (for the cross-language fixture).</summary>
    public JsonObject ToJson()
    {
        var j = new JsonObject { ["family"] = Family };
        switch (Family)
        {
            case "attribute": j["ask"] = Ask; j["ref"] = Ref!.ToJson(); break;
            case "count": j["kind"] = Kind; j["value"] = Value; break;
            case "spatial": j["a"] = Ref!.ToJson(); j["relation"] = Relation; j["b"] = RefB!.ToJson(); break;
            case "nearest": j["ref"] = Ref!.ToJson(); j["far"] = Far; j["ask"] = Ask; break;
            case "exists": j["color"] = Color; j["shape"] = Shape; break;
            case "compare": j["kind"] = Kind; j["a"] = A; j["b"] = B; break;
        }
        return j;
    }
}

/// <summary>Question generation, draw for draw the same as tools/world.py.</summary>
public static class WorldQuestions
{
    private static readonly string[][] GeneralForms = [["shape"], ["color", "shape"], ["size", "color", "shape"]];

    /// <summary>The one object of <paramref name="objs"/> that <paramref name="r"/> names; null when none or several do.</summary>
    public static WorldObject? Resolve(IReadOnlyList<WorldObject> objs, ObjectRef r)
    {
        WorldObject? found = null;
        foreach (var o in objs)
        {
            if (!r.Matches(o)) continue;
            if (found is not null) return null;
            found = o;
        }
        return found;
    }

    private static ObjectRef? Refer(IReadOnlyList<WorldObject> objs, WorldObject o, string[][] forms)
    {
        foreach (var form in forms)
        {
            var r = ObjectRef.Of(o, form);
            if (ReferenceEquals(Resolve(objs, r), o)) return r;
        }
        return null;
    }

    private static IEnumerable<WorldObject> Rotated(IReadOnlyList<WorldObject> objs, int start) => objs.Skip(start).Concat(objs.Take(start));

    /// <summary>A question of <paramref name="family"/> that is well defined on the scene, or null.</summary>
    public static WorldQuestion? Make(IReadOnlyList<WorldObject> objs, SplitMix64 rng, string family)
    {
        int n = objs.Count;
        switch (family)
        {
            case "attribute":
            {
                int askFirst = rng.Below(2);
                foreach (var o in Rotated(objs, rng.Below(n)))
                    foreach (int k in new[] { askFirst, 1 - askFirst })
                    {
                        string ask = k == 0 ? "color" : "shape";
                        string[][] forms = ask == "color" ? [["shape"], ["size", "shape"]] : [["color"], ["size", "color"]];
                        if (Refer(objs, o, forms) is { } r) return new WorldQuestion(family, Ask: ask, Ref: r);
                    }
                return null;
            }
            case "count":
            {
                string kind = new[] { "color", "shape", "size" }[rng.Below(3)];
                var values = kind == "color" ? WorldDefinition.Colors : kind == "shape" ? WorldDefinition.Shapes : WorldDefinition.Sizes;
                return new WorldQuestion(family, Kind: kind, Value: rng.Choice(values));
            }
            case "spatial":
            {
                string relation = rng.Choice(WorldDefinition.Relations);
                if (n < 2) return null;
                int start = rng.Below(n);
                for (int i = 0; i < n; i++)
                {
                    var a = objs[(start + i) % n];
                    for (int j = 1; j < n; j++)
                    {
                        var b = objs[(start + i + j) % n];
                        double sep = relation is "left of" or "right of" ? Math.Abs(a.X - b.X) : Math.Abs(a.Y - b.Y);
                        var ra = Refer(objs, a, GeneralForms);
                        var rb = Refer(objs, b, GeneralForms);
                        if (sep > WorldDefinition.SpatialMargin && ra is not null && rb is not null)
                            return new WorldQuestion(family, Ref: ra, Relation: relation, RefB: rb);
                    }
                }
                return null;
            }
            case "nearest":
            {
                bool far = rng.Below(2) == 1;
                string ask = rng.Below(2) == 0 ? "color" : "shape";
                if (n < 3) return null;
                foreach (var o in Rotated(objs, rng.Below(n)))
                {
                    var r = Refer(objs, o, GeneralForms);
                    var d = objs.Where(p => !ReferenceEquals(p, o)).Select(p => WorldDefinition.Sq(p.X - o.X) + WorldDefinition.Sq(p.Y - o.Y)).Order().ToList();
                    double gap = far ? d[^1] - d[^2] : d[1] - d[0];
                    if (r is not null && gap > WorldDefinition.NearestMargin)
                        return new WorldQuestion(family, Ref: r, Far: far, Ask: ask);
                }
                return null;
            }
            case "exists":
            {
                if (rng.Below(2) == 0)
                {
                    var o = rng.Choice(objs);
                    return new WorldQuestion(family, Color: o.Color, Shape: o.Shape);
                }
                var absent = (from c in WorldDefinition.Colors from s in WorldDefinition.Shapes
                              where !objs.Any(o => o.Color == c && o.Shape == s) select (c, s)).ToList();
                var (color, shape) = rng.Choice(absent);
                return new WorldQuestion(family, Color: color, Shape: shape);
            }
            case "compare":
            {
                string kind = rng.Below(2) == 0 ? "color" : "shape";
                var values = kind == "color" ? WorldDefinition.Colors : WorldDefinition.Shapes;
                string a = rng.Choice(values);
                string b = rng.Choice(values.Where(v => v != a).ToList());
                return new WorldQuestion(family, Kind: kind, A: a, B: b);
            }
            default:
                throw new ArgumentException($"unknown question family '{family}'", nameof(family));
        }
    }

    /// <summary>The seed of question <paramref name="index"/> about scene <paramref name="sceneSeed"/> (the same in tools/world.py).</summary>
    public static ulong QuestionSeed(long sceneSeed, int index) => unchecked((ulong)sceneSeed * 64UL + (ulong)index + (1UL << 40));

    /// <summary><paramref name="count"/> questions for the scene: the family cycles from a random start unless given.</summary>
    public static IReadOnlyList<WorldQuestion> Generate(long sceneSeed, int count, string? family = null)
    {
        var objs = WorldScene.Generate(sceneSeed);
        var result = new List<WorldQuestion>();
        for (int index = 0; index < count; index++)
            if (For(objs, QuestionSeed(sceneSeed, index), family) is { } q)
                result.Add(q);
        return result;
    }

    /// <summary>
    /// One question about <paramref name="objs"/> (any scene, a moving one included) drawn with
    /// <paramref name="questionSeed"/>: the family cycles from a random start unless given; null if none is well posed.
    /// </summary>
    public static WorldQuestion? For(IReadOnlyList<WorldObject> objs, ulong questionSeed, string? family = null)
    {
        var families = WorldDefinition.Families;
        var rng = new SplitMix64(questionSeed);
        int start = family is null ? rng.Below(families.Length) : Array.IndexOf(families, family);
        if (start < 0) throw new ArgumentException($"unknown question family '{family}'", nameof(family));
        for (int k = 0; k < (family is null ? families.Length : 1); k++)
            if (Make(objs, rng, families[(start + k) % families.Length]) is { } q)
                return q;
        return null;
    }
}
