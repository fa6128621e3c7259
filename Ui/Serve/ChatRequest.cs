using System.Text.Json;
using Assistant.Engine;

namespace Assistant.Ui.Serve;

/// <summary>A request the API refuses: its HTTP status, OpenAI's error type and code, and a one-line message.</summary>
internal sealed class ApiException(int status, string message, string type = "invalid_request_error", string? code = null, string? param = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Code { get; } = code;
    public string? Param { get; } = param;
}

/// <summary>Where a request's picture comes from: its encoded bytes and a name for errors.</summary>
internal sealed record RequestImage(byte[] Bytes, string Name);

/// <summary>
/// One chat-completions request, read from OpenAI's JSON shape and checked: the last user turn's text is the question,
/// the last picture in the conversation is what it asks about (one turn: earlier text is not part of the prompt, as
/// this engine's prompt is one [picture, question] turn). This engine's own choices come in an extra object,
/// <c>"assistant": {"decoder", "compressor", "tokens", "latency_ms", "ignore_stop", "route"}</c> (ignore_stop: decode all
/// max_tokens, as <c>ask --ignore-stop</c>; route: auto, visual or ocr, as <c>ask --route</c>). Fields it does not use are ignored, as
/// OpenAI's clients send many; a field it uses with a bad value is a 400 naming it.
/// </summary>
internal sealed record ChatRequest(
    string Question, string? ImageUrl, AnswerOptions Answer, bool Stream, bool IncludeUsage, IReadOnlyList<string> Stop,
    string? Decoder, string? Compressor, int? Tokens, double? LatencyMs, string Route = "auto")
{
    /// <summary>The answer length when a request names none (as <c>assistant ask</c>).</summary>
    public const int DefaultMaxTokens = 32;

    public static ChatRequest Parse(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Bad("the request body must be a JSON object");
        if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
            throw Bad("'messages' must be a non-empty array of messages", "messages");
        if (messages.GetArrayLength() > 1024) throw Bad("'messages' has more than 1024 messages", "messages");
        string? question = null;
        string? image = null;
        foreach (var m in messages.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                throw Bad("each message must be an object with a 'role'", "messages");
            if (role.GetString() != "user") continue;
            var (text, picture) = Content(m);
            question = text;
            image = picture ?? image;
        }
        if (question is null) throw Bad("the messages have no user turn: the question is the last user message's text", "messages");
        if (question.Trim().Length == 0) throw Bad("the last user message has no text: ask a question about the picture", "messages");
        int max = Int(root, "max_completion_tokens") ?? Int(root, "max_tokens") ?? DefaultMaxTokens;
        if (max is < 1 or > 4096) throw Bad($"max_tokens must be in 1..4096, got {max}", "max_tokens");
        double temperature = Number(root, "temperature") ?? 0;
        if (temperature is < 0 or > 2) throw Bad($"temperature must be in 0..2, got {temperature}", "temperature");
        double topP = Number(root, "top_p") ?? 1;
        if (!(topP > 0 && topP <= 1)) throw Bad($"top_p must be in (0, 1], got {topP}", "top_p");
        long seed = (long?)Number(root, "seed") ?? 0;
        if (Int(root, "n") is { } n && n != 1) throw Bad($"n must be 1 (one answer per request), got {n}", "n");
        bool stream = Bool(root, "stream") ?? false;
        bool includeUsage = root.TryGetProperty("stream_options", out var so) && so.ValueKind == JsonValueKind.Object && (Bool(so, "include_usage") ?? false);
        string? decoder = null, compressor = null;
        int? tokens = null;
        double? latency = null;
        bool ignoreStop = false;
        string route = "auto";
        if (root.TryGetProperty("assistant", out var own) && own.ValueKind != JsonValueKind.Null)
        {
            if (own.ValueKind != JsonValueKind.Object) throw Bad("'assistant' must be an object: {\"decoder\", \"compressor\", \"tokens\", \"latency_ms\", \"ignore_stop\"}", "assistant");
            ignoreStop = Bool(own, "ignore_stop") ?? false;
            route = Text(own, "route") ?? "auto";
            if (route is not ("auto" or "visual" or "ocr")) throw Bad($"assistant.route must be auto, visual or ocr, got '{Short(route)}'", "assistant.route");
            decoder = Text(own, "decoder");
            compressor = Text(own, "compressor");
            tokens = own.TryGetProperty("tokens", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == "auto" ? null : Int(own, "tokens");
            latency = Number(own, "latency_ms");
            if (latency is { } l && !(l > 0 && l <= 600_000)) throw Bad($"assistant.latency_ms must be in (0, 600000], got {l}", "assistant.latency_ms");
            if (latency is not null && (decoder is not null || tokens is not null))
                throw Bad("assistant.latency_ms chooses the decoder and V itself: drop assistant.decoder/tokens, or the budget", "assistant");
        }
        var answer = new AnswerOptions(max, temperature, topP, unchecked((int)seed), ignoreStop, ignoreStop ? 0 : 4).Validate();
        return new ChatRequest(question, image, answer, stream, includeUsage, Stops(root), decoder, compressor, tokens, latency, route);
    }

    /// <summary>A message's text (parts joined by new lines) and its last picture's URL.</summary>
    private static (string Text, string? Image) Content(JsonElement message)
    {
        if (!message.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null) return ("", null);
        if (content.ValueKind == JsonValueKind.String) return (content.GetString()!, null);
        if (content.ValueKind != JsonValueKind.Array) throw Bad("a message's 'content' must be a string or an array of parts", "messages");
        var texts = new List<string>();
        string? image = null;
        foreach (var part in content.EnumerateArray())
        {
            string? type = part.ValueKind == JsonValueKind.Object ? Text(part, "type") : null;
            switch (type)
            {
                case "text":
                    texts.Add(Text(part, "text") ?? throw Bad("a text part needs 'text'", "messages"));
                    break;
                case "image_url":
                    if (!part.TryGetProperty("image_url", out var iu)) throw Bad("an image_url part needs 'image_url'", "messages");
                    image = iu.ValueKind == JsonValueKind.String ? iu.GetString()
                        : iu.ValueKind == JsonValueKind.Object ? Text(iu, "url") : null;
                    if (string.IsNullOrEmpty(image)) throw Bad("an image_url part needs 'image_url': {\"url\": \"data:image/png;base64,...\"}", "messages");
                    break;
                default:
                    throw Bad($"content parts are 'text' or 'image_url', got {(type is null ? "a part without a type" : $"'{Short(type)}'")}", "messages");
            }
        }
        return (string.Join("\n", texts), image);
    }

    private static IReadOnlyList<string> Stops(JsonElement root)
    {
        if (!root.TryGetProperty("stop", out var stop) || stop.ValueKind == JsonValueKind.Null) return [];
        var stops = stop.ValueKind == JsonValueKind.String ? [stop.GetString()!]
            : stop.ValueKind == JsonValueKind.Array && stop.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String)
                ? stop.EnumerateArray().Select(s => s.GetString()!).ToList()
                : throw Bad("'stop' must be a string or an array of strings", "stop");
        if (stops.Count > 4 || stops.Any(s => s.Length is 0 or > 256)) throw Bad("'stop' takes up to 4 strings of 1..256 characters", "stop");
        return stops;
    }

    private static string? Text(JsonElement o, string name) =>
        !o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString() : throw Bad($"'{name}' must be a string", name);

    private static bool? Bool(JsonElement o, string name) =>
        !o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Bad($"'{name}' must be true or false", name);

    private static double? Number(JsonElement o, string name) =>
        !o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) && double.IsFinite(d) ? d : throw Bad($"'{name}' must be a number", name);

    private static int? Int(JsonElement o, string name) =>
        !o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : throw Bad($"'{name}' must be a whole number", name);

    internal static string Short(string s) => s.Length <= 60 ? s : s[..60] + "...";

    private static ApiException Bad(string message, string? param = null) => new(400, message, param: param);
}
