using System.Text.Json.Nodes;
using Assistant.Capture.World;
using Assistant.Inference;
using Assistant.Tests;

namespace Assistant.Engine.Tests;

/// <summary>
/// Model kinds as data (issue 26): a layout written in a manifest runs through the unchanged frame pipeline, and an
/// answer restart on an unchanged picture embeds nothing and copies the visual tokens once.
/// </summary>
public sealed class PromptLayoutTests
{
    private static readonly SessionFactory Cpu = new(new SessionConfig(ExecutionProvider.Cpu));
    private const string Question = "how many red circles are there?";

    /// <summary>
    /// A third layout over the tiny set's graphs, neither the world's nor a chat template's: text before the image,
    /// the image between two markers of its own on each side, then text, the question and an end marker.
    /// </summary>
    private static string ThirdLayoutSet()
    {
        var dir = Repo.CopyTinyModels();
        var path = Path.Combine(dir, "manifest.json");
        var manifest = JsonNode.Parse(File.ReadAllText(path))!;
        var prompt = manifest["prompt"]!;
        prompt["query_embedding"] = PromptSpec.QuestionEmbeddingMean;
        prompt["layout"] = JsonNode.Parse("""
            {
              "before_image": [{"special": "<|im_start|>"}, {"text": "look at this"}],
              "image": {"open": ["<|vision_pad|>", "<|vision_start|>"], "close": ["<|vision_end|>", "<|vision_pad|>"]},
              "after_image": [{"text": " and say"}, {"question": true}, {"text": "<|im_end|>"}]
            }
            """);
        File.WriteAllText(path, manifest.ToJsonString());
        return dir;
    }

    [Fact]
    public async Task AThirdLayoutInTheManifest_AnswersThroughTheUnchangedPipeline_AsAHandAssembledPrefill()
    {
        var dir = ThirdLayoutSet();
        using var set = ModelSet.Load(dir, Cpu);
        var config = new AskConfig(Answer: new AnswerOptions(1, IgnoreStop: true, RepeatLimit: 0));
        var frame = new WorldSource(2_000_400, speed: 0).Render(0, 64);
        using var pipeline = new FramePipeline(set);
        pipeline.SetQuery(Question);
        var timings = new StageTimings();
        await foreach (var _ in pipeline.AnswerAsync(frame, config, timings, new FrameStats())) { }
        var logits = pipeline.LastLogits(config).ToArray();

        // By hand, from the layout's own words: [im_start "look at this"] cached; then [pad vision_start][V][vision_end pad]
        // [" and say" question im_end] on top of it.
        using var lease = set.Lease();
        var (model, comp) = config.Resolve(set);
        var lm = lease.Decoder(model);
        var tok = set.Tokenizer;
        int dim = lm.Spec.Dim;
        var vision = lease.Vision;
        var vs = vision.Spec;
        Shaders.Preprocess.ResizeNormalize(frame.Rgb, frame.Width, frame.Height, vs.ImageSize, [.. vs.Mean], [.. vs.Std], vision.PixelBuffer, vs.Crop == "center");
        vision.Encode();
        var question = tok.Encode(Question).ToArray();
        var questionEmbeds = new float[question.Length * dim];
        lm.Embed(question, questionEmbeds);
        var mean = new float[dim];
        for (int i = 0; i < question.Length; i++)
            for (int j = 0; j < dim; j++) mean[j] += questionEmbeds[i * dim + j] / question.Length;
        var compressor = lease.Compressor(comp);
        compressor.Compress(vision.Features, vision.FeaturesMulti, vs.Patches, mean);
        int v = comp.Tokens;

        int[] prefix = [tok.SpecialId("<|im_start|>"), .. tok.EncodeTemplate("look at this")];
        int[] open = [tok.SpecialId("<|vision_pad|>"), tok.SpecialId("<|vision_start|>")];
        int[] after = [tok.SpecialId("<|vision_end|>"), tok.SpecialId("<|vision_pad|>"), .. tok.EncodeTemplate(" and say"), .. question, tok.SpecialId("<|im_end|>")];
        var prefixEmbeds = new float[prefix.Length * dim];
        lm.Embed(prefix, prefixEmbeds);
        var turn = new float[(open.Length + v + after.Length) * dim];
        lm.Embed(open, turn);
        compressor.VisualTokens.AsSpan(0, v * dim).CopyTo(turn.AsSpan(open.Length * dim));
        lm.Embed(after, turn.AsSpan((open.Length + v) * dim));
        using var empty = lm.EmptyCache();
        using var cached = lm.Forward(empty, prefixEmbeds, prefix.Length);
        using var all = lm.Forward(cached, turn, open.Length + v + after.Length);
        Assert.Equal(open.Length + v + after.Length, timings.VisualPositions);
        Assert.True(Golden.MaxAbsDiff(lm.LastLogits, logits) < 1e-5f, $"differ by {Golden.MaxAbsDiff(lm.LastLogits, logits)}");
        Directory.Delete(dir, recursive: true);
    }

