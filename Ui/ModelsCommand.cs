using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Assistant.Engine;

namespace Assistant.Ui;

/// <summary><c>assistant models check [DIR]</c>: load and validate a set, then describe it.</summary>
internal static class ModelsCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var dirArg = new Argument<string?>("DIR") { Description = "model set folder (default: models/default)", Arity = ArgumentArity.ZeroOrOne };
        var ep = Cli.EpOption();
        var json = Cli.JsonOption();
        var golden = new Option<bool>("--golden")
        {
            Description = "also run the set's golden picture through its graphs and compare with the importer's PyTorch (imported sets)",
        };
        var check = new Command("check", "Validate a model set against the contract and print its components.") { dirArg, ep, json, golden };
        check.SetAction(parse =>
        {
            using var set = Cli.LoadModels(parse.GetValue(dirArg), parse.GetValue(ep)!, stderr);
            set.OpenEveryGraph();  // a check covers every graph, not only those a run opens at load
            var goldenLine = parse.GetValue(golden) ? set.CheckGolden() : null;
            var m = set.Describe();
            var v = m.Vision;
            if (parse.GetValue(json))
            {
                stdout.WriteLine(JsonSerializer.Serialize(new
                {
                    ok = true,
                    models = m.Directory,
                    set_name = m.Name,
                    ep = m.Provider,
                    vision = new { file = v.File, @params = v.Params, v.ImageSize, v.PatchSize, v.Grid, v.Dim, v.MultiDim, v.Layers },
                    tokenizer = new { ids = m.TokenizerIds },
                    decoders = m.Decoders.Select(d => new
                    {
                        d.Name, @params = d.Params, d.Dim, d.Layers, d.Heads, d.KvHeads, d.HeadDim, d.VocabSize, kv_cache = d.KvCache,
                        compressors = d.Compressors.Select(c => new { c.Kind, c.QueryAware, @params = c.Params, tokens = c.Tokens }),
                    }),
                    @default = m.Default,
                    resident_mb_at_load = m.ResidentAtLoad.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value / 1048576.0, 1)),
                    golden = goldenLine,
                }, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
                return 0;
            }
            stdout.WriteLine($"model set '{m.Name}' in {m.Directory}: OK on {m.Provider}");
            if (m.Description is { } desc) stdout.WriteLine($"  {desc}");
            stdout.WriteLine($"  vision   {v.File}: {v.Params:N0} params, {v.ImageSize}px, patch {v.PatchSize} ({v.Grid}x{v.Grid}={v.Patches} patches), dim {v.Dim}, multi {v.MultiDim} (layers {string.Join(",", v.MultiLayers)}), {Mflops(v.Flops)} per image");
            stdout.WriteLine($"  tokenizer {string.Join(" + ", m.TokenizerFiles)} ({m.TokenizerKind}): {m.TokenizerIds} ids ({m.SpecialTokens} special)");
            foreach (var d in m.Decoders)
            {
                stdout.WriteLine($"  decoder  {d.Name}: {d.Params:N0} params, dim {d.Dim}, {d.Layers} layers, {d.Heads} heads / {d.KvHeads} kv, head {d.HeadDim}, ffn {d.Intermediate}, vocab {d.VocabSize}, kv cache {(d.KvCache == "in_place" ? "in place" : "appended")}; decode step at context 32: {Mflops(d.StepFlops)}");
                foreach (var c in d.Compressors)
                    stdout.WriteLine($"    {c.Kind,-12} {(c.QueryAware ? "query-aware" : "query-agnostic")}, {c.Params:N0} params, V in {{{string.Join(", ", c.Tokens)}}}; " +
                                     string.Join(", ", c.Tokens.Select((t, i) => $"V={t}: {Mflops(c.Flops[i])} + prefill {Mflops(c.PrefillFlops[i])}")));
            }
            stdout.WriteLine($"  default  {m.Default.Decoder} + {m.Default.Compressor} at V={m.Default.Tokens}");
            stdout.WriteLine("  resident at load: " + string.Join(", ", m.ResidentAtLoad.Select(kv => $"{kv.Key} {kv.Value / 1048576.0:N1} MB")) +
                             " (the weights before any run; a mapped embedding table grows as rows are read)");
            if (goldenLine is not null) stdout.WriteLine($"  {goldenLine}");
            stdout.WriteLine("  (FLOPs: matrix work per run, 2 per multiply-accumulate; prefill after a 16-token query)");
            return 0;
        });
        return new Command("models", "Inspect, import and fetch model sets.")
        {
            check, ImportCommand(stdout, stderr), DistillCommand.Create(stdout, stderr), PullCommand.Create(stdout, stderr), CalibrateDomainCommand(stdout, stderr),
        };
    }

    /// <summary>
    /// <c>assistant models calibrate-domain SET</c>: measures what the world set's held-out scenes look like to its own
    /// encoder and records it as the manifest's <c>domain</c>, so that `ask`, `live` and the overlay can say when a
    /// picture is not the kind the set knows. The manifest is rewritten whole (a temporary file, then renamed over it).
    /// </summary>
    private static Command CalibrateDomainCommand(TextWriter stdout, TextWriter stderr)
    {
        var dirArg = new Argument<string>("SET") { Description = "a world-trained model set folder" };
        var scenes = new Option<int>("--scenes") { Description = "held-out (validation-split) scenes to measure", DefaultValueFactory = _ => 2000 };
        var command = new Command("calibrate-domain", "Measure what a world set's scenes look like to its encoder and record it in its manifest, so unfamiliar pictures are flagged.")
        {
            dirArg, scenes,
        };
        command.SetAction(parse =>
        {
            string dir = parse.GetValue(dirArg)!;
            int n = parse.GetValue(scenes);
            DomainCalibrationResult result;
            using (var set = Cli.LoadModels(dir, "cpu", stderr))
            {
                bool showProgress = !Console.IsErrorRedirected && ReferenceEquals(stderr, Console.Error);
                result = DomainCalibration.Measure(set, n, (done, all) =>
                {
                    if (showProgress && (done % 20 == 0 || done == all)) stderr.Write($"\rencoding held-out scenes {done}/{all} [{new string('#', 30 * done / all),-30}]");
                });
                if (showProgress) stderr.WriteLine();
                dir = set.Directory;
            }
            var path = Path.Combine(dir, "manifest.json");
            var manifest = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            manifest["domain"] = new System.Text.Json.Nodes.JsonObject
            {
                ["mean"] = new System.Text.Json.Nodes.JsonArray([.. result.Mean.Select(x => (System.Text.Json.Nodes.JsonNode)x)]),
                ["std"] = new System.Text.Json.Nodes.JsonArray([.. result.Std.Select(x => (System.Text.Json.Nodes.JsonNode)x)]),
                ["threshold"] = Math.Round(result.Threshold, 4),
                ["scenes"] = result.Scenes,
                ["quantile"] = result.Quantile,
            };
            var temp = path + ".tmp";
            File.WriteAllText(temp, manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
            File.Move(temp, path, overwrite: true);
            stdout.WriteLine($"{result.Scenes} held-out scenes: familiarity score median {result.P50:F3}, p99 {result.P99:F3}, max {result.Max:F3}; " +
                             $"threshold {result.Threshold:F3} ({DomainCalibration.Margin:G} x the {100 * result.Quantile:G}th percentile), written to {path}");
            return 0;
        });
        return command;
    }

    /// <summary>
    /// <c>assistant models import HF_DIR --out SET_DIR</c>: tools/import_hf.py in front, run by Debian's python3 (the
    /// importer needs PyTorch and onnx; a machine without them gets one line naming the packages). Its output is
    /// passed through as it comes (progress bars included); its exit code is ours.
    /// </summary>
    private static Command ImportCommand(TextWriter stdout, TextWriter stderr)
    {
        var hfArg = new Argument<string>("HF_DIR") { Description = "a downloaded llava-hf checkpoint folder (config.json, *.safetensors, tokenizer.json, ...)" };
        var outOption = new Option<string>("--out") { Description = "model set folder to create (must not exist)", Required = true };
        var name = new Option<string?>("--name") { Description = "set name recorded in the manifest (default: the checkpoint folder's name)" };
        var dtype = new Option<string>("--dtype") { Description = "weight storage: f32, or f16 (half the disk, computed in float32)", DefaultValueFactory = _ => "f32" };
        dtype.AcceptOnlyFromAmong("f32", "f16");
        var quant = new Option<string?>("--quant") { Description = "quantized MatMul weights, int8 dot products: q8 (int8, a scale per output column) or q4 (the text graphs in 4-bit blocks of 32 like llama.cpp's Q4_0, the tower in int8)" };
        quant.AcceptOnlyFromAmong("q8", "q4");
        var splitting = ImageSplittingOption();
        var attention = AttentionOption();
        var block = BlockOption();
        var command = new Command("import", "Import a LLaVA-family (CLIP/SigLIP + MLP projector + Qwen2/Llama) or SmolVLM checkpoint as a model set; docs/REAL_MODELS.md.")
        {
            hfArg, outOption, name, dtype, quant, block, attention, splitting,
        };
        command.SetAction((parse, cancellation) => Import(parse.GetValue(hfArg)!, parse.GetValue(outOption)!, parse.GetValue(name),
            parse.GetValue(dtype)!, parse.GetValue(quant), parse.GetValue(block), parse.GetValue(attention)!, parse.GetValue(splitting), stdout, stderr, cancellation));
        return command;
    }

    /// <summary>The decoder's attention, as tools/import_hf.py takes it (import and pull).</summary>
    internal static Option<string> AttentionOption()
    {
        var option = new Option<string>("--attention")
        {
            Description = "the decoder's attention: fused (ONNX Runtime's GroupQueryAttention, the KV cache written in place; the default) " +
                          "or plain ONNX operators appending to the cache (for --ep cuda: its GroupQueryAttention has no float32 kernel)",
            DefaultValueFactory = _ => "fused",
        };
        option.AcceptOnlyFromAmong("fused", "plain");
        return option;
    }

    /// <summary>Values per scale in the quantized text graphs' blocks, as tools/import_hf.py takes it (import and pull).</summary>
    internal static Option<int?> BlockOption()
    {
        var option = new Option<int?>("--block")
        {
            Description = "with --quant: values per scale in the text graphs' blocks, 32 (the default, as llama.cpp's Q4_0), 64 or 128 " +
                          "(a 4-bit decoder in about 15% less memory, an 8-bit one in about 10%, rounded more coarsely; docs/PERFORMANCE.md)",
        };
        option.AcceptOnlyFromAmong("32", "64", "128");
        return option;
    }

    /// <summary>SmolVLM's tiles beside the global image: asked for, the importer refuses in one line (not built yet).</summary>
    internal static Option<bool> ImageSplittingOption() => new("--image-splitting")
    {
        Description = "SmolVLM: tiles of the picture beside the global image (not built yet: refused; the global image alone is the real-time setting)",
    };

    /// <summary>Refuses <c>--image-splitting</c> in one line, before anything is fetched or run.</summary>
    internal static void RefuseImageSplitting(bool asked)
    {
        if (asked)
            throw new EngineException("--image-splitting (SmolVLM's tiles beside the global image) is not built yet; import without it: the global image alone, 64 visual tokens for SmolVLM, is what the live loop runs");
    }

    /// <summary>Checks that the importer can run here, before anything is fetched or written; one line when it cannot.</summary>
    internal static async Task<(string Python, string Script)> Importer(CancellationToken cancellation)
    {
        var script = FindTool("import_hf.py")
            ?? throw new EngineException("tools/import_hf.py not found: run the importer from a checkout of the assistant's source");
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        if (await RunTool(python, ["-c", "import torch, onnx, jinja2"], TextWriter.Null, TextWriter.Null, cancellation) != 0)
            throw new EngineException("the importer needs PyTorch, onnx and jinja2: apt-get install python3-torch python3-onnx python3-jinja2 libopenblas0-pthread");
        return (python, script);
    }

    /// <summary>
    /// tools/import_hf.py on <paramref name="checkpoint"/>, then the set checked by the engine and moved to
    /// <paramref name="target"/> (<see cref="CheckAndPlace"/>); `models import` and `models pull` both end here.
    /// </summary>
    internal static async Task<int> Import(string checkpoint, string target, string? name, string dtype, string? quant, int? block, string attention, bool imageSplitting,
        TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        RefuseImageSplitting(imageSplitting);
        var (python, script) = await Importer(cancellation);
        var handOver = Path.Combine(Path.GetTempPath(), $"assistant-import-{Guid.NewGuid():N}.json");
        List<string> args = [script, checkpoint, "--out", target, "--hand-over", handOver];
        if (name is not null) args.AddRange(["--name", name]);
        args.AddRange(["--dtype", dtype]);
        if (quant is not null) args.AddRange(["--quant", quant]);
        if (block is not null) args.AddRange(["--block", block.Value.ToString(CultureInfo.InvariantCulture)]);
        args.AddRange(["--attention", attention]);
        var before = ToolProcess.Before.Of(target);
        try
        {
            int code = await RunTool(python, args, stdout, stderr, cancellation, before);
            return code != 0 ? code : (await CheckAndPlace(handOver, before, Placement.Import, stdout, stderr, cancellation)).Code;
        }
        finally
        {
            File.Delete(handOver);
        }
    }

    /// <summary>
    /// How a tool's finished set takes its place, and what its messages call things: an import's appears where nothing
    /// was; a distillation's <see cref="Replaces"/> the set at the target (the old one moved aside, the new one renamed
    /// in, the old one removed). <see cref="Refusal"/> ends the line of an engine refusal ("so ...").
    /// </summary>
    internal sealed record Placement(string Tool, string Made, string Unchanged, string Refusal, bool Replaces)
    {
        public static readonly Placement Import = new("the importer", "imported", "nothing was written", "it was not kept", false);
        public static readonly Placement Distill = new("the distillation", "distilled", "the set is unchanged", "the set is unchanged", true);
    }

    /// <summary>
    /// A tool's finished set, still in its scratch folder (named in the tool's hand-over file), loaded with the engine's
    /// own checks on the CPU and its golden picture run (<see cref="LoadedModels.CheckGolden"/>: for a distillation,
    /// every graph it made), then put at the target: "imported" means the engine answers with it (issue 31, finding 6).
    /// A refusal removes the scratch and the folders the run made; exit 2. Returns the hand-over's root for what the
    /// caller does after (a distillation's work folder).
    /// </summary>
    internal static async Task<(int Code, JsonElement? HandOver)> CheckAndPlace(string handOver, ToolProcess.Before before, Placement placement,
        TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        string partial, summary;
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(handOver));
            root = doc.RootElement.Clone();
            partial = root.GetProperty("partial").GetString()!;
            summary = root.GetProperty("summary").GetString()!;
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            ToolProcess.RemoveLeftovers(before);
            stderr.WriteLine($"error: {placement.Tool} ended without handing over its set ({e.GetType().Name}); {placement.Unchanged}");
            return (2, null);
        }
        try
        {
            // Off the command's thread, so that Ctrl+C during a large set's load still removes the scratch below.
            var golden = await Task.Run(() =>
            {
                using var models = LoadedModels.Load(partial, "cpu");
                return models.CheckGolden();
            }, cancellation).WaitAsync(cancellation);
            if (placement.Replaces) Swap(partial, before.Target);
            else Directory.Move(partial, before.Target);
            stdout.WriteLine(TerminalText.Printable(summary));
            stdout.WriteLine($"checked by the engine: {golden}");
            return (0, root);
        }
        catch (Exception e) when (UserErrors.ExitCode(e) is not null)  // the engine's one error path: a one-line refusal
        {
            ToolProcess.RemoveLeftovers(before);
            stderr.WriteLine($"error: the engine refuses the {placement.Made} set, so {placement.Refusal}: {TerminalText.Printable(e.Message)}");
            return (2, null);
        }
        catch (IOException e) when (!placement.Replaces && Directory.Exists(partial))
        {
            ToolProcess.RemoveLeftovers(before);
            stderr.WriteLine($"error: {before.Target} appeared while importing (another run?), so this import was not kept ({e.Message})");
            return (2, null);
        }
        catch (OperationCanceledException)
        {
            ToolProcess.RemoveLeftovers(before);
            throw;
        }
    }

    /// <summary>The new set in place of the old: the old moved aside, the new renamed in (the old put back if that fails), the old removed.</summary>
    private static void Swap(string partial, string target)
    {
        var aside = Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.replaced-{Guid.NewGuid():N}"[..^24]);
        Directory.Move(target, aside);
        try
        {
            Directory.Move(partial, target);
        }
        catch (IOException)
        {
            Directory.Move(aside, target);
            throw;
        }
        Directory.Delete(aside, recursive: true);
    }

    internal static string? FindTool(string file)
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "tools", file);
                if (File.Exists(candidate)) return candidate;
            }
        return null;
    }

    /// <summary>
    /// Runs a tool, copying its output to ours as it comes. Cancelling (Ctrl+C, SIGTERM) asks it to stop with SIGTERM and
    /// kills it only after a grace; what it was writing for <paramref name="before"/>'s target is removed (<see cref="ToolProcess"/>).
    /// A tool that cannot start is exit 2 with one line.
    /// </summary>
    internal static async Task<int> RunTool(string exe, IEnumerable<string> args, TextWriter stdout, TextWriter stderr, CancellationToken cancellation,
        ToolProcess.Before? before = null, int maxLines = ToolOutput.MaxLines)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (!Console.IsErrorRedirected) psi.Environment["ASSISTANT_PROGRESS"] = "1";  // the tool's bars reach a terminal through us
        System.Diagnostics.Process? process;
        try { process = System.Diagnostics.Process.Start(psi); }
        catch (System.ComponentModel.Win32Exception) { process = null; }
        if (process is null)
        {
            stderr.WriteLine($"error: {exe} did not start (install python3: apt-get install python3)");
            return 2;
        }
        using (process)
        {
            // Its text may quote the checkpoint: escapes shown, not run; lines and their number bounded (ToolOutput).
            async Task Copy(StreamReader from, TextWriter to)
            {
                var output = new ToolOutput(to, maxLines);
                var buffer = new char[256];
                int n;
                while ((n = await from.ReadAsync(buffer)) > 0) output.Write(buffer.AsSpan(0, n));
                output.Close();
            }
            var copies = Task.WhenAll(Copy(process.StandardOutput, stdout), Copy(process.StandardError, stderr));
            try
            {
                await process.WaitForExitAsync(cancellation);
            }
            catch (OperationCanceledException)
            {
                // Within the command's 2 s grace after a signal: the tool gets 1.2 s to remove its scratch itself.
                if (before is not null) ToolProcess.Stop(process, before, TimeSpan.FromSeconds(1.2));
                else process.Kill(entireProcessTree: true);
                throw;
            }
            await copies;
            return process.ExitCode;
        }
    }

    private static string Mflops(double flops) => $"{flops / 1e6:F2} MFLOP";
}
