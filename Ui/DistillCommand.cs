using System.CommandLine;
using Assistant.Engine;

namespace Assistant.Ui;

/// <summary>
/// <c>assistant models distill SET --checkpoint HF_DIR</c>: tools/distill.py trains the paper's query-aware compressor
/// (and, with --baseline, the same without the question) for an imported set from the set's own full-token answers;
/// the new set it hands over is loaded with the engine's checks and its golden picture run, every distilled graph
/// against the PyTorch module it came from, and only then put in the old set's place. A refusal leaves the set as it was.
/// </summary>
internal static class DistillCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var setArg = new Argument<string>("SET") { Description = "an imported model set folder (assistant models import)" };
        var checkpoint = new Option<string>("--checkpoint") { Description = "the llava-hf checkpoint folder the set was imported from (the decoder the compressor learns to feed)", Required = true };
        var data = new Option<string>("--data") { Description = "'world' (the synthetic world's scenes and questions, for a world-trained set) or a folder of your pictures", DefaultValueFactory = _ => "world" };
        var questions = new Option<string?>("--questions") { Description = "with --data DIR: one question a line, asked of every picture, or JSON lines {\"question\": ..., \"image\": FILE, \"answer\": ...} asked of that picture (image and answer optional; an answer needs its image)" };
        var tokens = new Option<string>("--tokens") { Description = "visual-token counts to distil, comma-separated squares (1,4,9,16,...)", DefaultValueFactory = _ => "1,4,16" };
        var steps = new Option<int>("--steps") { Description = "training steps (each trains every V)", DefaultValueFactory = _ => 600 };
        var batch = new Option<int>("--batch") { Description = "questions per step", DefaultValueFactory = _ => 32 };
        var baseline = new Option<bool>("--baseline") { Description = "also distil the compressor without the question (kind tokenpacker), to measure what the question adds" };
        var replace = new Option<bool>("--replace") { Description = "let this run drop graphs an earlier distillation made at a V not in --tokens (a kind is replaced whole; without it such a run is refused)" };
        var keep = new Option<bool>("--keep") { Description = "keep the graphs an earlier distillation made at a V not in --tokens as they are (the manifest records each V's run): train one V longer without training the others again" };
        var work = new Option<string?>("--work") { Description = "cached features, teacher answers and checkpoints (default .SET.distill beside the set); a stopped run resumes from it" };
        var minutes = new Option<double>("--max-minutes") { Description = "stop training after this long and write what was learned (0: no limit)", DefaultValueFactory = _ => 0 };
        var device = new Option<string>("--device") { Description = "cpu (cuda is refused in this build)", DefaultValueFactory = _ => "cpu" };
        device.AcceptOnlyFromAmong("cpu", "cuda");
        var scenes = new Option<int>("--scenes") { Description = "with --data world: training scenes, each asked 3 questions", DefaultValueFactory = _ => 3000 };
        var threads = new Option<int>("--threads") { Description = "CPU threads for training (0: PyTorch's default, every core; a small decoder can train faster on 1, docs/REAL_MODELS.md)", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { Description = "data and initialisation seed", DefaultValueFactory = _ => 0 };
        var questionEmbedding = new Option<string>("--question-embedding")
        {
            Description = "what the compressor is given of the question: pass (the decoder run on the question alone, its last hidden state: the paper's; one short prefill per question) or mean (its token embeddings' mean)",
            DefaultValueFactory = _ => "pass",
        };
        questionEmbedding.AcceptOnlyFromAmong("pass", "mean");
        var command = new Command("distill", "Train a query-aware compressor (QueCC) of 1-16 visual tokens for an imported set from its own full-token answers; docs/REAL_MODELS.md.")
        {
            setArg, checkpoint, data, questions, tokens, steps, batch, baseline, replace, keep, scenes, work, minutes, device, threads, seed, questionEmbedding,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            var set = parse.GetValue(setArg)!;
            if (!Directory.Exists(set))
                throw new EngineException($"model set not found: {set}");
            var (python, _) = await ModelsCommand.Importer(cancellation);
            var script = ModelsCommand.FindTool("distill.py")
                ?? throw new EngineException("tools/distill.py not found: run the distillation from a checkout of the assistant's source");
            var handOver = Path.Combine(Path.GetTempPath(), $"assistant-distill-{Guid.NewGuid():N}.json");
            List<string> args =
            [
                script, set, "--checkpoint", parse.GetValue(checkpoint)!, "--data", parse.GetValue(data)!, "--tokens", parse.GetValue(tokens)!,
                "--steps", $"{parse.GetValue(steps)}", "--batch", $"{parse.GetValue(batch)}", "--device", parse.GetValue(device)!,
                "--seed", $"{parse.GetValue(seed)}", "--scenes", $"{parse.GetValue(scenes)}", "--max-minutes", $"{parse.GetValue(minutes)}", "--hand-over", handOver,
                "--question-embedding", parse.GetValue(questionEmbedding)!,
            ];
            if (parse.GetValue(questions) is { } q) args.AddRange(["--questions", q]);
            if (parse.GetValue(work) is { } w) args.AddRange(["--work", w]);
            if (parse.GetValue(baseline)) args.Add("--baseline");
            if (parse.GetValue(replace)) args.Add("--replace");
            if (parse.GetValue(keep)) args.Add("--keep");
            if (parse.GetValue(threads) is var n and not 0) args.AddRange(["--threads", $"{n}"]);
            var before = ToolProcess.Before.Of(set);
            try
            {
                // a training run's log is long by design (a line per 10 steps, one per evaluation): all of it reaches a log file
                int code = await ModelsCommand.RunTool(python, args, stdout, stderr, cancellation, before, maxLines: 5_000);
                if (code != 0) return code;
                var (placed, handedOver) = await ModelsCommand.CheckAndPlace(handOver, before, ModelsCommand.Placement.Distill, stdout, stderr, cancellation);
                if (handedOver?.TryGetProperty("work", out var workFolder) == true && workFolder.GetString() is { } folder) RemoveWork(folder);
                return placed;
            }
            finally
            {
                File.Delete(handOver);
            }
        });
        return command;
    }

    /// <summary>The run's own files in its work folder, and the folder when nothing else is in it.</summary>
    private static void RemoveWork(string work)
    {
        foreach (var file in new[] { "data.pt", "train.pt" })
            File.Delete(Path.Combine(work, file));
        try
        {
            if (Directory.Exists(work) && !Directory.EnumerateFileSystemEntries(work).Any()) Directory.Delete(work);
        }
        catch (IOException) { }
    }
}
