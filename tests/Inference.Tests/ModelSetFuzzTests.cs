using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Assistant.Tests;
using Xunit.Abstractions;

namespace Assistant.Inference.Tests;

/// <summary>
/// The model-set part of the fuzz suite (issue 20), seeded by <see cref="HostileFiles.Seed"/>: manifests with one
/// value replaced by a hostile one (wrong types, huge, negative, fractional, paths out of the set, special files)
/// or removed, manifests cut or byte-flipped as text, and damaged tokenizer files. Each loads or is one
/// <see cref="InferenceException"/> of one line with exit code 2, within 5 s and 500 MB; never another exception.
/// (Control characters in a message are escaped where it is printed, UserErrors.OneLine, not here.)
/// </summary>
[Collection("fuzz")]
public sealed class ModelSetFuzzTests(ITestOutputHelper log)
{
    private static readonly SessionFactory Cpu = new(new SessionConfig(ExecutionProvider.Cpu));

    private static JsonNode?[] HostileValues(string dir) =>
    [
        null, true, false, 0, -1, 1, 3.5, -1e308, 1e308, 2147483648L, long.MaxValue, -2147483649L,
        "", "x", new string('a', 100_000), "../../../../etc/passwd", "/etc/passwd", "/dev/zero",
        Path.Combine(dir, "fifo"), "zero-link", "\u001b]0;owned\u0007", new JsonArray(), new JsonObject(),
        new JsonArray(1, 2, 3), new JsonObject { ["a"] = 1 },
    ];

    /// <summary>Every node below the root, with a way to replace or remove it.</summary>
    private static List<(string Path, JsonNode Parent, string? Key, int Index)> Slots(JsonNode root)
    {
        var slots = new List<(string, JsonNode, string?, int)>();
        void Walk(JsonNode node, string path)
        {
            if (node is JsonObject o)
                foreach (var (k, v) in o.ToList())
                {
                    slots.Add(($"{path}.{k}", o, k, -1));
                    if (v is not null) Walk(v, $"{path}.{k}");
                }
            else if (node is JsonArray a)
                for (int i = 0; i < a.Count; i++)
                {
                    slots.Add(($"{path}[{i}]", a, null, i));
                    if (a[i] is { } v) Walk(v, $"{path}[{i}]");
                }
        }
        Walk(root, "$");
        return slots;
    }

    private enum Outcome { Loaded, Refused }

    private static Outcome LoadOnce(string dir, string what) =>
        FuzzCase.Run(what, () =>
        {
            // Every graph opened, as models check does: a compressor is otherwise opened when first used.
            using var set = ModelSet.Load(dir, Cpu);
            set.OpenEveryGraph();
        }, e => e is InferenceException, e =>
        {
            Assert.False(e.Message.Contains('\n'), $"{what}: a two-line error: {e.Message}");
            Assert.True(((InferenceException)e).ExitCode == 2, $"{what}: exit {((InferenceException)e).ExitCode}: {e.Message}");
        }) ? Outcome.Loaded : Outcome.Refused;

