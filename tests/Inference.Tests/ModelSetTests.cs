using System.Text.Json.Nodes;
using Assistant.Tests;

namespace Assistant.Inference.Tests;

/// <summary>Loading validates a set against its manifest and the contract; every defect is one clear line.</summary>
public sealed class ModelSetTests
{
    private static readonly SessionFactory Cpu = new(new SessionConfig(ExecutionProvider.Cpu));

    private static string Broken(Action<string> breakIt)
    {
        var dir = Repo.CopyTinyModels();
        breakIt(dir);
        return dir;
    }

    private static void EditManifest(string dir, Action<JsonNode> edit)
    {
        var path = Path.Combine(dir, "manifest.json");
        var node = JsonNode.Parse(File.ReadAllText(path))!;
        edit(node);
        File.WriteAllText(path, node.ToJsonString());
    }

    private static InferenceException LoadFails(string dir)
    {
        var e = Assert.Throws<InferenceException>(() => ModelSet.Load(dir, Cpu).Dispose());
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(2, e.ExitCode);
        return e;
    }

    [Fact]
    public void DefaultSet_LoadsAndOffersEveryV()
    {
        using var set = ModelSet.Load(Repo.TinyModels, Cpu);
        var lm = set.Decoder(set.Manifest.Default.Decoder);
        Assert.Equal([1, 4, 16, 64], lm.Compressors.Where(c => c.Spec.Kind == "quecc").Select(c => c.Tokens));
        Assert.Equal([1, 4, 16, 64], lm.Compressors.Where(c => c.Spec.Kind == "tokenpacker").Select(c => c.Tokens));
    }

    [Fact]
    public void MissingFolder() => Assert.Contains("not found", LoadFails("/nonexistent/models").Message);

    [Fact]
    public void FolderWithoutManifest() =>
        Assert.Contains("no manifest.json", LoadFails(Broken(d => File.Delete(Path.Combine(d, "manifest.json")))).Message);

    [Fact]
    public void ManifestNotJson() =>
        Assert.Contains("not a valid manifest", LoadFails(Broken(d => File.WriteAllText(Path.Combine(d, "manifest.json"), "{ nope"))).Message);

    [Fact]
    public void ManifestMissingARequiredField() =>
        Assert.Contains("not a valid manifest", LoadFails(Broken(d => EditManifest(d, m => m.AsObject().Remove("vision")))).Message);

    [Fact]
    public void MissingComponentFile()
    {
        var e = LoadFails(Broken(d => File.Delete(Path.Combine(d, "decoder-d64-l2", "quecc_V4.onnx"))));
        Assert.Contains("model file not found", e.Message);
        Assert.Contains("quecc_V4.onnx", e.Message);
    }

    [Fact]
    public void ManifestNamesATensorTheGraphLacks()
    {
        var e = LoadFails(Broken(d => EditManifest(d, m =>
        {
            var outputs = m["vision"]!["outputs"]!.AsObject();
            var spec = outputs["features"]!.DeepClone();
            outputs.Remove("features");
            outputs["patch_features"] = spec;
        })));
        Assert.Contains("vision.onnx has no output 'patch_features'", e.Message);
    }

    [Fact]
    public void ManifestOmitsAContractTensor()
    {
        var e = LoadFails(Broken(d => EditManifest(d, m => m["decoders"]![0]!["decoder"]!["outputs"]!.AsObject().Remove("last_hidden_state"))));
        Assert.Contains("contract output 'last_hidden_state'", e.Message);
    }

    [Fact]
    public void DimensionMismatchBetweenComponents()
    {
        // The manifest says the decoder is 96 wide; its graphs and the compressors' projections say 64.
        var e = LoadFails(Broken(d => EditManifest(d, m => m["decoders"]![0]!["dim"] = 96)));
        Assert.StartsWith("dimension mismatch", e.Message);
    }

    [Fact]
    public void CompressorGraphForAnotherV_IsRefusedAtLoadOnTheDefaultPath()
    {
        // quecc_V16.onnx put where the default V=1 belongs: the graph's real output shape gives it away at load.
        var e = LoadFails(Broken(d => File.Copy(Path.Combine(d, "decoder-d64-l2", "quecc_V16.onnx"), Path.Combine(d, "decoder-d64-l2", "quecc_V1.onnx"), true)));
        Assert.Contains("quecc_V1.onnx output 'visual_tokens' axis 1 is 16", e.Message);
    }

