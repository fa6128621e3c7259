using System.Text.Json.Nodes;
using Assistant.Inference;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

/// <summary>
/// <c>assistant models distill</c> (tools/distill.py behind it) on a set imported from a random llava-hf checkpoint: the
/// distilled compressors are checked by the engine against the PyTorch they were exported from before the set changes,
/// and `ask` answers with them; bad input leaves the set as it was.
/// </summary>
public sealed class DistillCliTests
{
    private static (string Pictures, string Questions) Data(string root, string set)
    {
        var pictures = Path.Combine(root, "pictures");
        Directory.CreateDirectory(pictures);
        var image = Capture.ImageFile.Load(Path.Combine(set, "golden", "image.png"));
        Capture.World.PngFile.Write(image, Path.Combine(pictures, "0.png"));
        Capture.World.PngFile.Write(image with { Rgb = image.Rgb.Select(b => (byte)(255 - b)).ToArray() }, Path.Combine(pictures, "1.png"));
        var questions = Path.Combine(root, "questions.txt");
        File.WriteAllText(questions, "What is in this picture?\nwhat colour is the circle?\n{\"question\": \"is there a square?\", \"image\": \"1.png\", \"answer\": \"yes\"}\n");
        return (pictures, questions);
    }

    [Fact]
    public async Task ModelsDistill_AddsQueccGraphsTheEngineChecks_AndAskAnswersWithThem()
    {
        var made = HfCheckpoints.Get("clip-qwen2-bf16-shards");
        var root = Path.Combine(Path.GetTempPath(), $"assistant-distill-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        var set = Path.Combine(root, "set");
        try
        {
            Directory.Move(Repo.CopyFolder(made.Set), set);
            var (pictures, questions) = Data(root, set);
            var (code, stdout, stderr) = await CliRun.Run("models", "distill", set, "--checkpoint", made.Checkpoint, "--data", pictures,
                "--questions", questions, "--tokens", "1,4", "--steps", "6", "--batch", "4", "--baseline");
            Assert.True(code == 0, stderr);
            Assert.Contains("distilled into", stdout);
            // every distilled graph against tools/distill.py's module, at the 1e-4 the engine's check holds them to
            Assert.Contains("4 distilled compressor graphs and the question's own pass within", stdout);
            Assert.Empty(Directory.GetDirectories(root, ".set.*"));
            Assert.False(Directory.Exists(Path.Combine(root, ".set.distill")), "the work folder's files go once the set is in place");

            var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(set, "manifest.json")))!;
            var quecc = manifest["decoders"]![0]!["compressors"]!.AsArray().Single(c => (string)c!["kind"]! == "quecc")!;
            Assert.True((bool)quecc["query_aware"]!);
            Assert.Equal(6, (int)quecc["distilled"]!["steps"]!);
            Assert.Equal(2, (int)quecc["distilled"]!["data"]!["pictures"]!);
            // the paper's query by default; the engine's pass of the golden question was held to PyTorch's above
            Assert.Equal(PromptSpec.QuestionHiddenState, (string)quecc["query_embedding"]!);

            (code, stdout, stderr) = await CliRun.Run("ask", "--models", set, "--image", Path.Combine(pictures, "1.png"),
                "--query", "What is in this picture?", "--compressor", "quecc", "--tokens", "4", "--max-tokens", "4");
            Assert.True(code == 0, stderr);
            Assert.NotEmpty(stdout.Trim());
            Assert.Contains("quecc V=4", stderr);  // the timings line
            (code, stdout, stderr) = await CliRun.Run("models", "check", set);
            Assert.True(code == 0, stderr);
            Assert.Contains("tokenpacker  query-agnostic", stdout);

            // --keep: V = 4 trained again on one thread; V = 1's graphs stay, and the engine checks all four again
            var v1 = File.ReadAllBytes(Path.Combine(set, (string)quecc["graphs"]!["1"]!["file"]!));
            (code, stdout, stderr) = await CliRun.Run("models", "distill", set, "--checkpoint", made.Checkpoint, "--data", pictures,
                "--questions", questions, "--tokens", "4", "--steps", "2", "--batch", "4", "--baseline", "--keep", "--threads", "1");
            Assert.True(code == 0, stderr);
            Assert.Contains("4 distilled compressor graphs and the question's own pass within", stdout);
            manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(set, "manifest.json")))!;
            quecc = manifest["decoders"]![0]!["compressors"]!.AsArray().Single(c => (string)c!["kind"]! == "quecc")!;
            Assert.Equal(["1", "4"], quecc["graphs"]!.AsObject().Select(g => g.Key));
            Assert.Equal(2, (int)quecc["distilled"]!["steps"]!);
            Assert.Equal(6, (int)quecc["distilled"]!["earlier"]![0]!["steps"]!);
            Assert.Equal(v1, File.ReadAllBytes(Path.Combine(set, (string)quecc["graphs"]!["1"]!["file"]!)));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task ModelsDistill_RefusesBadInput_InOneLine_AndTheSetIsUnchanged()
    {
        var made = HfCheckpoints.Get("clip-qwen2-bf16-shards");
        var root = Path.Combine(Path.GetTempPath(), $"assistant-distill-bad-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        try
        {
            var (pictures, questions) = Data(root, made.Set);
            var manifest = File.ReadAllText(Path.Combine(made.Set, "manifest.json"));
            var empty = Path.Combine(root, "empty.txt");
            File.WriteAllText(empty, "");
            var noPictures = Path.Combine(root, "none");
            Directory.CreateDirectory(noPictures);
            File.WriteAllText(Path.Combine(noPictures, "a.jpg"), "not a picture");
            foreach (var (args, expected) in new (string[], string)[]
            {
                (["--data", pictures, "--questions", empty], "holds no question"),
                (["--data", noPictures, "--questions", questions], "holds no readable picture"),
                (["--data", pictures, "--questions", questions, "--tokens", "2"], "V = 2 is not one"),
            })
            {
                var (code, _, stderr) = await CliRun.Run(["models", "distill", made.Set, "--checkpoint", made.Checkpoint, .. args]);
                Assert.Equal(2, code);
                Assert.Contains(expected, Assert.Single(stderr.Trim().Split('\n')));
            }
            var (c2, _, e2) = await CliRun.Run("models", "distill", Repo.TinyModels, "--checkpoint", made.Checkpoint);
            Assert.Equal(2, c2);
            Assert.Contains("is not an imported set", Assert.Single(e2.Trim().Split('\n')));
            Assert.Equal(manifest, File.ReadAllText(Path.Combine(made.Set, "manifest.json")));
            Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(made.Set)!, ".set.*"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
