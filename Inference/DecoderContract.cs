namespace Assistant.Inference;

/// <summary>
/// The tensor names of the decoder and embedding graphs (models/README.md), as common ONNX LLM exporters
/// write them. The one list both the set's validation and the runs use.
/// </summary>
public static class DecoderContract
{
    /// <summary>The embedding graph's input: token ids (1, T), int64.</summary>
    public const string InputIds = "input_ids";

    /// <summary>The embedding graph's output and the decoder's first input: (1, T, D).</summary>
    public const string InputsEmbeds = "inputs_embeds";

    /// <summary>The decoder's mask over past and new positions: (1, past + T) of ones.</summary>
    public const string AttentionMask = "attention_mask";

    /// <summary>The decoder's positions of the new tokens: (1, T).</summary>
    public const string PositionIds = "position_ids";

    /// <summary>The decoder's logits: (1, T, vocab).</summary>
    public const string Logits = "logits";

    /// <summary>The decoder's final-norm hidden state: (1, T, D).</summary>
    public const string LastHiddenState = "last_hidden_state";

    /// <summary>past_key_values.{i}.key, .value for i = 0..layers-1, in that order.</summary>
    public static string[] PastNames(int layers) =>
        Enumerable.Range(0, layers).SelectMany(i => new[] { $"past_key_values.{i}.key", $"past_key_values.{i}.value" }).ToArray();

    /// <summary>How many layers a decoder graph's inputs hold a past key for (past_key_values.{i}.key).</summary>
    public static int GraphLayers(IEnumerable<string> inputNames) =>
        inputNames.Count(n => n.StartsWith("past_key_values.", StringComparison.Ordinal) && n.EndsWith(".key", StringComparison.Ordinal));

    /// <summary>present.{i}.key, .value for i = 0..layers-1, in that order.</summary>
    public static string[] PresentNames(int layers) =>
        Enumerable.Range(0, layers).SelectMany(i => new[] { $"present.{i}.key", $"present.{i}.value" }).ToArray();

    /// <summary>Every input the decoder graph must have.</summary>
    public static string[] DecoderInputs(int layers) => [InputsEmbeds, AttentionMask, PositionIds, .. PastNames(layers)];

    /// <summary>Every output the decoder graph must have.</summary>
    public static string[] DecoderOutputs(int layers) => [Logits, LastHiddenState, .. PresentNames(layers)];
}
