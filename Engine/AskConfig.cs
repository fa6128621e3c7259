using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>
/// How an answer is decoded: at most <paramref name="MaxTokens"/> tokens, greedy at temperature 0 or sampled
/// (top-p, seeded). <paramref name="IgnoreStop"/> decodes past the set's stop tokens and word limit (for
/// tests and benchmarks that need answers of a known length); <paramref name="RepeatLimit"/> ends an answer
/// that repeats one n-gram that many times in a row (0: never).
/// </summary>
public sealed record AnswerOptions(
    [property: System.Text.Json.Serialization.JsonPropertyName("max_tokens")] int MaxTokens = 32,
    [property: System.Text.Json.Serialization.JsonPropertyName("temperature")] double Temperature = 0,
    [property: System.Text.Json.Serialization.JsonPropertyName("top_p")] double TopP = 1,
    [property: System.Text.Json.Serialization.JsonPropertyName("seed")] int Seed = 0,
    [property: System.Text.Json.Serialization.JsonPropertyName("ignore_stop")] bool IgnoreStop = false,
    [property: System.Text.Json.Serialization.JsonPropertyName("repeat_limit")] int RepeatLimit = 4)
{
    /// <summary>32 tokens, greedy, stopping where the set says.</summary>
    public static AnswerOptions Default { get; } = new();

    /// <summary>Checks the limits and the sampling; the first bad one is an <see cref="EngineException"/> naming its option.</summary>
    public AnswerOptions Validate()
    {
        if (MaxTokens is < 1 or > 4096) throw new EngineException($"--max-tokens must be in 1..4096, got {MaxTokens}");
        if (!(Temperature >= 0) || double.IsInfinity(Temperature)) throw new EngineException($"temperature must be >= 0, got {Temperature}");
        if (!(TopP > 0 && TopP <= 1)) throw new EngineException($"top-p must be in (0, 1], got {TopP}");
        if (RepeatLimit is < 0 or 1) throw new EngineException($"the repetition limit must be 0 (off) or at least 2, got {RepeatLimit}");
        return this;
    }

    /// <summary>The inference layer's options for <paramref name="models"/>: its stop tokens, its word limit and the tokens that are whole words.</summary>
    internal GenerationOptions ToGeneration(ModelSet models)
    {
        var prompt = models.Manifest.Prompt;
        var tok = models.Tokenizer;
        return new GenerationOptions(MaxTokens, new SamplingOptions((float)Temperature, (float)TopP, Seed),
            IgnoreStop ? [] : prompt.Stop.Select(tok.SpecialId).ToArray(),
            IgnoreStop ? null : prompt.AnswerWords, IgnoreStop ? null : WholeWords(models), RepeatLimit);
    }

    /// <summary>The world's answers that are one token each: a word by themselves when the set counts answer words.</summary>
    private static HashSet<int>? WholeWords(ModelSet models)
    {
        if (models.Manifest.World is not { } world) return null;
        var ids = new HashSet<int>();
        foreach (var answer in world.Answers)
            if (models.Tokenizer.Encode(answer) is [var id]) ids.Add(id);
        return ids;
    }
}

/// <summary>
/// What to run for one ask: which decoder, which compressor and how many visual tokens (each null: the manifest's
/// default), and how to decode. A request with gaps; <see cref="Choice"/> is the <see cref="ModelChoice"/> it names on a set.
/// </summary>
public sealed record AskConfig(string? Decoder = null, string? Compressor = null, int? Tokens = null, AnswerOptions? Answer = null)
{
    /// <summary>A request for exactly <paramref name="choice"/>.</summary>
    public static AskConfig For(ModelChoice choice, AnswerOptions? answer = null) => new(choice.Decoder, choice.Compressor, choice.Tokens, answer);

    /// <summary>The configuration this request names on <paramref name="models"/>; an <see cref="InferenceException"/> for a decoder, compressor or V it lacks.</summary>
    internal ModelChoice Choice(ModelSet models)
    {
        var (lm, comp) = Resolve(models);
        return new ModelChoice(lm.Spec.Name, comp.Spec.Kind, comp.Tokens);
    }

    /// <summary>The manifest's default configuration, 32 answer tokens at most.</summary>
    public static AskConfig Default { get; } = new();

    /// <summary>Longest query accepted, in characters: longer text is almost surely not a question.</summary>
    public const int MaxQueryChars = 2000;

    /// <summary>The V of <paramref name="offered"/> nearest <paramref name="wanted"/> by ratio (the smaller of two as near).</summary>
    internal static int Nearest(IReadOnlyList<int> offered, int wanted) =>
        offered.OrderBy(v => Math.Abs(Math.Log((double)v / wanted))).ThenBy(v => v).First();

    /// <summary>The (decoder, compressor, V) this configuration names on <paramref name="models"/>, the manifest's default filling the gaps.</summary>
    internal (LanguageModel Decoder, Compressor Compressor) Resolve(ModelSet models)
    {
        var d = models.Manifest.Default;
        var decoder = models.Decoder(Decoder ?? d.Decoder);
        var kind = Compressor ?? d.Compressor;
        // Another compressor than the default, with no V asked for: that compressor's own V nearest the default
        // (the default itself where it has it; an imported set's `full` has only the patch count), so a V that only
        // the default compressor offers is never applied to another.
        int tokens = Tokens ?? (kind != d.Compressor && decoder.Spec.Compressors.FirstOrDefault(c => c.Kind == kind) is { Tokens.Count: > 0 } other
            ? Nearest(other.Tokens, d.Tokens)
            : d.Tokens);
        return (decoder, decoder.Compressor(kind, tokens));
    }
}