    [Fact]
    public void CompressorGraphForAnotherV_ElsewhereIsRefusedWhenFirstUsed()
    {
        // quecc_V16.onnx put where V=4 belongs: V=4 is not the default, so it is opened (and found out) when first used,
        // in one line, every time it is asked for; the rest of the set runs on.
        var dir = Broken(d => File.Copy(Path.Combine(d, "decoder-d64-l2", "quecc_V16.onnx"), Path.Combine(d, "decoder-d64-l2", "quecc_V4.onnx"), true));
        using var set = ModelSet.Load(dir, Cpu);
        var lm = set.Decoder("decoder-d64-l2");
        var wrong = lm.Compressor("quecc", 4);
        Assert.False(wrong.IsOpen);
        using var lease = set.Lease();
        for (int i = 0; i < 2; i++)
        {
            var e = Assert.Throws<InferenceException>(() => lease.Compressor(wrong));
            Assert.Contains("quecc_V4.onnx output 'visual_tokens' axis 1 is 16", e.Message);
            Assert.DoesNotContain('\n', e.Message);
            Assert.Equal(2, e.ExitCode);
        }
        Assert.NotNull(lease.Compressor(lm.Compressor("quecc", 16)));
    }

    [Fact]
    public void Compressors_OpenWhenFirstUsed_TheDefaultAtLoad()
    {
        using var set = ModelSet.Load(Repo.TinyModels, Cpu);
        var lm = set.Decoder(set.Manifest.Default.Decoder);
        var open = lm.Compressors.Where(c => c.IsOpen).Select(c => (c.Spec.Kind, c.Tokens)).ToList();
        Assert.Equal([(set.Manifest.Default.Compressor, set.Manifest.Default.Tokens)], open);
        Assert.True(set.ResidentAtLoad.ContainsKey($"{lm.Spec.Name} compressors"));
        var other = lm.Compressor("tokenpacker", 4);
        using (var lease = set.Lease())
        {
            var state = lease.Compressor(other);
            Assert.True(other.IsOpen);
            state.Compress(lease.Vision.Features, lease.Vision.FeaturesMulti, set.Manifest.Vision.Patches, new float[lm.Spec.Dim]);
            Assert.All(state.VisualTokens, x => Assert.True(float.IsFinite(x)));
            Assert.Contains(state.VisualTokens, x => x != 0);
        }
        Assert.Equal(lm.Compressors.Count() - 2, lm.Compressors.Count(c => !c.IsOpen));
    }

    [Fact]
    public void CorruptOnnxFile()
    {
        var e = LoadFails(Broken(d => File.WriteAllBytes(Path.Combine(d, "vision.onnx"), "garbage, not protobuf"u8.ToArray())));
        Assert.Contains("cannot load", e.Message);
        Assert.Contains("vision.onnx", e.Message);
    }

    /// <summary>
    /// The tiny set with its tower's weights moved to external data (as an import writes every graph over 64 MB), then
    /// every external location in it replaced by <paramref name="location"/>, and <paramref name="prepare"/> run in the folder.
    /// </summary>
    private static string TowerWithExternalWeightsAt(string location, Action<string> prepare) => Broken(d =>
    {
        Tool.Run("/usr/bin/python3", ["-c", """
            import sys, onnx
            path, location = sys.argv[1], sys.argv[2]
            m = onnx.load(path)
            onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location="vision.onnx.data", size_threshold=0)
            m = onnx.load(path, load_external_data=False)
            for t in m.graph.initializer:
                for e in t.external_data:
                    if e.key == "location":
                        e.value = location
            onnx.save(m, path)
            """, Path.Combine(d, "vision.onnx"), location]);
        prepare(d);
    });

    [Theory]
    [InlineData("vision.onnx.data", "none", null)]
    [InlineData("../outside.data", "outside", "escapes model directory")]
    [InlineData("/etc/hostname", "none", "Absolute path not allowed")]
    [InlineData("zero.data", "link to /dev/zero", "escapes model directory")]
    [InlineData("fifo.data", "fifo", "cannot load")]
    [InlineData("missing.data", "none", "cannot load")]
    public void ExternalWeights_LoadInside_AndAHostileLocationIsOneLine(string location, string plant, string? refusal)
    {
        // ONNX Runtime judges each external location itself (inside the graph's folder, a regular file); the engine's
        // part is that its refusal is one line naming the graph, in bounded time, with nothing read from outside.
        var dir = TowerWithExternalWeightsAt(location, d =>
        {
            switch (plant)
            {
                case "outside": File.Copy(Path.Combine(d, "vision.onnx.data"), Path.Combine(d, "..", "outside.data"), true); break;
                case "link to /dev/zero": File.CreateSymbolicLink(Path.Combine(d, "zero.data"), "/dev/zero"); break;
                case "fifo": Tool.Run("mkfifo", [Path.Combine(d, "fifo.data")]); break;
            }
        });
        if (refusal is null)
        {
            using var set = ModelSet.Load(dir, Cpu);
            Assert.True(File.Exists(Path.Combine(dir, "vision.onnx.data")));
            return;
        }
        var e = LoadFails(dir);
        Assert.Contains("vision.onnx", e.Message);
        Assert.True(e.Message.Contains(refusal), e.Message);
    }

