using System.Text.Json;

namespace Assistant.Tests;

/// <summary>Paths into the repository and the golden outputs PyTorch wrote for the default set.</summary>
public static class Repo
{
    public static string Root { get; } = FindRoot();

    /// <summary>The random-weight set: contract, parity and bad-input tests.</summary>
    public static string TinyModels => Path.Combine(Root, "models", "tiny-random");

    /// <summary>The trained default set: world behaviour tests.</summary>
    public static string TrainedModels => Path.Combine(Root, "models", "default");

    /// <summary>The world's LLaVA checkpoint in the llava-hf layout (tools/world_checkpoint.py): a folder to import, not a set.</summary>
    public static string WorldCheckpoint => Path.Combine(Root, "models", "world-llava-hf");

    /// <summary>That checkpoint imported, with compressors distilled from its full-token answers (tools/distill.py): a set.</summary>
    public static string WorldLlava => Path.Combine(Root, "models", "world-llava");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Assistant.sln"))) return dir.FullName;
        throw new InvalidOperationException("Assistant.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>A private copy of the default set, for tests that break it on purpose.</summary>
    public static string CopyTinyModels() => CopyFolder(TinyModels);

    /// <summary>Cuts the file at <paramref name="path"/> to its first third (a download or copy that stopped short).</summary>
    public static void CutToAThird(string path)
    {
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 3)]);
    }

    /// <summary>A private copy of <paramref name="source"/>'s files in a new temporary folder.</summary>
    public static string CopyFolder(string source)
    {
        var target = Path.Combine(Path.GetTempPath(), "assistant-tests", Guid.NewGuid().ToString("N"));
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var dest = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Copy(file, dest);
        }
        return target;
    }
}

/// <summary>golden/golden.json of the default set (tools/export.py writes it).</summary>
public sealed class Golden
{
    private readonly JsonElement _root;

    public Golden(string modelDir)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(modelDir, "golden", "golden.json")));
        _root = doc.RootElement.Clone();
        ImagePath = Path.Combine(modelDir, "golden", _root.GetProperty("image").GetString()!);
    }

    public static Golden Tiny { get; } = new(Repo.TinyModels);

    public static Golden Trained { get; } = new(Repo.TrainedModels);

    public string ImagePath { get; }
    public string Query => _root.GetProperty("query").GetString()!;
    public float[] PixelValues => Floats(_root.GetProperty("pixel_values"));
    public float[] Features => Floats(_root.GetProperty("features"));
    public float[] FeaturesMulti => Floats(_root.GetProperty("features_multi"));

    public JsonElement Decoder(string name) => _root.GetProperty("decoders").GetProperty(name);

    public static float[] Floats(JsonElement e) => e.EnumerateArray().Select(x => x.GetSingle()).ToArray();
    public static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    public static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        float m = 0;
        for (int i = 0; i < a.Length; i++) m = MathF.Max(m, MathF.Abs(a[i] - b[i]));
        return m;
    }
}
