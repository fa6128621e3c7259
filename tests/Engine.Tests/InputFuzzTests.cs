using System.Diagnostics;
using System.Text;
using Assistant.Capture;
using Assistant.Tests;
using Xunit.Abstractions;

namespace Assistant.Engine.Tests;

/// <summary>
/// The query and points parts of the fuzz suite (issue 20), seeded by <see cref="HostileFiles.Seed"/>. A hostile
/// question goes the whole ask path (validation, routing, tokenizing, every model) and is an answer or one
/// user-facing error; a damaged points file is a fit or one <see cref="EngineException"/>. Each within 5 s and
/// 500 MB, and its error, as printed (<see cref="UserErrors.OneLine"/>), one safe line.
/// </summary>
[Collection("fuzz")]
public sealed class InputFuzzTests(ITestOutputHelper log)
{
    /// <summary>Runs <paramref name="work"/>; true when it succeeded, false when it failed with a user-facing error printed as one safe line.</summary>
    private static Task<bool> Bounded(string what, Func<Task> work) =>
        FuzzCase.RunAsync(what, work, e => UserErrors.ExitCode(e) is not null, e =>
        {
            var printed = UserErrors.OneLine(e.Message);
            Assert.True(printed.Length <= UserErrors.MaxMessageChars + 1, $"{what}: a {printed.Length}-character error");
            Assert.False(printed.Any(char.IsControl), $"{what}: a control character in the printed error");
        });

    private static string Shown(string s) => UserErrors.OneLine(s.Length > 60 ? s[..60] + "..." : s);

    /// <summary>Fixed hostile questions, then seeded random text of mixed scripts and controls, then edits of a good question.</summary>
    private static IEnumerable<(string Category, string Query)> Queries()
    {
        const string good = "what shape is the red object?";
        foreach (var q in new[]
        {
            "", " ", "\0", "\n\n", "\t", "\u001b[2J\u001b]0;owned\u0007 what shape?", "what\nshape is the red object?",
            new string('a', AskConfig.MaxQueryChars), new string('a', AskConfig.MaxQueryChars + 1), new string('x', 100_000),
            "\u202ewhat shape is the red object?", "what shape is the 🔴 object?", "\ud800 shape", "e" + new string('\u0301', 1500),
            "%s%n{0}{1}", "'; DROP TABLE frames; --", "../../../../etc/passwd", "\ufeffwhat shape is the red object?",
            "what\u200b shape\u200d is the red object?", "WHAT SHAPE IS THE RED OBJECT?", good + " " + good, "read the text", "?",
        })
            yield return ("fixed hostile", q);
        var rng = new Random(HostileFiles.Seed);
        (int Lo, int Hi)[] ranges = [(0x20, 0x7E), (0x00, 0x1F), (0x80, 0x9F), (0x4E00, 0x4FFF), (0xD800, 0xDFFF), (0xE000, 0xE0FF), (0x200B, 0x202E), (0x0300, 0x036F)];
        for (int i = 0; i < 60; i++)
        {
            var sb = new StringBuilder();
            int length = rng.Next(0, 300);
            for (int k = 0; k < length; k++)
            {
                var (lo, hi) = ranges[rng.Next(ranges.Length)];
                sb.Append((char)rng.Next(lo, hi + 1));
            }
            yield return ("random text", sb.ToString());
        }
        for (int i = 0; i < 40; i++)
        {
            var q = new StringBuilder(good);
            for (int k = 0; k < 1 + i % 5; k++)
            {
                int at = rng.Next(q.Length);
                switch (rng.Next(3))
                {
                    case 0: q.Remove(at, 1); break;
                    case 1: q.Insert(at, (char)rng.Next(0, 0x3000)); break;
                    default: q[at] = (char)rng.Next(0x20, 0x7F); break;
                }
            }
            yield return ("edited question", q.ToString());
        }
    }

    [Fact]
    public async Task HostileQueries_AreAnAnswerOrOneLine_ThroughTheWholeAskPath()
    {
        using var models = LoadedModels.Load(Repo.TinyModels, "cpu");
        var pipeline = new AskPipeline(models.Set);
        var frame = ImageFile.Load(Golden.Tiny.ImagePath);
        var counts = new SortedDictionary<string, (int Answered, int Refused)>();
        foreach (var (category, query) in Queries())
        {
            bool answered = await Bounded($"query '{Shown(query)}'", async () =>
            {
                var q = AskPipeline.ValidateQuery(query);
                QueryRouter.Decide(q, "auto");
                await foreach (var _ in pipeline.AskAsync(frame, q, new AskConfig(Answer: new AnswerOptions(8)), new StageTimings())) { }
            });
            var (a, r) = counts.GetValueOrDefault(category);
            counts[category] = answered ? (a + 1, r) : (a, r + 1);
        }
        foreach (var (category, (a, r)) in counts) log.WriteLine($"queries, {category}: {a + r} cases ({a} answered, {r} refused), seed {HostileFiles.Seed}");
        Assert.True(counts["fixed hostile"].Refused >= 5);
        Assert.True(counts.Values.Sum(c => c.Answered) >= 3, "no hostile query was answered: the good ones should be");
    }

