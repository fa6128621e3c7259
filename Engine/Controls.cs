using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Assistant.Engine;

/// <summary>
/// "auto" (the planner chooses, else the manifest's default) or a count of visual tokens: how a control or a flag
/// names V. Written as text, <c>"auto"</c> or digits; read from that text or from a JSON number.
/// </summary>
[JsonConverter(typeof(TokenChoiceJson))]
public readonly record struct TokenChoice(int? Count)
{
    /// <summary>The planner chooses.</summary>
    public static TokenChoice Auto => new(null);

    /// <summary><paramref name="text"/> as a choice: "auto" or a count of 1..65,536 in plain digits; anything else is one <see cref="EngineException"/> line.</summary>
    public static TokenChoice Parse(string text) =>
        text == "auto" ? Auto
        : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v is >= 1 and <= 65536 ? new(v)
        : throw new EngineException($"tokens must be a count or auto, got '{TerminalText.Printable(text.Length > 40 ? text[..40] + "..." : text)}'");

    /// <inheritdoc/>
    public override string ToString() => Count?.ToString(CultureInfo.InvariantCulture) ?? "auto";
}

/// <summary>Reads and writes a <see cref="TokenChoice"/> as its text.</summary>
internal sealed class TokenChoiceJson : JsonConverter<TokenChoice>
{
    public override TokenChoice Read(ref Utf8JsonReader reader, Type type, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Number)
            return reader.TryGetInt32(out var n) && n is >= 1 and <= 65536 ? new TokenChoice(n) : throw new JsonException("tokens must be a count of 1..65536 or auto");
        if (reader.TokenType != JsonTokenType.String) throw new JsonException("tokens must be a count or auto");
        try
        {
            return TokenChoice.Parse(reader.GetString()!);
        }
        catch (EngineException e)
        {
            throw new JsonException(e.Message);
        }
    }

    public override void Write(Utf8JsonWriter writer, TokenChoice value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}

/// <summary>The answer modes' one spelling, for flags, controls and reports.</summary>
public static class AnswerModes
{
    /// <summary>"live" or "snapshot"; anything else is one <see cref="EngineException"/> line naming <paramref name="what"/>.</summary>
    public static AnswerMode Parse(string text, string what = "mode") => text switch
    {
        "live" => AnswerMode.Live,
        "snapshot" => AnswerMode.Snapshot,
        _ => throw new EngineException($"{what} must be live or snapshot, got '{TerminalText.Printable(text.Length > 40 ? text[..40] + "..." : text)}'"),
    };

    /// <summary>The mode's name as <see cref="Parse"/> reads it.</summary>
    public static string Name(AnswerMode mode) => mode == AnswerMode.Snapshot ? "snapshot" : "live";
}

/// <summary>Reads and writes an <see cref="AnswerMode"/> as "live" or "snapshot".</summary>
internal sealed class AnswerModeJson : JsonConverter<AnswerMode>
{
    public override AnswerMode Read(ref Utf8JsonReader reader, Type type, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String) throw new JsonException("mode must be live or snapshot");
        try
        {
            return AnswerModes.Parse(reader.GetString()!);
        }
        catch (EngineException)
        {
            throw new JsonException("mode must be live or snapshot");
        }
    }

    public override void Write(Utf8JsonWriter writer, AnswerMode value, JsonSerializerOptions options) => writer.WriteStringValue(AnswerModes.Name(value));
}

/// <summary>
/// The one control type: a change posted to a running session by the overlay, an API caller or a test; only the
/// fields given change. Its JSON is the overlay's control request (<c>POST /api/control</c>). <c>Decoder</c> "auto" or
/// <see cref="TokenChoice.Auto"/> hands the choice back to the planner; a latency of 0 removes the budget. Values are
/// typed when read, and <see cref="Check"/> holds the ranges: a new control is a field here, one in
/// <see cref="SessionControls"/>, and its application in <c>LiveSession.ApplyControls</c>.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record ControlChange(
    [property: JsonPropertyName("latency_ms")] double? LatencyMs = null,
    [property: JsonPropertyName("decoder")] string? Decoder = null,
    [property: JsonPropertyName("tokens")] TokenChoice? Tokens = null,
    [property: JsonPropertyName("mode"), JsonConverter(typeof(AnswerModeJson))] AnswerMode? Mode = null,
    [property: JsonPropertyName("paused")] bool? Paused = null,
    [property: JsonPropertyName("query")] string? Query = null)
{
    /// <summary>Longest latency budget a control may set, ms.</summary>
    public const double MaxLatencyMs = 60_000;

    /// <summary>This change if its values are in range; else one <see cref="EngineException"/> line saying which is not.</summary>
    public ControlChange Check()
    {
        if (LatencyMs is { } l && !(l >= 0 && l <= MaxLatencyMs)) throw new EngineException($"latency_ms must be in 0..{MaxLatencyMs:G} (0: no budget)");
        if (Query is { Length: > AskConfig.MaxQueryChars }) throw new EngineException("query too long");
        if (Decoder is { Length: 0 or > 200 }) throw new EngineException("decoder must be a decoder's name or auto");
        return this;
    }
}
