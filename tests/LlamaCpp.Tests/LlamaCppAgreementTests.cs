using System.Text.Json;
using Assistant.Tests;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Assistant.LlamaCpp.Tests;

/// <summary>
/// The independent check of imported sets: llama.cpp (LLamaSharp 0.30.0, its CPU backend and libmtmd), given the
/// same random checkpoint as GGUF (tools/export_gguf.py), the same image and the same chat prompt, must produce
/// the engine's answer. Compared: the prompt's text tokens, the first answer step's logits (against the importer's
/// PyTorch reference, which the engine's ONNX graphs match to 1e-4 in ImportedSetTests) and 8 greedy tokens
/// against `assistant ask --compressor full --json`.
/// A SigLIP tower (no class token) runs through llama.cpp's own vision path (libmtmd: its CLIP graph, projector and
/// image preprocessing). A CLIP tower cannot: llama.cpp 0.30.0's LLaVA graph appends the class token after the
/// patches (position P) yet still gathers output rows 1..P, so it keeps the class token and drops patch 0, where
/// Hugging Face's CLIP puts it first (position 0) and LLaVA drops it. Measured on these checkpoints: its first logits
/// agree with that reading to 2e-3 and differ from the checkpoint's by 0.6. For CLIP sets llama.cpp is therefore
/// given the projected patch tokens as embeddings, and checks the decoder, the tokenizer and the prompt.
/// </summary>
[Collection("llama.cpp")]
public sealed class LlamaCppAgreementTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Steps = 8;

    /// <summary>
    /// Logit tolerance. llama.cpp's MLP projector uses tanh-approximated GELU where the checkpoint says exact GELU
    /// (|difference| &lt;= 5e-4 per activation), and its CPU kernels sum in another order; the first logits of these
    /// random models spread over about 4.5, and llama.cpp's differ from the reference by 1.7e-3 to 9.5e-3.
    /// </summary>
    private const float LogitTolerance = 2e-2f;

    public static TheoryData<string> Variants => new(HfCheckpoints.Variants.Keys);

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task LlamaCppAnswersAsTheEngineDoes(string variant)
    {
        var made = HfCheckpoints.Get(variant);
        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(made.Set, "golden", "golden.json")));
        var g = golden.RootElement;
        var image = Path.Combine(made.Set, "golden", "image.png");
        var question = g.GetProperty("query").GetString()!;
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(made.Set, "manifest.json"))).RootElement;
        var (before, open, close, after) = PromptText(manifest.GetProperty("prompt"), question);
        var full = g.GetProperty("answers").GetProperty("full");
        bool classToken = manifest.GetProperty("vision").GetProperty("class_token").GetBoolean();
        // libmtmd places a model family's image markers itself; given embeddings, llama.cpp reads them from the text.
        var reference = classToken
            ? LlamaCpp.AnswerWithEmbeddings(made.TextGguf, before + open, Golden.Floats(full.GetProperty("visual_tokens")), close + after, Steps)
            : LlamaCpp.Answer(made.TextGguf, made.MmprojGguf, image, before, after, Steps);

        // The prompt's text tokens: llama.cpp's own tokenizer on the GGUF's vocabulary against the importer's.
        Assert.Equal(Golden.Ints(g.GetProperty("prefix_ids")), reference.PrefixIds);
        Assert.Equal(Golden.Ints(g.GetProperty("question_ids")), reference.SuffixIds);

        // The first step's logits: llama.cpp against the PyTorch reference the engine is held to.
        var logits = Golden.Floats(full.GetProperty("prefill_logits"));
        Assert.Equal(logits.Length, reference.FirstLogits.Length);
        float diff = Golden.MaxAbsDiff(logits, reference.FirstLogits);
        output.WriteLine($"{variant} ({(classToken ? "embeddings" : "libmtmd vision")}): max |first logit difference| {diff:G3} over {logits.Length} logits, spread {logits.Max() - logits.Min():F1}");
        Assert.True(diff < LogitTolerance, $"{variant}: llama.cpp's first logits differ from the reference by {diff} (tolerance {LogitTolerance})");

        // The engine's answer, through the command line.
        var (code, stdout, stderr) = await Run("ask", "--models", made.Set, "--image", image, "--query", question,
            "--compressor", "full", "--max-tokens", Steps.ToString(), "--ignore-stop", "--json");
        Assert.True(code == 0, stderr);
        var ours = Golden.Ints(JsonDocument.Parse(stdout).RootElement.GetProperty("token_ids"));
        Assert.Equal(reference.Greedy, ours);
    }

    [Theory]
    [InlineData("clip-qwen2-bf16-shards")]  // byte-level BPE
    [InlineData("llava-1.5")]               // SentencePiece BPE with byte fallback
    [InlineData("smolvlm")]                 // byte-level BPE, SmolLM2's split: each digit alone, then GPT-2's
    public void LlamaCppReadsTheTokenizerAsTheEngineDoes(string variant)
    {
        // Text with spaces, digits, punctuation, a newline, accents, an emoji and a CJK character (the last three need
        // SentencePiece's byte fallback in the tiny vocabulary), through both tokenizers. llama.cpp gives text that
        // begins a prompt SentencePiece's dummy prefix, as the engine does for a fragment's start.
        var made = HfCheckpoints.Get(variant);
        const string text = "How many red circles are there? 3 or 12, left of the star.\nRead it: caf\u00e9 cr\u00e8me \U0001F642 \u732b!" +
                            " Digits after spaces:  42,   7 and x2025 y's.";
        var theirs = LlamaCpp.Tokenize(made.TextGguf, text);
        using var set = Assistant.Inference.ModelSet.Load(made.Set, new Assistant.Inference.SessionFactory(new Assistant.Inference.SessionConfig(Assistant.Inference.ExecutionProvider.Cpu)));
        Assert.Equal(set.Tokenizer.Encode(text, startsFragment: true), theirs);
        Assert.Equal(text, set.Tokenizer.Decode(theirs));
    }

    /// <summary>
    /// One user turn as text around the image: a chat set's template pieces, or a layout's pieces with the question in
    /// its place; and the layout's image markers, written as their tokens' text.
    /// </summary>
    private static (string Before, string Open, string Close, string After) PromptText(JsonElement prompt, string question)
    {
        if (prompt.TryGetProperty("chat", out var chat))
            return (chat.GetProperty("before_image").GetString()!, "", "",
                    chat.GetProperty("before_question").GetString()! + question + chat.GetProperty("after_question").GetString()!);
        var layout = prompt.GetProperty("layout");
        string Text(string key) => string.Concat(layout.GetProperty(key).EnumerateArray().Select(p =>
            p.TryGetProperty("text", out var t) ? t.GetString() : p.TryGetProperty("special", out var sp) ? sp.GetString() : question));
        string Markers(string key) => layout.TryGetProperty("image", out var image) && image.TryGetProperty(key, out var m)
            ? string.Concat(m.EnumerateArray().Select(x => x.GetString())) : "";
        return (Text("before_image"), Markers("open"), Markers("close"), Text("after_image"));
    }

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await Assistant.Ui.Cli.RunAsync(args, stdout, stderr, null);
        return (code, stdout.ToString(), stderr.ToString());
    }
}

