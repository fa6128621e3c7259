using System.Runtime.CompilerServices;
using Assistant.Capture;
using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>What to run for one ask: which decoder, which compressor and how many visual tokens.</summary>
public sealed record AskConfig(string? Decoder = null, string? Compressor = null, int? Tokens = null, GenerationOptions? Generation = null)
{
    public static AskConfig Default { get; } = new();

    /// <summary>Longest query accepted, in characters: longer text is almost surely not a question.</summary>
    public const int MaxQueryChars = 2000;

    /// <summary>The (decoder, compressor, V) this configuration names on <paramref name="models"/>, the manifest's default filling the gaps.</summary>
    public (LanguageModel Decoder, Compressor Compressor) Resolve(ModelSet models)
    {
        var d = models.Manifest.Default;
        var decoder = models.Decoder(Decoder ?? d.Decoder);
        return (decoder, decoder.Compressor(Compressor ?? d.Compressor, Tokens ?? d.Tokens));
    }
}

/// <summary>
/// One picture and one question in, a streamed answer out: a <see cref="FrameLoop"/> used for a single frame
/// (preprocess, vision encoder, query prefill yielding the query's KV cache and QueCC's query embedding,
/// compressor, visual prefill on top of the query cache, decoding). Prompt order is [query][visual][answer].
/// </summary>
public sealed class AskPipeline(ModelSet models)
{
    public ModelSet Models { get; } = models;

    /// <summary>The (decoder, compressor, V) that <paramref name="config"/> resolves to on this set.</summary>
    public (LanguageModel Decoder, Compressor Compressor) Resolve(AskConfig config) => config.Resolve(Models);

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
        using var loop = new FrameLoop(Models);
        loop.SetQuery(query);
        Resolve(config);  // an unknown decoder or V fails before any model runs
        await foreach (var token in loop.AnswerAsync(image, config, timings, new FrameStats(), cancellation))
            yield return token;
    }
}
