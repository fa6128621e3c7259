using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;

namespace Assistant.Ui.Tests;

/// <summary>
/// The overlay under abuse (issue 20), on loopback against a real server: oversized, malformed and wrongly typed
/// control bodies, path traversal, a burst of 300 requests 20 at a time and WebSocket upgrades from foreign
/// origins are each refused with the right status, and the server still answers afterwards.
/// </summary>
public sealed class OverlayAbuseTests
{
    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    [Fact]
    public async Task AControlThatCannotApply_Is4xxWithItsReason_BeforeItIsQueued_AndNumbersAreNumbers()
    {
        // Before: all of these got 202, the reason only on the server's stderr; {"tokens": 4} was refused with a .NET type name.
        await using var overlay = await OverlayProcess.StartAsync("--frames", "100000");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var control = new Uri(overlay.BaseUri, "api/control");
        foreach (var (body, reason) in new[]
                 {
                     ("{\"decoder\":\"nope\"}", "nope"), ("{\"tokens\":5}", "not offered"), ("{\"query\":\"what is a flurb?\"}", "flurb"),
                     ("{\"query\":\"  \"}", "empty"), ("{\"bogus\":1}", "bogus"), ("{\"tokens\":4,\"colour\":\"red\"}", "colour"),
                 })
        {
            using var response = await http.PostAsync(control, Json(body));
            string text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{body}: {(int)response.StatusCode} {text}");
            Assert.Contains(reason, text, StringComparison.Ordinal);
            Assert.DoesNotContain("Assistant.", text, StringComparison.Ordinal);
        }
        foreach (var body in new[] { "{\"tokens\":4}", "{\"tokens\":\"16\"}", "{\"tokens\":\"auto\"}", "{\"query\":\"how many circles are there?\"}" })
        {
            using var response = await http.PostAsync(control, Json(body));
            Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"{body}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
    }

    [Fact]
    public async Task OversizedAndMalformedControlBodies_AreRefused_AndTheServerStillAnswers()
    {
        await using var overlay = await OverlayProcess.StartAsync("--frames", "100000");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var control = new Uri(overlay.BaseUri, "api/control");

        var clock = Stopwatch.StartNew();
        var twentyMb = "{\"query\":\"" + new string('a', 20 << 20) + "\"}";
        using (var big = await http.PostAsync(control, Json(twentyMb)))
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, big.StatusCode);
        // The same without a length (chunked): refused once 64 KB have come.
        var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(twentyMb)));
        chunked.Headers.ContentType = new("application/json");
        using (var request = new HttpRequestMessage(HttpMethod.Post, control) { Content = chunked })
        {
            request.Headers.TransferEncodingChunked = true;
            try
            {
                using var response = await http.SendAsync(request);
                Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
            }
            catch (HttpRequestException)
            {
                // Kestrel may close the connection while the body is still being sent: refused all the same.
            }
        }
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the oversized bodies took {clock.Elapsed.TotalSeconds:F1} s");

        foreach (var body in new[]
        {
            "{\"latency_ms\":\"abc\"}", "{\"paused\":\"yes\"}", "{\"tokens\":4.5}", "{\"decoder\":[1]}", "[]", "null", "\"x\"", "{",
            "{\"latency_ms\":-5}", "{\"latency_ms\":1e308}", "{\"mode\":\"\\u001b[2J\"}", "{\"tokens\":\"-1e9\"}",
            new string('[', 10_000) + new string(']', 10_000), "\u0000\u0001\u0002", "{\"query\":\"" + new string('q', 5000) + "\"}",
        })
        {
            using var response = await http.PostAsync(control, Json(body));
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest,
                $"{body[..Math.Min(40, body.Length)]}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
        using (var wrongType = await http.PostAsync(control, new StringContent("paused=true", Encoding.UTF8, "application/x-www-form-urlencoded")))
            Assert.True(wrongType.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.UnsupportedMediaType, $"{(int)wrongType.StatusCode}");

        using var ok = await http.PostAsync(control, Json("{\"paused\":false}"));
        Assert.Equal(HttpStatusCode.Accepted, ok.StatusCode);
        using var page = await http.GetAsync(overlay.BaseUri);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
    }

    [Fact]
    public async Task PathTraversal_ABurstOfRequests_AndForeignWebSocketOrigins_AreHandled()
    {
        await using var overlay = await OverlayProcess.StartAsync("--frames", "100000");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        foreach (var path in new[]
        {
            "/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/overlay.js/../../../etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd",
            "/%252e%252e/etc/passwd", "/wwwroot/index.html", "/overlay/index.html", "/api/../../etc/passwd", "/.git/config", "/preview/../../etc/passwd",
        })
        {
            // Raw request line: HttpClient would normalise the dots away itself.
            using var tcp = new System.Net.Sockets.TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, overlay.Port);
            var stream = tcp.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{overlay.Port}\r\nConnection: close\r\n\r\n"));
            using var reader = new StreamReader(stream);
            var response = await reader.ReadToEndAsync();
            var status = response.Split(' ', 3)[1];
            Assert.True(status is "400" or "404", $"{path}: {response.Split('\n')[0]}");
            Assert.DoesNotContain("root:", response);
        }

        // 300 requests, 20 at a time: every one answered.
        var paths = new[] { "", "overlay.js", "overlay.css", "api/state", "api/law", "preview" };
        using var gate = new SemaphoreSlim(20);
        var clock = Stopwatch.StartNew();
        var statuses = await Task.WhenAll(Enumerable.Range(0, 300).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                using var response = await http.GetAsync(new Uri(overlay.BaseUri, paths[i % paths.Length]));
                await response.Content.ReadAsByteArrayAsync();
                return (int)response.StatusCode;
            }
            finally
            {
                gate.Release();
            }
        }));
        Assert.All(statuses, s => Assert.True(s is 200 or 204, $"status {s}"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the burst took {clock.Elapsed.TotalSeconds:F1} s");

        foreach (var origin in new[] { "null", "http://127.0.0.1.evil.example", $"https://127.0.0.1:{overlay.Port}", $"http://127.0.0.1:{overlay.Port}.evil.example",
                     "file://", $"http://localhost:{overlay.Port + 1}" })
        {
            using var ws = new ClientWebSocket();
            ws.Options.SetRequestHeader("Origin", origin);
            var uri = new UriBuilder(overlay.BaseUri) { Scheme = "ws", Path = "/ws" }.Uri;
            var refused = await Assert.ThrowsAsync<WebSocketException>(() => ws.ConnectAsync(uri, CancellationToken.None));
            Assert.Contains("403", refused.Message);
        }
        using var after = await http.GetAsync(new Uri(overlay.BaseUri, "api/law"));
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }
}
