using System.Runtime.CompilerServices;
using Assistant.Capture;
using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>
/// One picture and one question in, a streamed answer out: a <see cref="FramePipeline"/> used for a single frame
/// (preprocess, vision encoder, query prefill yielding the query's KV cache and QueCC's query embedding,
/// compressor, visual prefill on top of the query cache, decoding). Prompt order is [query][visual][answer].
/// </summary>
public sealed class AskPipeline
{
    /// <summary>A pipeline over a set loaded for the command line.</summary>
    public AskPipeline(LoadedModels models) : this(models.Set)
    {
    }

    internal AskPipeline(ModelSet models) => Models = models;

    /// <summary>The set it answers with.</summary>
    internal ModelSet Models { get; }

    /// <summary>Checks a question as <see cref="FramePipeline.SetQuery"/> will (not empty, not too long, every word known to a world-trained set), before any frame.</summary>
    public string CheckQuery(string? query) => WorldQuery.Normalize(ValidateQuery(query), Models.Manifest.World);

    /// <summary>What <paramref name="config"/> names on this set, the manifest's default filling the gaps; an <see cref="InferenceException"/> for a decoder, compressor or V it lacks.</summary>
    public ModelChoice Resolve(AskConfig config) => config.Choice(Models);

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
    public IAsyncEnumerable<AnswerToken> AskAsync(FramePicture image, string query, AskConfig config, StageTimings timings,
        CancellationToken cancellation = default) => AskAsync(image.Frame, query, config, timings, cancellation);

    /// <summary>The same, on a captured frame.</summary>
    internal async IAsyncEnumerable<AnswerToken> AskAsync(Frame image, string query, AskConfig config, StageTimings timings,
        [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        using var loop = new FramePipeline(Models);
        loop.SetQuery(query);
        Resolve(config);  // an unknown decoder or V fails before any model runs
        await foreach (var token in loop.AnswerAsync(image, config, timings, new FrameStats(), cancellation))
            yield return token;
    }
}
