using System.Text.Json.Nodes;
using Assistant.Capture.World;
using Assistant.Tests;

namespace Assistant.Capture.Tests;

/// <summary>The C# world against tests/data/world_fixture.json, written by tools/world.py.</summary>
public sealed class WorldTests
{
    private static readonly JsonNode Fixture = JsonNode.Parse(File.ReadAllText(Path.Combine(Repo.Root, "tests", "data", "world_fixture.json")))!;

    public static IEnumerable<object[]> Seeds() => Fixture["scenes"]!.AsArray().Select(s => new object[] { (long)s!["seed"]! });

    private static JsonNode Scene(long seed) => Fixture["scenes"]!.AsArray().First(s => (long)s!["seed"]! == seed)!;

    [Theory]
    [MemberData(nameof(Seeds))]
    public void SceneGraph_MatchesPython(long seed)
    {
        var expected = Scene(seed)["objects"]!.AsArray();
        var objs = WorldScene.Generate(seed);
        Assert.Equal(expected.Count, objs.Count);
        for (int i = 0; i < objs.Count; i++)
        {
            var e = expected[i]!;
            Assert.Equal(((string)e["shape"]!, (string)e["color"]!, (string)e["size"]!), (objs[i].Shape, objs[i].Color, objs[i].Size));
            Assert.Equal((double)e["x"]!, objs[i].X);  // bit-exact: same draws, same float64 arithmetic
            Assert.Equal((double)e["y"]!, objs[i].Y);
        }
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Questions_TextAndAnswers_MatchPython(long seed)
    {
        var scene = Scene(seed);
        var objs = WorldScene.Generate(seed);
        void Compare(JsonArray expected, IReadOnlyList<WorldQuestion> actual)
        {
            Assert.Equal(expected.Count, actual.Count);
            for (int i = 0; i < actual.Count; i++)
            {
                Assert.Equal((string)expected[i]!["text"]!, actual[i].Text);
                Assert.Equal((string)expected[i]!["answer"]!, actual[i].Answer(objs));
                Assert.True(JsonNode.DeepEquals(expected[i]!["spec"], actual[i].ToJson()), $"spec of '{actual[i].Text}'");
            }
        }
        Compare(scene["questions"]!.AsArray(), WorldQuestions.Generate(seed, 6));
        foreach (var family in WorldDefinition.Families)
            Compare(scene["by_family"]![family]!.AsArray(), WorldQuestions.Generate(seed, 2, family));
    }

    [Fact]
    public void Pixels_MatchPython()
    {
        // Stated tolerance: at most 0.1% of pixels may differ (a sample exactly on an edge); in practice none do.
        int checkedScenes = 0;
        foreach (var scene in Fixture["scenes"]!.AsArray().Where(s => s!["pixels"] is not null))
        {
            var objs = WorldScene.Generate((long)scene!["seed"]!);
            foreach (var (size, b64) in scene["pixels"]!.AsObject())
            {
                int n = int.Parse(size);
                var expected = Convert.FromBase64String((string)b64!);
                var actual = new byte[n * n * 3];
                WorldScene.Render(objs, n, actual);
                int differing = 0;
                for (int p = 0; p < n * n; p++)
                    if (expected[3 * p] != actual[3 * p] || expected[3 * p + 1] != actual[3 * p + 1] || expected[3 * p + 2] != actual[3 * p + 2])
                        differing++;
                Assert.True(differing <= n * n / 1000, $"seed {scene["seed"]} at {n}px: {differing} pixels differ");
                checkedScenes++;
            }
        }
        Assert.True(checkedScenes >= 8);
    }

    [Fact]
    public void Vocabulary_CoversEveryGeneratedQuestion()
    {
        var vocab = Fixture["vocabulary"]!.AsArray().Select(v => (string)v!).ToHashSet();
        for (long seed = 0; seed < 200; seed++)
            foreach (var q in WorldQuestions.Generate(seed, 3))
                Assert.Subset(vocab, q.Text.TrimEnd('?').Split(' ').ToHashSet());
        Assert.Equal(Fixture["answers"]!.AsArray().Select(a => (string)a!), WorldDefinition.Answers);
    }

    [Fact]
    public void UnknownFamily_IsAnError() => Assert.Throws<ArgumentException>(() => WorldQuestions.Generate(1, 1, "colour-of-sky"));
}