    [Fact]
    public void EmptyOnnxFile() =>
        Assert.Contains("is empty", LoadFails(Broken(d => File.WriteAllBytes(Path.Combine(d, "decoder-d64-l2", "embed.onnx"), []))).Message);

    [Fact]
    public void PathEscapingTheFolder()
    {
        var e = LoadFails(Broken(d => EditManifest(d, m => m["vision"]!["file"] = "../vision.onnx")));
        Assert.Contains("inside the model folder", e.Message);
    }

    [Fact]
    public void WrongFormatVersion() =>
        Assert.Contains("this build reads", LoadFails(Broken(d => EditManifest(d, m => m["format"] = "something-else/9"))).Message);

    [Fact]
    public void TokensNotOffered()
    {
        using var set = ModelSet.Load(Repo.TinyModels, Cpu);
        var e = Assert.Throws<InferenceException>(() => set.Decoder(set.Manifest.Default.Decoder).Compressor("quecc", 5));
        Assert.Contains("choose one of 1, 4, 16, 64", e.Message);
    }

    [Theory]
    [InlineData("/etc/passwd", "must be a relative path")]
    [InlineData("../../../../etc/passwd", "must be a relative path")]
    [InlineData("", "must be a relative path")]
    public void TokenizerPaths_StayInsideTheSet(string vocab, string why)
    {
        var dir = Broken(d => EditManifest(d, m => m["tokenizer"]!["vocab"] = vocab));
        var e = LoadFails(dir);
        Assert.Contains(why, e.Message);
        Assert.DoesNotContain("root", e.Message);  // nothing of the file is read, so nothing of it is echoed
    }

    [Fact]
    public void SpecialFilesAndLinksOut_AreRefusedBeforeTheyAreRead()
    {
        // A symlinked vocab.json to /dev/zero used to grow past 3 GB; a FIFO as vocab.json or manifest.json blocked.
        var zero = Broken(d => { File.Delete(Path.Combine(d, "vocab.json")); File.CreateSymbolicLink(Path.Combine(d, "vocab.json"), "/dev/zero"); });
        Assert.Contains("links outside the model folder", LoadFails(zero).Message);
        var passwd = Broken(d => { File.Delete(Path.Combine(d, "merges.txt")); File.CreateSymbolicLink(Path.Combine(d, "merges.txt"), "/etc/passwd"); });
        Assert.Contains("links outside the model folder", LoadFails(passwd).Message);
        // A folder of the set linked to one outside it: its files are judged by where they really are.
        var outside = Path.Combine(Path.GetTempPath(), $"assistant-outside-{Guid.NewGuid():N}");
        var linkedFolder = Broken(d =>
        {
            var decoder = System.IO.Directory.GetDirectories(d).First(f => Path.GetFileName(f).StartsWith("decoder"));
            System.IO.Directory.Move(decoder, outside);
            System.IO.Directory.CreateSymbolicLink(decoder, outside);
        });
        Assert.Contains("links outside the model folder", LoadFails(linkedFolder).Message);
        // A link that stays inside the set is fine, and so is a set folder that is itself a link.
        var alias = Path.Combine(Path.GetTempPath(), $"assistant-alias-{Guid.NewGuid():N}");
        System.IO.Directory.CreateSymbolicLink(alias, Broken(_ => { }));
        ModelSet.Load(alias, Cpu).Dispose();
        foreach (var name in new[] { "vocab.json", "manifest.json" })
        {
            var fifo = Broken(d => { File.Delete(Path.Combine(d, name)); Tool.Run("mkfifo", [Path.Combine(d, name)]); });
            var clock = System.Diagnostics.Stopwatch.StartNew();
            Assert.Contains("not a regular file", LoadFails(fifo).Message);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
        }
    }

    [Theory]
    [InlineData(1_000_000_000)]
    [InlineData(-5)]
    public void SpecialTokenIdsOutOfRange_AreRefusedBeforeAnythingIsAllocated(int id)
    {
        var dir = Broken(d => EditManifest(d, m => m["tokenizer"]!["special_tokens"]!["<|im_end|>"] = id));
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Contains("out of range", LoadFails(dir).Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 512L << 20);
    }

