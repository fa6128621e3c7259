using System.Text.Json.Nodes;
using Assistant.Capture;
using Assistant.Capture.World;
using Assistant.Inference;
using Assistant.Tests;

namespace Assistant.Engine.Tests;

/// <summary>
/// The paper's query embedding (<see cref="PromptSpec.QuestionHiddenState"/>): a compressor whose manifest entry asks
/// for it is given the decoder's run on the question's own tokens alone, made once per question and decoder and reused
/// across frames, counted by the FLOPs model, and refused where the manifest names a query embedding this build does
/// not compute. Its agreement with PyTorch is held by the golden check of a distilled set (DistillCliTests).
/// </summary>
public sealed class QuestionHiddenStateTests
{
    private static readonly SessionFactory Cpu = new(new SessionConfig(ExecutionProvider.Cpu));
    private const string Question = "how many red circles are there?";

    /// <summary>The tiny world set with its quecc compressor given <paramref name="queryEmbedding"/>.</summary>
    private static string TinySetWith(string queryEmbedding, Action<JsonNode>? change = null)
    {
        var dir = Repo.CopyTinyModels();
        var path = Path.Combine(dir, "manifest.json");
        var manifest = JsonNode.Parse(File.ReadAllText(path))!;
        foreach (var c in manifest["decoders"]![0]!["compressors"]!.AsArray())
            if ((string?)c!["kind"] == "quecc") c["query_embedding"] = queryEmbedding;
        change?.Invoke(manifest);
        File.WriteAllText(path, manifest.ToJsonString());
        return dir;
    }

    private static void Show(Conversation conversation, Frame frame)
    {
        var vision = conversation.Vision;
        var vs = vision.Spec;
        Shaders.Preprocess.ResizeNormalize(frame.Rgb, frame.Width, frame.Height, vs.ImageSize, [.. vs.Mean], [.. vs.Std], vision.PixelBuffer, vs.Crop == "center");
        conversation.PictureChanged();
    }

    /// <summary>The decoder on <paramref name="ids"/> from an empty cache, assembled from its parts: the last hidden state.</summary>
    private static float[] ByHand(DecoderState lm, int[] ids)
    {
        var embeds = new float[ids.Length * lm.Spec.Dim];
        lm.Embed(ids, embeds);
        using var empty = lm.EmptyCache();
        using var _ = lm.Forward(empty, embeds, ids.Length);
        return lm.LastHidden.ToArray();
    }

    [Fact]
    public void TheQuestionsOwnPass_IsTheDecoderOnItsTokensAlone_MadeOncePerQuestionAndReusedAcrossFrames()
    {
        var dir = TinySetWith(PromptSpec.QuestionHiddenState);
        try
        {
            using var set = ModelSet.Load(dir, Cpu);
            var (model, comp) = new AskConfig(Compressor: "quecc", Tokens: 4).Resolve(set);
                        using var conversation = new Conversation(set);
            conversation.SetQuestion(Question);
            Show(conversation, new WorldSource(3_100_200, speed: 0).Render(0, 64));
            var first = conversation.Prepare(model, comp);
            Assert.True(first.QuestionPrepared && first.CompressorRan);

            using var lease = set.Lease();
            var lm = lease.Decoder(model);
            var tok = set.Tokenizer;
            // The world layout is [query_start question]: the question's own ids are its plain BPE, without query_start.
            var ids = tok.Encode(Question).ToArray();
            Assert.Equal(ids, set.Layout.QuestionIds(tok, Question));
            var expected = ByHand(lm, ids);
            Assert.True(Golden.MaxAbsDiff(expected, conversation.QueryEmbedding) < 1e-5f);
            // ... which is not the layout's own query embedding, the hidden state after [query_start question].
            var afterStart = ByHand(lm, [tok.SpecialId("<|im_start|>"), .. ids]);
            Assert.True(Golden.MaxAbsDiff(afterStart, conversation.QueryEmbedding) > 1e-3f);
            // The compressor was given it.
            var vision = lease.Vision;
            conversation.Vision.PixelBuffer.CopyTo(vision.PixelBuffer);
            vision.Encode();
            var state = lease.Compressor(comp);
            state.Compress(vision.Features, vision.FeaturesMulti, vision.Spec.Patches, expected);
            Assert.True(Golden.MaxAbsDiff(state.VisualTokens, first.Compressor.VisualTokens) < 1e-5f);

            // A new picture: the compressor runs again, the question's pass does not.
            var embedding = conversation.QueryEmbedding;
            Show(conversation, new WorldSource(3_100_201, speed: 0).Render(0, 64));
            var second = conversation.Prepare(model, comp);
            Assert.True(second.VisionRan && second.CompressorRan);
            Assert.False(second.QuestionPrepared);
            Assert.Same(embedding, conversation.QueryEmbedding);
            Assert.Equal(1, conversation.Runs.Questions);

            // The query-agnostic compressor in between leaves it cached; a new question makes it again.
            conversation.Prepare(model, model.Compressor("tokenpacker", 4));
            Assert.False(conversation.Prepare(model, comp).QuestionPrepared);
            conversation.SetQuestion("what color is the square?");
            var third = conversation.Prepare(model, comp);
            Assert.True(third.QuestionPrepared);
            Assert.True(Golden.MaxAbsDiff(ByHand(lm, tok.Encode("what color is the square?").ToArray()), conversation.QueryEmbedding) < 1e-5f);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void TheFlopsModel_CountsTheQuestionsPass_OncePerQuestion_NotPerFrame()
    {
        var dir = TinySetWith(PromptSpec.QuestionHiddenState);
        try
        {
            var withPass = Manifest.Read(dir);
            var plain = Manifest.Read(Repo.TinyModels);
            var d = withPass.Decoders[0];
            const int q = 9;
            var a = FlopsModel.Ask(withPass, d, d.Compressors.Single(c => c.Kind == "quecc"), 4, q, 3);
            var b = FlopsModel.Ask(plain, plain.Decoders[0], plain.Decoders[0].Compressors.Single(c => c.Kind == "quecc"), 4, q, 3);
            Assert.Equal(b.QueryPrefill + FlopsModel.DecoderRun(d, q, 0), a.QueryPrefill, 6);
            Assert.Equal(b.PerFrameCachedQuery, a.PerFrameCachedQuery, 6);
            var t = FlopsModel.Ask(withPass, d, d.Compressors.Single(c => c.Kind == "tokenpacker"), 4, q, 3);
            Assert.Equal(b.QueryPrefill, t.QueryPrefill, 6);  // a query-agnostic compressor needs no question pass
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("the_question_backwards", false, "is not one this build computes")]
    [InlineData(PromptSpec.LastHiddenState, true, "cannot be last_hidden_state")]
    public void AQueryEmbeddingThisBuildDoesNotCompute_IsRefusedAtLoad(string kind, bool questionAfterImage, string fragment)
    {
        var dir = TinySetWith(kind, m =>
        {
            if (!questionAfterImage) return;
            m["prompt"]!["query_embedding"] = PromptSpec.QuestionEmbeddingMean;
            m["prompt"]!["layout"] = JsonNode.Parse("""
                {"before_image": [{"special": "<|im_start|>"}], "image": {"open": ["<|vision_start|>"], "close": ["<|vision_end|>"]},
                 "after_image": [{"question": true}]}
                """);
        });
        try
        {
            var e = Assert.Throws<InferenceException>(() => ModelSet.Load(dir, Cpu));
            Assert.Contains("compressor quecc of decoder-d64-l2", e.Message);
            Assert.Contains(fragment, e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