    [Fact]
    public void MutatedManifests_LoadOrAreOneLine()
    {
        var dir = Repo.CopyTinyModels();
        Tool.Run("mkfifo", [Path.Combine(dir, "fifo")]);
        File.CreateSymbolicLink(Path.Combine(dir, "zero-link"), "/dev/zero");
        var manifestPath = Path.Combine(dir, "manifest.json");
        var original = File.ReadAllText(manifestPath);
        var rng = new Random(HostileFiles.Seed);
        var counts = new Dictionary<string, (int Loaded, int Refused)>();
        void Count(string category, Outcome o)
        {
            var (l, r) = counts.GetValueOrDefault(category);
            counts[category] = o == Outcome.Loaded ? (l + 1, r) : (l, r + 1);
        }

        var values = HostileValues(dir);
        for (int i = 0; i < 160; i++)
        {
            var root = JsonNode.Parse(original)!;
            var slots = Slots(root);
            var (path, parent, key, index) = slots[rng.Next(slots.Count)];
            bool remove = rng.Next(8) == 0;
            var value = values[rng.Next(values.Length)]?.DeepClone();
            if (key is not null)
            {
                if (remove) parent.AsObject().Remove(key);
                else parent[key] = value;
            }
            else if (remove) parent.AsArray().RemoveAt(index);
            else parent[index] = value;
            File.WriteAllText(manifestPath, root.ToJsonString());
            var what = remove ? $"manifest without {path}" : $"manifest with {path} = {value?.ToJsonString() ?? "null"}";
            Count(remove ? "manifest key removed" : "manifest value replaced", LoadOnce(dir, what[..Math.Min(what.Length, 200)]));
        }
        var bytes = Encoding.UTF8.GetBytes(original);
        for (int i = 0; i < 20; i++)
        {
            int cut = rng.Next(bytes.Length);
            File.WriteAllBytes(manifestPath, bytes[..cut]);
            Count("manifest text cut", LoadOnce(dir, $"manifest cut to {cut} bytes"));
            var flipped = (byte[])bytes.Clone();
            for (int k = 0; k < 1 + i % 4; k++) flipped[rng.Next(flipped.Length)] = (byte)rng.Next(256);
            File.WriteAllBytes(manifestPath, flipped);
            Count("manifest text byte flips", LoadOnce(dir, $"manifest byte flips, case {i}"));
        }
        File.WriteAllText(manifestPath, original);
        Assert.Equal(Outcome.Loaded, LoadOnce(dir, "the intact manifest"));
        foreach (var (category, (l, r)) in counts.OrderBy(c => c.Key))
            log.WriteLine($"model sets, {category}: {l + r} cases ({l} loaded, {r} refused), seed {HostileFiles.Seed}");
        Assert.True(counts.Values.Sum(c => c.Refused) > 100, "the mutations hardly ever broke the set: the fuzzer is not reaching the checks");
    }

    [Fact]
    public void DamagedTokenizerFiles_LoadOrAreOneLine()
    {
        var dir = Repo.CopyTinyModels();
        var rng = new Random(HostileFiles.Seed + 1);
        int loaded = 0, refused = 0;
        foreach (var file in new[] { "vocab.json", "merges.txt" })
        {
            var path = Path.Combine(dir, file);
            var whole = File.ReadAllBytes(path);
            var cases = new List<(string, byte[])>();
            for (int i = 0; i < 8; i++)
            {
                int cut = rng.Next(whole.Length);
                cases.Add(($"{file} cut to {cut} bytes", whole[..cut]));
                var flipped = (byte[])whole.Clone();
                for (int k = 0; k < 1 + i; k++) flipped[rng.Next(flipped.Length)] = (byte)rng.Next(256);
                cases.Add(($"{file} with {1 + i} random bytes", flipped));
            }
            var garbage = new byte[4096];
            rng.NextBytes(garbage);
            cases.Add(($"{file} of random bytes", garbage));
            cases.Add(($"empty {file}", []));
            if (file == "vocab.json")
                foreach (var text in new[] { "[]", "null", "{}", "{\"a\": -5}", "{\"a\": 1e20}", "{\"a\": \"x\"}", "{\"a\": 2000000000}", "{\"a\": 0, \"b\": 0}", "{\"a\": 3.5}" })
                    cases.Add(($"vocab.json = {text}", Encoding.UTF8.GetBytes(text)));
            else
                foreach (var text in new[] { "a b c\n", "#version: 0.2\n\u0000\u0000\n", "a\n", new string('x', 70_000) + " y\n" })
                    cases.Add(($"merges.txt = {text[..Math.Min(12, text.Length)]}...", Encoding.UTF8.GetBytes(text)));
            foreach (var (what, bytes) in cases)
            {
                File.WriteAllBytes(path, bytes);
                if (LoadOnce(dir, what) == Outcome.Loaded) loaded++;
                else refused++;
            }
            File.WriteAllBytes(path, whole);
        }
        log.WriteLine($"model sets, tokenizer files: {loaded + refused} cases ({loaded} loaded, {refused} refused), seed {HostileFiles.Seed}");
        Assert.True(refused > 20);
    }
}