    [Fact]
    public void NegativeIdsInTheVocabulary_AreOneLineNotAnIndexError()
    {
        var dir = Broken(d =>
        {
            var path = Path.Combine(d, "vocab.json");
            File.WriteAllText(path, File.ReadAllText(path).Replace("\"!\": 33", "\"!\": -33"));
        });
        Assert.Contains("out of range", LoadFails(dir).Message);
    }

    [Fact]
    public void AChatPrefixOfTenThousandTokens_IsRefusedAtLoad()
    {
        // A template's `{{ 'the' * 5000 }}` made every ask prefill 10,006 tokens (6.0 GB, 5.75 s) in a set made elsewhere.
        var dir = Broken(d => EditManifest(d, m => m["prompt"]!["chat"] = new JsonObject
        {
            ["before_image"] = string.Concat(Enumerable.Repeat("the ", 5000)), ["before_question"] = "\n", ["after_question"] = "",
        }));
        Assert.Contains("prompt.chat is 20,001 characters for one turn; at most 8,192", LoadFails(dir).Message);
    }

    [Theory]
    [InlineData("layers", 100_000_000, "layers is 100000000; it must be in 1..1024")]   // allocated 12-13 GB of names before
    [InlineData("layers", 0, "layers is 0")]                                           // passed check, then failed in ONNX Runtime
    [InlineData("layers", -1, "layers is -1")]                                         // was ArgumentOutOfRangeException
    [InlineData("heads", 0, "heads is 0")]
    [InlineData("kv_heads", 8, "kv_heads is 8")]                                        // more than heads (4)
    [InlineData("kv_heads", 3, "not a multiple of kv_heads 3")]
    [InlineData("rope_theta", -1.0, "rope_theta -1")]
    public void DecoderNumbersOutOfRange_AreOneLineNamingTheKey(string key, double value, string expected)
    {
        var dir = Broken(d => EditManifest(d, m => m["decoders"]![0]![key] = key is "rope_theta" ? JsonValue.Create(value) : JsonValue.Create((long)value)));
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Contains(expected, LoadFails(dir).Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 256L << 20);
    }

    [Theory]
    [InlineData("patch_size", 0)]
    [InlineData("patch_size", -8)]
    public void VisionNumbersOutOfRange_AreOneLine(string key, int value) =>
        Assert.Contains($"vision.{key} is {value}", LoadFails(Broken(d => EditManifest(d, m => m["vision"]![key] = value))).Message);

    [Theory]
    [InlineData("mean", 1e39, "vision.mean")]   // overflows a float to infinity: passed check, then printed NUL characters
    [InlineData("std", 1e-45, "vision.std")]
    public void ANormalisationThatPoisonsThePixels_IsRefused(string key, double value, string expected) =>
        Assert.Contains(expected, LoadFails(Broken(d => EditManifest(d, m => m["vision"]![key]![0] = value))).Message);

    [Fact]
    public void WrongTypesInAManifest_AreOneLine_NotInternalErrors()
    {
        // A null decoder entry was a NullReferenceException, a float shape a FormatException.
        Assert.Contains("empty (null) entry", LoadFails(Broken(d => EditManifest(d, m => m["decoders"]!.AsArray().Add(null)))).Message);
        var floatShape = Broken(d => EditManifest(d, m => m["vision"]!["inputs"]!["pixel_values"]!["shape"]![1] = 3.5));
        Assert.Contains("a size is a whole number", LoadFails(floatShape).Message);
        var boolShape = Broken(d => EditManifest(d, m => m["vision"]!["inputs"]!["pixel_values"]!["shape"]![1] = true));
        Assert.Contains("of type True", LoadFails(boolShape).Message);
    }

    [Fact]
    public void ALayerCountTheGraphDoesNotHave_IsRefusedBeforeAnyCacheIsSized()
    {
        // One layer fewer than the graph: the manifest's own past/present declarations still agree with it, so
        // only the graph's real inputs can tell; ONNX Runtime failed on a missing input at the first answer before.
        var dir = Broken(d => EditManifest(d, m =>
        {
            var decoder = m["decoders"]![0]!;
            int layers = (int)decoder["layers"]!;
            decoder["layers"] = layers - 1;
            foreach (var side in new[] { "inputs", "outputs" })
                foreach (var suffix in new[] { "key", "value" })
                    decoder["decoder"]![side]!.AsObject().Remove(side == "inputs" ? $"past_key_values.{layers - 1}.{suffix}" : $"present.{layers - 1}.{suffix}");
        }));
        var message = LoadFails(dir).Message;
        Assert.Contains("takes past_key_values for", message);
        Assert.Contains("layers is", message);
    }
}
