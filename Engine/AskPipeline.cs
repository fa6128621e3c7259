using System.Diagnostics;
using System.Runtime.CompilerServices;
using Assistant.Capture;
using Assistant.Inference;
using Assistant.Shaders;

namespace Assistant.Engine;

/// <summary>What to run for one ask: which decoder, which compressor and how many visual tokens.</summary>
public sealed record AskConfig(string? Decoder = null, string? Compressor = null, int? Tokens = null, GenerationOptions? Generation = null)
{
    public static AskConfig Default { get; } = new();

    /// <summary>Longest query accepted, in characters: longer text is almost surely not a question.</summary>
    public const int MaxQueryChars = 2000;
}

/// <summary>
/// One picture and one question in, a streamed answer out: preprocess, vision encoder, query prefill
/// (which yields the query's KV cache and QueCC's query embedding), compressor, visual prefill on top of
/// the query cache, then decoding. Prompt order is [query][visual tokens][answer] (models/README.md).
/// Holds no state between asks except reused buffers; not thread-safe.
/// </summary>
public sealed class AskPipeline(ModelSet models)
{
    public ModelSet Models { get; } = models;

    /// <summary>The (decoder, compressor, V) that <paramref name="config"/> resolves to on this set.</summary>
    public (LanguageModel Decoder, Compressor Compressor) Resolve(AskConfig config)
    {
        var d = Models.Manifest.Default;
        var decoder = Models.Decoder(config.Decoder ?? d.Decoder);
        return (decoder, decoder.Compressor(config.Compressor ?? d.Compressor, config.Tokens ?? d.Tokens));
    }

    /// <summary>Checks a query before any model runs: not empty, not absurdly long.</summary>
    public static string ValidateQuery(string? query)
    {
        var q = query?.Trim() ?? "";
        if (q.Length == 0) throw new EngineException("the query is empty: ask a question, e.g. --query \"what color is the square?\"");
        if (q.Length > AskConfig.MaxQueryChars)
            throw new EngineException($"the query is {q.Length} characters; the limit is {AskConfig.MaxQueryChars}");
        return q;
    }

    /// <summary>
    /// Streams the answer's tokens. <paramref name="timings"/> is filled as stages finish and is complete
    /// when the enumeration ends. Cancellation stops between decoder steps.
    /// </summary>
    public async IAsyncEnumerable<GeneratedToken> AskAsync(Frame image, string query, AskConfig config, StageTimings timings,
        [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        query = WorldQuery.Normalize(ValidateQuery(query), Models.Manifest.World);
        var (lm, compressor) = Resolve(config);
        var vision = Models.Vision;
        var tok = Models.Tokenizer;
        var prompt = Models.Manifest.Prompt;

        long t = Stopwatch.GetTimestamp();
        var vs = vision.Spec;
        Preprocess.ResizeNormalize(image.Rgb, image.Width, image.Height, vs.ImageSize,
            vs.Mean.ToArray(), vs.Std.ToArray(), vision.PixelBuffer);
        timings.Add(Stage.Preprocess, t);

        t = Stopwatch.GetTimestamp();
        vision.Encode();
        timings.Add(Stage.Vision, t);

        t = Stopwatch.GetTimestamp();
        int[] queryIds = [tok.SpecialId(prompt.QueryStart), .. tok.Encode(query)];
        var embeds = new float[Math.Max(queryIds.Length, compressor.Tokens + 2) * lm.Spec.Dim];
        lm.Embed(queryIds, embeds);
        using var empty = lm.EmptyCache();
        using var queryCache = lm.Forward(empty, embeds, queryIds.Length);
        var queryEmbedding = lm.LastHidden.ToArray();  // the last query token's final hidden state
        timings.QueryTokens = queryIds.Length;
        timings.Add(Stage.QueryPrefill, t);

        t = Stopwatch.GetTimestamp();
        compressor.Compress(vision.Features, vision.FeaturesMulti, vs.Patches, queryEmbedding);
        timings.Add(Stage.Compress, t);

        t = Stopwatch.GetTimestamp();
        int d = lm.Spec.Dim, v = compressor.Tokens;
        lm.Embed([tok.SpecialId(prompt.VisionStart)], embeds.AsSpan(0, d));
        compressor.VisualTokens.AsSpan(0, v * d).CopyTo(embeds.AsSpan(d));
        lm.Embed([tok.SpecialId(prompt.VisionEnd)], embeds.AsSpan((v + 1) * d, d));
        using var visualCache = lm.Forward(queryCache, embeds, v + 2);
        timings.VisualPositions = v + 2;
        timings.Add(Stage.VisualPrefill, t);

        var generation = config.Generation ?? GenerationOptions.Default;
        if (generation.StopTokens is null)
            generation = generation with { StopTokens = prompt.Stop.Select(tok.SpecialId).ToArray() };
        t = Stopwatch.GetTimestamp();
        await foreach (var token in Generator.GenerateAsync(lm, tok, visualCache, generation, cancellation))
        {
            timings.DecodedTokens++;
            timings.Add(Stage.Decode, t);
            yield return token;
            t = Stopwatch.GetTimestamp();  // time spent by the consumer is not decode time
        }
        timings.Add(Stage.Decode, t);
    }
}