    [Fact]
    public async Task DamagedPointsFiles_AreAFitOrOneLine()
    {
        var whole = File.ReadAllBytes(Path.Combine(Repo.Root, "tests", "data", "paper_scaling_points.csv"));
        var text = Encoding.UTF8.GetString(whole);
        var rng = new Random(HostileFiles.Seed + 2);
        var cases = new List<(string Category, string What, byte[] Bytes)>();
        for (int i = 0; i < 15; i++)
        {
            int cut = rng.Next(whole.Length);
            cases.Add(("truncated", $"cut to {cut} bytes", whole[..cut]));
            var flipped = (byte[])whole.Clone();
            for (int k = 0; k < 1 + i % 6; k++) flipped[rng.Next(flipped.Length)] = (byte)rng.Next(256);
            cases.Add(("byte flips", $"{1 + i % 6} random bytes, case {i}", flipped));
        }
        var dataLines = text.Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#')).ToArray();
        string header = dataLines[0], row = dataLines[1];
        foreach (var cell in new[] { "NaN", "inf", "-inf", "1e400", "-0", "", "0x10", "1,5", "\u001b[31m", "1e-320", "  7  ", "٣" })
            cases.Add(("hostile cells", $"a cell '{Shown(cell)}'", Encoding.UTF8.GetBytes($"{header}\n{row}\n{row.Split(',')[0]},{cell},0.5\n{cell},16,0.5\n")));
        var garbage = new byte[2048];
        rng.NextBytes(garbage);
        cases.Add(("structure", "random bytes", garbage));
        cases.Add(("structure", "a binary header", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, .. Encoding.UTF8.GetBytes("\n1,2,3\n")]));
        cases.Add(("structure", "header only", Encoding.UTF8.GetBytes(header + "\n")));
        cases.Add(("structure", "one point", Encoding.UTF8.GetBytes($"{header}\n{row}\n")));
        cases.Add(("structure", "ten identical points", Encoding.UTF8.GetBytes(header + "\n" + string.Concat(Enumerable.Repeat(row + "\n", 10)))));
        cases.Add(("structure", "columns reordered", Encoding.UTF8.GetBytes("accuracy,visual_tokens,llm_params_b\n0.5,4,0.5\n0.6,16,1.8\n0.7,64,7\n0.65,1,4\n")));
        cases.Add(("structure", "a missing column", Encoding.UTF8.GetBytes("llm_params_b,accuracy\n0.5,0.5\n")));
        cases.Add(("structure", "a ragged row", Encoding.UTF8.GetBytes($"{header}\n{row}\n0.5\n")));
        cases.Add(("structure", "a 500 KB line", Encoding.UTF8.GetBytes($"{header}\n{new string('9', 500_000)},4,0.5\n")));
        cases.Add(("structure", "2,001 points", Encoding.UTF8.GetBytes(header + "\n" + string.Concat(Enumerable.Repeat(row + "\n", 2001)))));
        cases.Add(("structure", "UTF-16", Encoding.Unicode.GetBytes(text)));

        var path = Path.Combine(Path.GetTempPath(), $"assistant-fuzz-points-{Guid.NewGuid():N}.csv");
        var counts = new SortedDictionary<string, (int Fitted, int Refused)>();
        foreach (var (category, what, bytes) in cases)
        {
            File.WriteAllBytes(path, bytes);
            bool fitted = await Bounded($"points file: {what}", () =>
            {
                var fit = ScalingLawFitter.Fit(ScalingLawFitter.ReadCsv(path), LawBounds.Paper, bootstrap: 20);
                Assert.True(double.IsFinite(fit.Sse) || double.IsNaN(fit.Sse), $"{what}: SSE {fit.Sse}");
                return Task.CompletedTask;
            });
            var (f, r) = counts.GetValueOrDefault(category);
            counts[category] = fitted ? (f + 1, r) : (f, r + 1);
        }
        File.Delete(path);
        foreach (var (category, (f, r)) in counts) log.WriteLine($"points files, {category}: {f + r} cases ({f} fitted, {r} refused), seed {HostileFiles.Seed}");
        Assert.True(counts["hostile cells"].Refused >= 8);
    }
}
