using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Assistant.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Assistant.Ui.Overlay;

/// <summary>Where the overlay listens: loopback unless <see cref="AllowRemote"/>, which also turns on the access token.</summary>
public sealed record OverlayOptions(string Bind = "127.0.0.1", int Port = 8770, bool AllowRemote = false);

/// <summary>
/// The overlay's web server (ASP.NET Core, Kestrel): the page and its assets from the assembly, the newest
/// preview image, telemetry over a WebSocket, and control requests by POST. Security: it binds loopback
/// only unless --allow-remote, which requires an access token on every request; a POST or WebSocket whose
/// Origin is not this server is refused; on loopback, a Host header other than a loopback name is refused
/// (DNS rebinding). Owns the web host; <see cref="DisposeAsync"/> stops it.
/// </summary>
public sealed class OverlayServer : IAsyncDisposable
{
    /// <summary>The cookie the page keeps the access token in (with --allow-remote).</summary>
    public const string TokenCookie = "assistant_token";
    private const int MaxMessagesPerSecond = 30;
    private const int MaxControlBytes = 64 << 10;
    private readonly WebApplication _app;
    private readonly OverlayHub _hub;
    private readonly string? _token;
    private readonly IReadOnlyList<LawPoint> _law;
    private readonly bool _loopbackOnly;

    private OverlayServer(WebApplication app, OverlayHub hub, string? token, IReadOnlyList<LawPoint> law, bool loopbackOnly)
    {
        _app = app;
        _hub = hub;
        _token = token;
        _law = law;
        _loopbackOnly = loopbackOnly;
    }

    /// <summary>The address to open (with the token when one is required).</summary>
    public string Url { get; private set; } = "";

    /// <summary>The port it listens on (the one asked for, or the free one chosen for 0).</summary>
    public int Port { get; private set; }

