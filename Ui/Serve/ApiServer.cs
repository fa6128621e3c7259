using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Assistant.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Assistant.Ui.Serve;

/// <summary>Where and how the API listens.</summary>
/// <param name="Bind">Address; loopback unless an API key is set.</param>
/// <param name="Port">Port (0: a free one).</param>
/// <param name="ApiKey">The key every request must carry as <c>Authorization: Bearer KEY</c>; null: none (loopback only).</param>
/// <param name="AllowPaths">A folder whose files a request may name as its picture; null: data: URIs only.</param>
internal sealed record ApiOptions(string Bind = "127.0.0.1", int Port = 8080, string? ApiKey = null, string? AllowPaths = null);

/// <summary>
/// The OpenAI-compatible API over a warm <see cref="AnswerPool"/> (ASP.NET Core, Kestrel): <c>GET /v1/models</c> and
/// <c>POST /v1/chat/completions</c>, plain or streamed as server-sent events. Security as the overlay's: loopback by
/// default, another address only with an API key (compared in constant time, never logged); on loopback a Host that is
/// not a loopback name is refused (DNS rebinding); a request from a browser page of another origin is refused; request
/// bodies are bounded. Errors are OpenAI's shape, <c>{"error": {"message", "type", "param", "code"}}</c>, with their
/// status. Owns the web host; <see cref="DisposeAsync"/> stops it.
/// </summary>
internal sealed class ApiServer : IAsyncDisposable
{
    /// <summary>The largest request body: a picture of up to about 12 MB as base64, and the messages.</summary>
    public const long MaxBodyBytes = 16L << 20;

    private static readonly JsonSerializerOptions Compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly WebApplication _app;
    private readonly LoadedModels _models;
    private readonly AnswerPool _pool;
    private readonly byte[]? _keyHash;
    private readonly bool _loopbackOnly;
    private readonly Pictures _pictures;
    private readonly TextWriter _log;
    private readonly LiveAnswers? _live;
    private readonly Lazy<TextReading>? _reader;  // loaded at the first question about text; one reader, one request at a time
    private readonly SemaphoreSlim _reading = new(1, 1);
    private long _served;

