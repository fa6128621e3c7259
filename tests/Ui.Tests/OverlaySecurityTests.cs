using System.Net;
using System.Net.WebSockets;
using System.Text;

namespace Assistant.Ui.Tests;

/// <summary>The overlay's guards, against a real server: Origin, Host, the token, and where it binds.</summary>
public sealed class OverlaySecurityTests
{
    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static HttpRequestMessage Post(Uri uri, string? origin)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(uri, "api/control")) { Content = Json("{\"paused\":false}") };
        if (origin is not null) request.Headers.Add("Origin", origin);
        return request;
    }

    private static async Task<WebSocket> Connect(Uri baseUri, string? origin, string? token = null)
    {
        var ws = new ClientWebSocket();
        if (origin is not null) ws.Options.SetRequestHeader("Origin", origin);
        var uri = new UriBuilder(baseUri) { Scheme = "ws", Path = "/ws", Query = token is null ? "" : $"token={token}" }.Uri;
        await ws.ConnectAsync(uri, CancellationToken.None);
        return ws;
    }

    [Fact]
    public async Task EveryResponse_RefusesToBeFramedByAnotherOrigin()
    {
        await using var overlay = await OverlayProcess.StartAsync("--frames", "100000");
        using var http = new HttpClient();
        foreach (var path in new[] { "", "overlay.js", "api/law", "no-such-page" })
        {
            using var response = await http.GetAsync(new Uri(overlay.BaseUri, path));
            Assert.Equal("DENY", string.Join(",", response.Headers.GetValues("X-Frame-Options")));
            Assert.Equal("frame-ancestors 'none'", string.Join(",", response.Headers.GetValues("Content-Security-Policy")));
        }
        using var refused = await http.SendAsync(Post(overlay.BaseUri, "http://evil.example"));  // refusals carry them too
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("DENY", refused.Headers.GetValues("X-Frame-Options"));
    }

    [Fact]
    public async Task AForeignOrigin_IsRefused_ForPostAndWebSocket_ButThePagesOwnIsServed()
    {
        await using var overlay = await OverlayProcess.StartAsync("--frames", "100000");
        using var http = new HttpClient();
        var own = $"http://127.0.0.1:{overlay.Port}";
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(Post(overlay.BaseUri, "http://evil.example"))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(Post(overlay.BaseUri, $"http://127.0.0.1:{overlay.Port + 1}"))).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await http.SendAsync(Post(overlay.BaseUri, own))).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await http.SendAsync(Post(overlay.BaseUri, null))).StatusCode);  // not a browser

        var refused = await Assert.ThrowsAsync<WebSocketException>(() => Connect(overlay.BaseUri, "http://evil.example"));
        Assert.Contains("403", refused.Message);
        using var ws = await Connect(overlay.BaseUri, own);
        var buffer = new byte[8192];
        var received = await ws.ReceiveAsync(buffer, new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        Assert.Contains("\"decoder\":", Encoding.UTF8.GetString(buffer, 0, received.Count));

        // A bad control request is refused with a reason, not applied.
        var bad = await http.PostAsync(new Uri(overlay.BaseUri, "api/control"), Json("{\"mode\":\"sideways\"}"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("mode must be live or snapshot", await bad.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task OnLoopback_AForeignHostHeader_IsRefused_AndTheSocketListensOnLoopbackOnly()
    {
        await using var overlay = await OverlayProcess.StartAsync("--frames", "100000");
        using var http = new HttpClient();
        var rebinding = new HttpRequestMessage(HttpMethod.Get, overlay.BaseUri);
        rebinding.Headers.Host = $"attacker.example:{overlay.Port}";
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(rebinding)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(overlay.BaseUri)).StatusCode);

        // The kernel's own table: the listening socket's local address is 127.0.0.1, nothing wider.
        string portHex = overlay.Port.ToString("X4");
        var listening = File.ReadAllLines("/proc/net/tcp").Skip(1).Concat(File.ReadAllLines("/proc/net/tcp6").Skip(1))
            .Select(l => l.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f[1].EndsWith(":" + portHex) && f[3] == "0A").Select(f => f[1]).ToList();
        Assert.Equal(["0100007F:" + portHex], listening);
    }

    [Fact]
    public async Task BindingBeyondLoopback_NeedsAllowRemote()
    {
        var (code, _, stderr) = await CliRun.Run("live", "--overlay", "--bind", "0.0.0.0", "--frames", "1");
        Assert.Equal(2, code);
        Assert.Contains("add --allow-remote", stderr);
        (code, _, stderr) = await CliRun.Run("live", "--port", "9999", "--frames", "1");
        Assert.Equal(2, code);
        Assert.Contains("go with --overlay", stderr);
    }

    [Fact]
    public async Task WithAllowRemote_EveryRequestNeedsTheToken()
    {
        await using var overlay = await OverlayProcess.StartAsync("--frames", "100000", "--bind", "0.0.0.0", "--allow-remote");
        var token = overlay.Url.Split("?token=")[1];
        Assert.Matches("^[0-9a-f]{32}$", token);
        Assert.Contains("the token is shown only now", overlay.Output);
        var local = new Uri($"http://127.0.0.1:{overlay.Port}/");
        using (var http = new HttpClient())
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync(local)).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync(new Uri(local, "api/state"))).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync(new Uri(local, "?token=" + new string('0', 32)))).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(Post(local, null))).StatusCode);
            var header = new HttpRequestMessage(HttpMethod.Get, new Uri(local, "api/law"));
            header.Headers.Add("X-Assistant-Token", token);
            Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(header)).StatusCode);
        }
        await Assert.ThrowsAsync<WebSocketException>(() => Connect(local, null));
        using (var ws = await Connect(local, null, token)) Assert.Equal(WebSocketState.Open, ws.State);

        // A browser opening the printed URL gets the token as a cookie and needs nothing more.
        var cookies = new CookieContainer();
        using var browser = new HttpClient(new HttpClientHandler { CookieContainer = cookies });
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(new Uri(local, "?token=" + token))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(new Uri(local, "overlay.js"))).StatusCode);
    }
}
