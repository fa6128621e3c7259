using System.Runtime.CompilerServices;

namespace Assistant.Inference;

/// <summary>Limits of one answer.</summary>
public sealed record GenerationOptions(int MaxNewTokens = 32, SamplingOptions? Sampling = null, IReadOnlyCollection<int>? StopTokens = null)
{
    public static GenerationOptions Default { get; } = new();
}

/// <summary>One generated token and the text it completes (may be empty mid-character, or for a special token).</summary>
public readonly record struct GeneratedToken(int Id, string Text);

/// <summary>
/// Autoregressive decoding on a KV cache: each step feeds only the newest token, never the whole
/// sequence again. The cache passed in is not consumed: the caller still owns it (so a query prefix
/// can be reused); caches made along the way are owned and freed here.
/// </summary>
public static class Generator
{
    /// <summary>
    /// Streams tokens that follow <paramref name="prefix"/>, whose last run left its logits in
    /// <see cref="LanguageModel.LastLogits"/>. Stops at a stop token (not yielded), at the length limit,
    /// or on cancellation (between steps).
    /// </summary>
    public static async IAsyncEnumerable<GeneratedToken> GenerateAsync(LanguageModel model, TextTokenizer tokenizer, KvCache prefix,
        GenerationOptions options, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        if (options.MaxNewTokens < 0) throw new InferenceException($"max tokens must be >= 0, got {options.MaxNewTokens}");
        var sampler = new Sampler(options.Sampling ?? SamplingOptions.Greedy);
        var stop = options.StopTokens ?? [];
        var text = tokenizer.CreateStream();
        var embedding = new float[model.Spec.Dim];
        KvCache? cache = null;
        try
        {
            for (int produced = 0; produced < options.MaxNewTokens; produced++)
            {
                cancellation.ThrowIfCancellationRequested();
                int id = sampler.Next(model.LastLogits);
                if (stop.Contains(id)) yield break;
                yield return new GeneratedToken(id, text.Push(id));
                if (produced + 1 == options.MaxNewTokens) yield break;  // the last token needs no forward pass
                await Task.Yield();  // let a consumer print or cancel between steps
                cancellation.ThrowIfCancellationRequested();
                model.Embed([id], embedding);
                var next = model.Forward(cache ?? prefix, embedding, 1);
                cache?.Dispose();
                cache = next;
            }
        }
        finally
        {
            cache?.Dispose();
        }
    }
}
