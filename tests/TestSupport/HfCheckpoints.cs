using System.Collections.Concurrent;

namespace Assistant.Tests;

/// <summary>
/// Random-weight LLaVA checkpoints in the layout llava-hf downloads have (tools/make_hf_checkpoint.py), imported
/// into model sets (tools/import_hf.py) and written as GGUF for llama.cpp (tools/export_gguf.py). Each variant is
/// made once per test process, under one temporary folder removed at exit.
/// </summary>
public static class HfCheckpoints
{
    /// <summary>The variants the tests cover, by name: the arguments tools/make_hf_checkpoint.py gets.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Variants = new Dictionary<string, string[]>
    {
        // Old key names, BF16, two shards with an index, tied embeddings, Qwen2 (q/k/v bias), CLIP at layer -2.
        ["clip-qwen2-bf16-shards"] = [],
        ["new-layout-untied"] = ["--layout", "new", "--untied", "--dtype", "F16", "--shards", "1"],
        ["siglip"] = ["--vision", "siglip", "--feature-layer", "-1", "--dtype", "F32"],
        ["llama"] = ["--text", "llama", "--untied", "--seed", "3"],
        // llava-1.5-*-hf's layout: a Llama text model with SentencePiece's tokenizer.model (byte fallback) and the
        // "USER: <image>\n... ASSISTANT:" template.
        ["llava-1.5"] = ["--family", "llava-1.5", "--seed", "5"],
        // SmolVLM's (Idefics3): SigLIP with its post-layernorm, the pixel-shuffle connector (8 x 8 patches to 4 x 4
        // tokens), a tied Llama text model, SmolLM2's tokenizer and the image markers around the visual tokens.
        ["smolvlm"] = ["--family", "smolvlm", "--seed", "7"],
    };

    private static readonly string Root = Path.Combine(Path.GetTempPath(), $"hf-checkpoints-{Environment.ProcessId}");
    private static readonly ConcurrentDictionary<string, Lazy<Made>> Cache = new();

    static HfCheckpoints() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    };

    /// <summary>One variant's folders: the checkpoint, the imported set, and the GGUF pair.</summary>
    public sealed record Made(string Checkpoint, string Set, string Gguf)
    {
        /// <summary>The GGUF text model.</summary>
        public string TextGguf => Path.Combine(Gguf, "text.gguf");

        /// <summary>The GGUF mmproj (vision tower + projector).</summary>
        public string MmprojGguf => Path.Combine(Gguf, "mmproj.gguf");
    }

    /// <summary>The variant <paramref name="name"/>, made on first use.</summary>
    public static Made Get(string name) => Cache.GetOrAdd(name, n => new Lazy<Made>(() => Make(n, Variants[n]))).Value;

    /// <summary>A checkpoint folder of <paramref name="args"/> (tools/make_hf_checkpoint.py) in a new folder under <paramref name="parent"/>.</summary>
    public static string MakeCheckpoint(string parent, params string[] args)
    {
        var dir = Path.Combine(parent, $"hf-{Guid.NewGuid():N}");
        Python("make_hf_checkpoint.py", ["--out", dir, .. args]);
        return dir;
    }

    private static Made Make(string name, string[] args)
    {
        var dir = Path.Combine(Root, name);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        var hf = Path.Combine(dir, "hf");
        var set = Path.Combine(dir, "set");
        var gguf = Path.Combine(dir, "gguf");
        Python("make_hf_checkpoint.py", ["--out", hf, .. args]);
        Python("import_hf.py", [hf, "--out", set]);
        Python("export_gguf.py", [hf, "--out", gguf]);
        return new Made(hf, set, gguf);
    }

    /// <summary>Runs tools/<paramref name="script"/> with Debian's python3 (./test installs python3-torch and python3-onnx).</summary>
    public static string Python(string script, IEnumerable<string> args) =>
        Tool.Run("/usr/bin/python3", [Path.Combine(Repo.Root, "tools", script), .. args]);

    /// <summary>Imports <paramref name="checkpoint"/> into a new folder under <paramref name="parent"/> with <paramref name="environment"/> set and <paramref name="args"/> added.</summary>
    public static string Import(string checkpoint, string parent, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var set = Path.Combine(parent, $"set-{Guid.NewGuid():N}");
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(Repo.Root, "tools", "import_hf.py"), checkpoint, "--out", set }.Concat(args)) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"import_hf.py failed ({p.ExitCode}): {err.Result.Trim()}");
        return set;
    }
}