    /// <summary>Starts the web host on <paramref name="options"/>' address, serving <paramref name="hub"/>'s frames and the law chart's <paramref name="law"/>; a bad address or a port in use is a one-line error.</summary>
    public static async Task<OverlayServer> StartAsync(OverlayOptions options, OverlayHub hub, IReadOnlyList<LawPoint> law)
    {
        var endpoint = LocalWebHost.Endpoint(options.Bind, options.Port);
        if (!endpoint.Loopback && !options.AllowRemote)
            throw new EngineException($"binding {options.Bind} exposes the overlay beyond this machine: add --allow-remote (which also requires an access token)");
        string? token = options.AllowRemote ? Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)) : null;

        var app = LocalWebHost.Builder(endpoint).Build();
        var server = new OverlayServer(app, hub, token, law, endpoint.Loopback && !options.AllowRemote);
        app.UseWebSockets();
        app.Use(server.GuardAsync);
        app.MapGet("/", () => Asset("index.html", "text/html; charset=utf-8"));
        app.MapGet("/overlay.js", () => Asset("overlay.js", "text/javascript; charset=utf-8"));
        app.MapGet("/overlay.css", () => Asset("overlay.css", "text/css; charset=utf-8"));
        app.MapGet("/preview", (HttpContext http) =>
        {
            http.Response.Headers.CacheControl = "no-store";
            return hub.Preview() is { } image ? Results.Bytes(image.Bytes, image.ContentType) : Results.NoContent();
        });
        app.MapGet("/api/state", () => hub.Latest.Report is { } r ? Results.Bytes(r.ToUtf8Json(), "application/json") : Results.NoContent());
        app.MapGet("/api/law", () => Results.Json(server._law));
        app.MapPost("/api/control", (Delegate)server.ControlAsync);
        app.Map("/ws", server.StreamAsync);
        server.Port = await LocalWebHost.StartAsync(app, endpoint);
        server.Url = $"http://{endpoint.UrlHost}:{server.Port}/" + (token is null ? "" : $"?token={token}");
        return server;
    }

    private static IResult Asset(string name, string contentType)
    {
        var stream = typeof(OverlayServer).Assembly.GetManifestResourceStream($"overlay/{name}")
            ?? throw new InvalidOperationException($"overlay asset {name} is not embedded");
        return Results.Stream(stream, contentType);
    }

    /// <summary>Every request: the Host check (loopback), the token (remote), the Origin check (state-changing requests).</summary>
    private async Task GuardAsync(HttpContext http, RequestDelegate next)
    {
        var request = http.Request;
        // No other origin may frame the page (clickjacking its controls): the old header and CSP's, on every response.
        http.Response.Headers.XFrameOptions = "DENY";
        http.Response.Headers.ContentSecurityPolicy = "frame-ancestors 'none'";
        if (_loopbackOnly && !LocalWebHost.IsLoopbackName(request.Host.Host))
        {
            await Refuse(http, StatusCodes.Status403Forbidden, "host not allowed");
            return;
        }
        if (_token is not null)
        {
            string? given = request.Query["token"].FirstOrDefault() ?? request.Headers["X-Assistant-Token"].FirstOrDefault()
                ?? request.Cookies[TokenCookie];
            if (given is null || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(_token)))
            {
                await Refuse(http, StatusCodes.Status401Unauthorized, "access token required");
                return;
            }
            if (request.Query.ContainsKey("token"))  // the page keeps it in a cookie for its own requests
                http.Response.Cookies.Append(TokenCookie, _token, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict });
        }
        bool changesState = HttpMethods.IsPost(request.Method) || http.WebSockets.IsWebSocketRequest;
        if (changesState && request.Headers.Origin.FirstOrDefault() is { } origin && !LocalWebHost.SameOrigin(origin, request))
        {
            await Refuse(http, StatusCodes.Status403Forbidden, "foreign origin");
            return;
        }
        await next(http);
    }

    private static Task Refuse(HttpContext http, int status, string why)
    {
        http.Response.StatusCode = status;
        return http.Response.WriteAsync(why);
    }

    private async Task<IResult> ControlAsync(HttpContext http)
    {
        // A control request is a few fields: a body past 64 KB is refused before it is read (Kestrel's default
        // limit is 30 MB), also when it comes chunked, without a length.
        if (http.Request.ContentLength > MaxControlBytes)
            return Results.Text($"a control request is at most {MaxControlBytes >> 10} KB", statusCode: StatusCodes.Status413PayloadTooLarge);
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = MaxControlBytes;
        ControlChange? request;
        try
        {
            request = await http.Request.ReadFromJsonAsync<ControlChange>();
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return Results.Text($"a control request is at most {MaxControlBytes >> 10} KB", statusCode: StatusCodes.Status413PayloadTooLarge);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or BadHttpRequestException)
        {
            return Results.BadRequest($"not a control request: {ControlError(e)}");
        }
        if (request is null) return Results.BadRequest("empty control request");
        try
        {
            _hub.Request(request.Check());  // the one check of a control's values (Engine's ControlChange)
        }
        catch (EngineException e)
        {
            return Results.BadRequest(e.Message);
        }
        return Results.Accepted();
    }

    /// <summary>Why a body is not a control request, in the API's words (field names, never .NET type names).</summary>
    private static string ControlError(Exception e)
    {
        const string Fields = "latency_ms, decoder, tokens, mode, paused, query";
        string message = e.Message.Split('\n')[0];
        if (System.Text.RegularExpressions.Regex.Match(message, "^The JSON property '([^']*)' could not be mapped") is { Success: true } unknown)
            return $"unknown control '{TerminalText.Printable(unknown.Groups[1].Value)}' (the controls: {Fields})";
        if (e is JsonException { Path: { } path } && (message.Contains("could not be converted", StringComparison.Ordinal) || message.Contains("Assistant.", StringComparison.Ordinal)))
            return path is "$" ? $"the body must be a JSON object of controls ({Fields})" : $"{path.TrimStart('$', '.')} has the wrong type";
        return message;
    }

    /// <summary>Pushes the newest telemetry to one page: after each publish, at most 30 messages a second.</summary>
    private async Task StreamAsync(HttpContext http)
    {
        if (!http.WebSockets.IsWebSocketRequest)
        {
            http.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }
        using var socket = await http.WebSockets.AcceptWebSocketAsync();
        using var signal = new SemaphoreSlim(0, 1);
        void OnPublished()
        {
            if (signal.CurrentCount == 0) try { signal.Release(); } catch (SemaphoreFullException) { }
        }
        _hub.Published += OnPublished;
        var stopping = http.RequestAborted;
        var reader = DrainAsync(socket, stopping);  // answers close frames
        try
        {
            long sent = -1;
            var period = TimeSpan.FromSeconds(1.0 / MaxMessagesPerSecond);
            while (socket.State == WebSocketState.Open && !stopping.IsCancellationRequested && !reader.IsCompleted)
            {
                await signal.WaitAsync(TimeSpan.FromSeconds(1), stopping);
                var (version, report) = _hub.Latest;
                if (report is null || version == sent) continue;
                sent = version;
                var bytes = report.ToUtf8Json();
                await socket.SendAsync(bytes, WebSocketMessageType.Text, true, stopping);
                await Task.Delay(period, stopping);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            // the page went away
        }
        finally
        {
            _hub.Published -= OnPublished;
        }
    }

    private static async Task DrainAsync(WebSocket socket, CancellationToken stopping)
    {
        var buffer = new byte[1024];
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                var r = await socket.ReceiveAsync(buffer, stopping);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
                    return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            // closed
        }
    }

    /// <summary>Stops the web host and closes its connections.</summary>
    public ValueTask DisposeAsync() => LocalWebHost.StopAsync(_app);
}