    [Theory]
    [InlineData("world")]
    [InlineData("third")]
    [InlineData("chat")]
    public void AnAnswerRestartOnAnUnchangedPicture_EmbedsNothing_AndCopiesTheVisualTokensOnce(string kind)
    {
        var dir = kind switch { "world" => Repo.TinyModels, "third" => ThirdLayoutSet(), _ => HfCheckpoints.Get("siglip").Set };
        using var set = ModelSet.Load(dir, Cpu);
        var config = new AskConfig(Answer: new AnswerOptions(2, IgnoreStop: true, RepeatLimit: 0));
        var frame = new WorldSource(2_000_401, speed: 0).Render(0, 64);
        using var pipeline = new FramePipeline(set);
        pipeline.SetQuery(kind == "chat" ? "What is in this picture?" : Question);
        var first = pipeline.RunFrame(frame, config, 8, AnswerMode.Live, new StageTimings(), new FrameStats());
        Assert.True(first.AnswerDone);
        var lm = pipeline.DecoderState(config);
        long embeds = lm.PromptEmbedRuns, floats = lm.PrefillFloatsWritten;
        var timings = new StageTimings();
        var stats = new FrameStats();
        var second = pipeline.RunFrame(frame, config, 8, AnswerMode.Live, timings, stats);  // the answer finished: this frame restarts it
        Assert.True(second.AnswerRestarted);
        Assert.False(stats.VisionRan || stats.QueryPrefilled || stats.CompressorRan);
        Assert.Equal(0, lm.PromptEmbedRuns - embeds);
        Assert.Equal((long)timings.VisualPositions * lm.Spec.Dim, lm.PrefillFloatsWritten - floats);  // the visual tokens among them, once
        Assert.Equal(first.NewTokenIds, second.NewTokenIds);
        if (kind == "third") Directory.Delete(dir, recursive: true);
    }

    [Theory]
    [InlineData("""[{"special": "<|im_start|>"}]""", """[{"text": "x"}]""", "exactly one")]
    [InlineData("""[{"special": "<|nope|>"}, {"question": true}]""", "[]", "<|nope|>")]
    [InlineData("""[{"text": "a", "question": true}]""", "[]", "one of text, special or question")]
    [InlineData("""[{"text": "a"}]""", """[{"question": true}]""", "cannot be last_hidden_state")]
    public void ALayoutThatIsNotWhole_IsRefusedAtLoad(string before, string after, string fragment)
    {
        var dir = Repo.CopyTinyModels();
        var path = Path.Combine(dir, "manifest.json");
        var manifest = JsonNode.Parse(File.ReadAllText(path))!;
        manifest["prompt"]!["layout"] = JsonNode.Parse($$"""{"before_image": {{before}}, "after_image": {{after}}}""");
        File.WriteAllText(path, manifest.ToJsonString());
        var e = Assert.Throws<InferenceException>(() => ModelSet.Load(dir, Cpu));
        Assert.Contains(fragment, e.Message);
        Directory.Delete(dir, recursive: true);
    }
}