    private ApiServer(WebApplication app, LoadedModels models, AnswerPool pool, ApiOptions options, bool loopback, TextWriter log, LiveAnswers? live,
        Func<TextReading>? reader)
    {
        _live = live;
        _reader = reader is null ? null : new Lazy<TextReading>(reader);
        _app = app;
        _models = models;
        _pool = pool;
        _keyHash = options.ApiKey is null ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey));
        _loopbackOnly = loopback;
        _pictures = new Pictures(options.AllowPaths, MaxBodyBytes);
        _log = log;
    }

    /// <summary>The API's base address, ending in <c>/v1</c>.</summary>
    public string BaseUrl { get; private set; } = "";

    /// <summary>
    /// Starts listening; a bad address, a remote one without a key or a port in use is a one-line error. With
    /// <paramref name="live"/> (<c>live --serve</c>), a request without a picture is answered about the live session's newest frames.
    /// </summary>
    public static async Task<ApiServer> StartAsync(ApiOptions options, LoadedModels models, AnswerPool pool, TextWriter log, LiveAnswers? live = null,
        Func<TextReading>? reader = null)
    {
        var endpoint = LocalWebHost.Endpoint(options.Bind, options.Port);
        if (!endpoint.Loopback && options.ApiKey is null)
            throw new EngineException($"binding {options.Bind} exposes the API beyond this machine: set an API key (--api-key or ASSISTANT_API_KEY)");
        if (options.ApiKey is { Length: < 16 }) throw new EngineException("the API key must be at least 16 characters");
        if (options.AllowPaths is { } allowed && !Directory.Exists(allowed)) throw new EngineException($"--allow-paths names no folder: {allowed}");

        var app = LocalWebHost.Builder(endpoint, MaxBodyBytes).Build();
        var server = new ApiServer(app, models, pool, options, endpoint.Loopback && options.ApiKey is null, log, live, reader);
        app.Use(server.GuardAsync);
        app.MapGet("/v1/models", server.Models);
        app.MapPost("/v1/chat/completions", server.CompleteAsync);
        app.MapFallback((HttpContext http) => Error(http, new ApiException(404, $"no such endpoint: {http.Request.Method} {http.Request.Path}", code: "not_found")));
        int port = await LocalWebHost.StartAsync(app, endpoint);
        server.BaseUrl = $"http://{endpoint.UrlHost}:{port}/v1";
        return server;
    }

    /// <summary>Requests answered so far.</summary>
    public long Served => Interlocked.Read(ref _served);

    private async Task GuardAsync(HttpContext http, RequestDelegate next)
    {
        var request = http.Request;
        if (_loopbackOnly && !LocalWebHost.IsLoopbackName(request.Host.Host))
        {
            await Error(http, new ApiException(403, "host not allowed", "permission_error"));
            return;
        }
        if (request.Headers.Origin.FirstOrDefault() is { } origin && !LocalWebHost.SameOrigin(origin, request))
        {
            await Error(http, new ApiException(403, "requests from another origin's page are refused", "permission_error"));
            return;
        }
        if (_keyHash is not null)
        {
            string? given = request.Headers.Authorization.FirstOrDefault() is { } auth && auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth[7..].Trim() : null;
            // Hashes of equal length compared in constant time: neither the key nor its length leaks through timing.
            if (given is null || !CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), _keyHash))
            {
                await Error(http, new ApiException(401, "a valid API key is required (Authorization: Bearer KEY)", "authentication_error", "invalid_api_key"));
                return;
            }
        }
        await next(http);
    }

    private IResult Models() => Results.Json(new
    {
        @object = "list",
        data = new[] { new { id = _models.Name, @object = "model", created = 0, owned_by = "assistant" } },
    });

    private async Task CompleteAsync(HttpContext http)
    {
        try
        {
            var request = ChatRequest.Parse(await ReadBodyAsync(http));
            if (request.ImageUrl is null && _live is not null)
            {
                await LiveAsync(http, request, _live);
                Interlocked.Increment(ref _served);
                return;
            }
            if (request.ImageUrl is null)
                throw new ApiException(400, "the conversation has no picture: add an image_url part (data:image/png;base64,...) to a user message", param: "messages");
            var image = _pictures.Read(request.ImageUrl);
            var picture = Decode(image);
            if (_reader is not null && QueryRouter.Decide(request.Question, request.Route) is { Route: QueryRoute.Ocr } route)
            {
                await ReadAsync(http, request, picture, route);
                Interlocked.Increment(ref _served);
                return;
            }
            string hash = AnswerPool.PictureHash(image.Bytes);
            var config = Configure(request);
            using var ticket = await _pool.TryEnterAsync(hash, http.RequestAborted)
                ?? throw new ApiException(429, $"the server is busy: {_pool.Pipelines} answering and {_pool.Queue} waiting; retry shortly", "rate_limit_error", "queue_full");
            var choice = ticket.Resolve(config);
            if (request.Stream) await StreamAsync(http, request, ticket, picture, hash, config, choice);
            else await AnswerAsync(http, request, ticket, picture, hash, config, choice);
            Interlocked.Increment(ref _served);
        }
        catch (ApiException e)
        {
            await Refuse(http, e);
        }
        catch (EngineException e)
        {
            await Refuse(http, new ApiException(400, e.Message));
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // the client went away; its pipeline is back in the pool (the ticket's using)
        }
        catch (Exception e) when (UserErrors.ExitCode(e) is not null)
        {
            await Refuse(http, new ApiException(400, e.Message));
        }
    }

    /// <summary>An error response, and one line on the server's log (never the request's key or body).</summary>
    private Task Refuse(HttpContext http, ApiException e)
    {
        lock (_log) _log.WriteLine($"request refused ({e.Status}): {UserErrors.OneLine(e.Message)}");
        return Error(http, e);
    }

    private static FramePicture Decode(RequestImage image)
    {
        try
        {
            return FramePicture.Decode(image.Bytes, image.Name);
        }
        catch (Exception e) when (UserErrors.ExitCode(e) is not null)
        {
            throw new ApiException(400, $"the picture cannot be used: {e.Message}", param: "messages");
        }
    }

    private AskConfig Configure(ChatRequest request)
    {
        var config = new AskConfig(request.Decoder, request.Compressor, request.Tokens, request.Answer);
        if (request.LatencyMs is not { } budget) return config;
        var plan = Planner.PlanFor(_models, new PlanRequest(budget, Compressor: request.Compressor), recalibrate: false).Plan;
        return AskConfig.For(plan.Choice.Config, request.Answer);
    }

    private static async Task<JsonElement> ReadBodyAsync(HttpContext http)
    {
        if (http.Request.ContentLength > MaxBodyBytes) throw TooLarge();
        try
        {
            using var doc = await JsonDocument.ParseAsync(http.Request.Body, new JsonDocumentOptions { MaxDepth = 32 }, http.RequestAborted);
            return doc.RootElement.Clone();
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw TooLarge();
        }
        catch (JsonException e)
        {
            throw new ApiException(400, $"the request body is not JSON: {e.Message.Split('\n')[0]}");
        }
    }

    private static ApiException TooLarge() => new(413, $"the request body is over {MaxBodyBytes >> 20} MB", code: "request_too_large");

    /// <summary>One answer's tokens through the stop strings, with the counts and reasons the responses need.</summary>
    private sealed class Outcome
    {
        public List<int> Ids { get; } = [];
        public StringBuilder Text { get; } = new();
        public StageTimings Timings { get; } = new();
        public StrongBox<PoolAnswerStats?> Stats { get; } = new();
        public string FinishReason { get; set; } = "stop";
    }

    private static async IAsyncEnumerable<string> Tokens(ChatRequest request, AnswerPool.Ticket ticket, FramePicture picture, string hash, AskConfig config,
        Outcome outcome, [EnumeratorCancellation] CancellationToken cancellation)
    {
        var stops = new StopMatcher(request.Stop);
        await foreach (var token in ticket.AnswerAsync(picture, hash, request.Question, config, outcome.Timings, outcome.Stats, cancellation))
        {
            outcome.Ids.Add(token.Id);
            var text = stops.Push(token.Text);
            outcome.Text.Append(text);
            if (text.Length > 0) yield return text;
            if (stops.Stopped) break;
        }
        var rest = stops.Flush();
        outcome.Text.Append(rest);
        if (rest.Length > 0) yield return rest;
        outcome.FinishReason = !stops.Stopped && outcome.Timings.ReachedTokenLimit ? "length" : "stop";
    }

    private async Task AnswerAsync(HttpContext http, ChatRequest request, AnswerPool.Ticket ticket, FramePicture picture, string hash, AskConfig config, ModelChoice choice)
    {
        var outcome = new Outcome();
        await foreach (var _ in Tokens(request, ticket, picture, hash, config, outcome, http.RequestAborted)) { }
        var response = Completion(outcome.Text.ToString(), outcome.FinishReason);
        response["usage"] = Usage(outcome);
        AddExtras(response, outcome, choice);
        await WriteJsonAsync(http, response);
    }

    private async Task StreamAsync(HttpContext http, ChatRequest request, AnswerPool.Ticket ticket, FramePicture picture, string hash, AskConfig config, ModelChoice choice)
    {
        var events = new EventStream(http, _models.Name);
        await events.SendAsync(events.Chunk(new JsonObject { ["role"] = "assistant", ["content"] = "" }, null));
        var outcome = new Outcome();
        await foreach (var text in Tokens(request, ticket, picture, hash, config, outcome, http.RequestAborted))
            await events.SendAsync(events.Chunk(new JsonObject { ["content"] = text }, null));
        var last = events.Chunk([], outcome.FinishReason);
        AddExtras(last, outcome, choice);
        await events.SendAsync(last);
        if (request.IncludeUsage)
        {
            var usage = events.Chunk(null, null);
            usage["usage"] = Usage(outcome);
            await events.SendAsync(usage);
        }
        await events.DoneAsync();
    }

    /// <summary>
    /// One streamed answer as server-sent events in OpenAI's chunk format: one id and creation time for all its chunks,
    /// each chunk flushed as it is sent, <c>[DONE]</c> at the end.
    /// </summary>
    private sealed class EventStream
    {
        private readonly HttpContext _http;
        private readonly string _model, _id = NewId();
        private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        public EventStream(HttpContext http, string model)
        {
            (_http, _model) = (http, model);
            http.Response.ContentType = "text/event-stream";
            http.Response.Headers.CacheControl = "no-cache";
            http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        }

        /// <summary>A chunk with one choice carrying <paramref name="delta"/>; with no delta, a chunk with no choices (the usage chunk).</summary>
        public JsonObject Chunk(JsonObject? delta, string? finish)
        {
            var chunk = Envelope(_model, "chat.completion.chunk", _id, _created);
            chunk["choices"] = delta is null ? new JsonArray() : new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish });
            return chunk;
        }

        public async Task SendAsync(JsonObject data)
        {
            await _http.Response.WriteAsync("data: " + data.ToJsonString(Compact) + "\n\n", _http.RequestAborted);
            await _http.Response.Body.FlushAsync(_http.RequestAborted);
        }

        public async Task DoneAsync()
        {
            await _http.Response.WriteAsync("data: [DONE]\n\n", _http.RequestAborted);
            await _http.Response.Body.FlushAsync(_http.RequestAborted);
        }
    }

    /// <summary>A request without a picture, answered by the live session about its newest frames (one content chunk when streamed).</summary>
    private async Task LiveAsync(HttpContext http, ChatRequest request, LiveAnswers live)
    {
        var answer = await live.AskAsync(request.Question, http.RequestAborted);
        var text = StopMatcher.Cut(answer.Text, request.Stop);
        var extras = new JsonObject
        {
            ["decoder"] = answer.Choice.Decoder,
            ["compressor"] = answer.Choice.Compressor,
            ["tokens"] = answer.Choice.Tokens,
            ["live"] = true,
            ["frame"] = answer.Frame,
            ["captured_s"] = answer.CapturedSeconds,
        };
        var timings = new JsonObject();
        foreach (var (stage, ms) in answer.StageMs) timings[stage + "_ms"] = Math.Round(ms, 3);
        await OneAnswerAsync(http, request, text, timings, extras);
    }

    /// <summary>A question about text on the picture, answered with the text OCR reads, as <c>ask</c> routes it (one chunk when streamed).</summary>
    private async Task ReadAsync(HttpContext http, ChatRequest request, FramePicture picture, RouteDecision route)
    {
        ReadResult result;
        await _reading.WaitAsync(http.RequestAborted);
        try
        {
            result = await Task.Run(() => _reader!.Value.Read(picture), http.RequestAborted);
        }
        finally
        {
            _reading.Release();
        }
        string text = StopMatcher.Cut(result.Lines.Count == 0 ? "(no text found)" : result.Text, request.Stop);
        var extras = new JsonObject
        {
            ["route"] = "ocr",
            ["route_rule"] = route.Rule,
            ["lines"] = new JsonArray([.. result.Lines.Select(l => (JsonNode)new JsonObject
            {
                ["text"] = l.Text, ["confidence"] = Math.Round(l.Confidence, 4), ["box"] = new JsonArray(l.X, l.Y, l.Width, l.Height),
            })]),
        };
        var timings = new JsonObject { ["detect_ms"] = Math.Round(result.Detect.TotalMilliseconds, 3), ["recognize_ms"] = Math.Round(result.Recognize.TotalMilliseconds, 3) };
        await OneAnswerAsync(http, request, text, timings, extras);
    }

    /// <summary>A whole answer known at once (read text, a live answer): one response, or when streamed one content chunk, the finish, [DONE].</summary>
    private async Task OneAnswerAsync(HttpContext http, ChatRequest request, string text, JsonObject timings, JsonObject extras)
    {
        if (!request.Stream)
        {
            var response = Completion(text, "stop");
            response["timings"] = timings;
            response["assistant"] = extras;
            await WriteJsonAsync(http, response);
            return;
        }
        var events = new EventStream(http, _models.Name);
        await events.SendAsync(events.Chunk(new JsonObject { ["role"] = "assistant", ["content"] = text }, null));
        var last = events.Chunk([], "stop");
        last["timings"] = timings;
        last["assistant"] = extras;
        await events.SendAsync(last);
        await events.DoneAsync();
    }

    /// <summary>A whole <c>chat.completion</c> with one choice: the assistant's <paramref name="text"/> and why it ended.</summary>
    private JsonObject Completion(string text, string finish)
    {
        var response = Envelope(_models.Name, "chat.completion", NewId(), DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        response["choices"] = new JsonArray(new JsonObject
        {
            ["index"] = 0,
            ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text },
            ["finish_reason"] = finish,
        });
        return response;
    }

    private static Task WriteJsonAsync(HttpContext http, JsonObject body)
    {
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync(body.ToJsonString(Compact), http.RequestAborted);
    }

    private static string NewId() => "chatcmpl-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

    private static JsonObject Envelope(string model, string kind, string id, long created) => new()
    {
        ["id"] = id,
        ["object"] = kind,
        ["created"] = created,
        ["model"] = model,
    };

    private static JsonObject Usage(Outcome o) => new()
    {
        ["prompt_tokens"] = o.Timings.PromptTokens,
        ["completion_tokens"] = o.Ids.Count,
        ["total_tokens"] = o.Timings.PromptTokens + o.Ids.Count,
    };

    /// <summary>
    /// llama-server's <c>timings</c> (prompt and predicted counts and ms) with this engine's stages, and an
    /// <c>assistant</c> object: the configuration that answered, the token ids, and what the warm pipeline reused.
    /// </summary>
    private static void AddExtras(JsonObject response, Outcome o, ModelChoice choice)
    {
        var t = o.Timings;
        var timings = new JsonObject
        {
            ["prompt_n"] = t.PromptTokens,
            ["prompt_ms"] = Math.Round(t.TotalMs - t[Stage.Decode], 3),
            ["predicted_n"] = o.Ids.Count,
            ["predicted_ms"] = Math.Round(t[Stage.Decode], 3),
            ["predicted_per_second"] = Math.Round(t.DecodeTokensPerSecond, 2),
        };
        foreach (var (stage, ms) in t.ToDictionary()) timings[stage + "_ms"] = Math.Round(ms, 3);
        response["timings"] = timings;
        var s = o.Stats.Value;
        response["assistant"] = new JsonObject
        {
            ["decoder"] = choice.Decoder,
            ["compressor"] = choice.Compressor,
            ["tokens"] = choice.Tokens,
            ["token_ids"] = new JsonArray([.. o.Ids.Select(i => (JsonNode)i)]),
            ["confidence"] = t.Confidence is { } c ? Math.Round(c, 4) : null,
            ["familiar"] = t.Familiarity?.Familiar,
            ["familiarity"] = t.Familiarity is { } f ? Math.Round(f.Score, 3) : null,
            ["pipeline"] = s?.Pipeline,
            ["picture_cached"] = s?.PictureCached,
            ["vision_ran"] = s?.VisionRan,
            ["question_prepared"] = s?.QuestionPrepared,
            ["compressor_ran"] = s?.CompressorRan,
            ["counters"] = s is null ? null : new JsonObject
            {
                ["answers"] = s.Counters.Frames,
                ["vision_runs"] = s.Counters.VisionRuns,
                ["question_preparations"] = s.Counters.QueryPrefills,
                ["compressor_runs"] = s.Counters.CompressorRuns,
                ["prefix_prefills"] = s.Counters.PrefixPrefills,
            },
        };
    }

    private static Task Error(HttpContext http, ApiException e)
    {
        if (http.Response.HasStarted) return Task.CompletedTask;  // mid-stream: the connection just ends
        http.Response.StatusCode = e.Status;
        http.Response.ContentType = "application/json";
        var body = new JsonObject
        {
            ["error"] = new JsonObject { ["message"] = e.Message, ["type"] = e.Type, ["param"] = e.Param, ["code"] = e.Code },
        };
        return http.Response.WriteAsync(body.ToJsonString(Compact));
    }

    /// <summary>Stops the web host and closes its connections.</summary>
    public ValueTask DisposeAsync() => LocalWebHost.StopAsync(_app);
}