/// <summary>llama.cpp, run on a GGUF text model and mmproj: prompt, image, first logits and a greedy answer.</summary>
internal static class LlamaCpp
{
    /// <summary>What llama.cpp made of one prompt.</summary>
    public sealed record Result(int[] PrefixIds, int[] SuffixIds, float[] FirstLogits, int[] Greedy);

    private static readonly object Quiet = Silence();

    private static object Silence()
    {
        // llama.cpp logs every load to stderr; only errors are worth a test's output.
        NativeLogConfig.llama_log_set((level, message) =>
        {
            if (level == LLamaLogLevel.Error) Console.Error.Write(message);
        });
        return new object();
    }

    /// <summary>
    /// [text before the image][the given visual embeddings][text after it] into llama.cpp's decoder, the text tokenized
    /// by llama.cpp itself (special tokens parsed, no BOS), then greedy decoding.
    /// </summary>
    public static Result AnswerWithEmbeddings(string textModel, string beforeImage, float[] visual, string afterImage, int steps)
    {
        _ = Quiet;
        var parameters = new ModelParams(textModel) { ContextSize = 1024, GpuLayerCount = 0, BatchSize = 512, Threads = 2 };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var prefix = weights.Tokenize(beforeImage, false, true, System.Text.Encoding.UTF8).Select(t => (int)t).ToArray();
        var suffix = weights.Tokenize(afterImage, false, true, System.Text.Encoding.UTF8).Select(t => (int)t).ToArray();
        int dim = context.EmbeddingSize, past = 0;
        var batch = new LLamaBatch();
        foreach (var id in prefix) batch.Add((LLamaToken)id, past++, (LLamaSeqId)0, false);
        if (context.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed");
        var embeddings = new LLamaBatchEmbeddings(dim);
        for (int i = 0; i < visual.Length / dim; i++)
            embeddings.Add(visual.AsSpan(i * dim, dim), past++, (LLamaSeqId)0, false);
        if (context.Decode(embeddings) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp embedding decode failed");
        return Continue(context, prefix, suffix, past, steps);
    }

    public static Result Answer(string textModel, string mmproj, string image, string beforeImage, string afterImage, int steps)
    {
        _ = Quiet;
        var parameters = new ModelParams(textModel) { ContextSize = 1024, GpuLayerCount = 0, BatchSize = 512, Threads = 2 };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var mtmdParams = MtmdContextParams.Default();
        mtmdParams.UseGpu = false;
        mtmdParams.NThreads = 2;
        using var mtmd = MtmdWeights.LoadFromFile(mmproj, weights, mtmdParams);
        using var media = mtmd.LoadMedia(image);
        var marker = mtmdParams.MediaMarker ?? NativeApi.MtmdDefaultMarker() ?? "<__media__>";
        int status = mtmd.Tokenize(beforeImage + marker + afterImage, false, true, out var chunks);
        if (status != 0) throw new InvalidOperationException($"mtmd tokenize failed ({status})");
        using (chunks)
        {
            // [text before the image][image][text after it], each chunk evaluated by llama.cpp. LLamaSharp 0.30.0 hands
            // mtmd_tokenize the string's terminating NUL, which comes back as a last token 0 (byte 0x00) on the final
            // text chunk; that one token is dropped, and the chunk's other tokens are fed as a batch.
            // A family's image markers (Idefics3's <fake_token_around_image><global-img> ... <fake_token_around_image>)
            // are text chunks of their own or part of the text chunks next to the image: the tokens before the image
            // chunk are the prefix, those after it the suffix, whatever the chunking.
            var list = chunks!.Enumerate().ToList();
            int at = list.FindIndex(c => c.Type == SafeMtmdInputChunk.SafeMtmdInputChunkType.Image);
            if (at < 1 || list.Count(c => c.Type == SafeMtmdInputChunk.SafeMtmdInputChunkType.Image) != 1 || list[^1].Type == SafeMtmdInputChunk.SafeMtmdInputChunkType.Image)
                throw new InvalidOperationException($"mtmd made {list.Count} chunks of the prompt, not [text][image][text]");
            int[] Tokens(IEnumerable<SafeMtmdInputChunk> part) => [.. part.SelectMany(c => c.GetTextTokensSpan().ToArray().Select(t => (int)t))];
            // This llama.cpp puts a "\n\n" token before Idefics3's global image, as Hugging Face's processor does only
            // when the picture is also split into tiles; the tiny vocabulary has no such token, so llama.cpp leaves -1
            // in its place. The text chunks before the image are therefore fed as batches here, without it (the
            // image chunk is still libmtmd's: its preprocessing, tower and connector).
            var prefix = Tokens(list.Take(at)).Where(t => t >= 0).ToArray();
            var between = Tokens(list.Skip(at + 1).Take(list.Count - at - 2));
            var last = Tokens(list.Skip(list.Count - 1));
            if (last is [.., 0]) last = last[..^1];
            int past = 0;
            var batch = new LLamaBatch();
            foreach (var id in prefix) batch.Add((LLamaToken)id, past++, (LLamaSeqId)0, false);
            if (context.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed");
            for (int i = at; i < list.Count - 1; i++)
            {
                status = mtmd.NativeHandle.EvaluateChunk(chunks.GetChunkPtr((ulong)i), context.NativeHandle, ref past, 0, 512, false);
                if (status != 0) throw new InvalidOperationException($"mtmd evaluate failed ({status}) on chunk {i} of {list.Count}");
            }
            var result = Continue(context, prefix, last, past, steps);
            return result with { SuffixIds = [.. between, .. last] };
        }
    }

    /// <summary>Feeds the text after the image, then decodes <paramref name="steps"/> greedy tokens.</summary>
    private static Result Continue(LLamaContext context, int[] prefix, int[] suffix, int past, int steps)
    {
        var batch = new LLamaBatch();
        for (int i = 0; i < suffix.Length; i++)
            batch.Add((LLamaToken)suffix[i], past++, (LLamaSeqId)0, i == suffix.Length - 1);
        if (context.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed");
        var first = context.NativeHandle.GetLogitsIth(suffix.Length - 1).ToArray();
        var greedy = new List<int>();
        var logits = first;
        for (int i = 0; i < steps; i++)
        {
            int next = ArgMax(logits);
            greedy.Add(next);
            batch.Clear();
            batch.Add((LLamaToken)next, past++, (LLamaSeqId)0, true);
            if (context.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed");
            logits = context.NativeHandle.GetLogitsIth(0).ToArray();
        }
        return new Result(prefix, suffix, first, [.. greedy]);
    }

    public static int[] Tokenize(string textModel, string text)
    {
        _ = Quiet;
        var parameters = new ModelParams(textModel) { ContextSize = 256, GpuLayerCount = 0 };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        return weights.Tokenize(text, false, false, System.Text.Encoding.UTF8).Select(t => (int)t).ToArray();
    }

    private static int ArgMax(float[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }
}
