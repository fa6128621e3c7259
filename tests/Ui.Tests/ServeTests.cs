using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

/// <summary>`assistant serve` as a real process, asked by clients nobody here wrote: OpenAI's npm package and curl.</summary>
public sealed class ServeTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly string Picture = Golden.Trained.ImagePath;
    private const string Question = "how many circles are there?";

    /// <summary>A running `assistant serve`; its base URL read from its first line.</summary>
    private sealed class Server : IAsyncDisposable
    {
        private readonly AssistantProcess _process;

        private Server(AssistantProcess process, string baseUrl) => (_process, BaseUrl) = (process, baseUrl);

        public string BaseUrl { get; }
        public int Pid => _process.Id;
        public string Err => _process.Err;

        public static async Task<Server> StartAsync(params string[] extra)
        {
            var p = AssistantProcess.Start(["serve", "--port", "0", .. extra]);
            static string? UrlIn(string o) => o.Split('\n').FirstOrDefault(l => l.StartsWith("serving ", StringComparison.Ordinal)) is { } line
                ? line[(line.IndexOf(" at ", StringComparison.Ordinal) + 4)..].Split(' ')[0] : null;
            if (!await p.WaitForOutputAsync(o => UrlIn(o) is not null))
            {
                string err = p.Err;
                await p.DisposeAsync();
                throw new InvalidOperationException($"assistant serve did not start: {err}");
            }
            return new Server(p, UrlIn(p.Out)!);
        }

        public ValueTask DisposeAsync() => _process.DisposeAsync();
    }

    private static string DataUri(string path) => "data:image/png;base64," + Convert.ToBase64String(File.ReadAllBytes(path));

    private static JsonObject Request(string imageUrl, string question = Question, int maxTokens = 8) => new()
    {
        ["model"] = "any",
        ["max_tokens"] = maxTokens,
        ["messages"] = new JsonArray(new JsonObject
        {
            ["role"] = "user",
            ["content"] = new JsonArray(
                new JsonObject { ["type"] = "text", ["text"] = question },
                new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = imageUrl } }),
        }),
    };

    private static JsonObject With(JsonObject o, string name, JsonNode value)
    {
        o[name] = value;
        return o;
    }

    private static async Task<(HttpStatusCode Status, JsonNode Body)> PostAsync(HttpClient http, string baseUrl, string body, string? key = null)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, baseUrl + "/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (key is not null) message.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        using var response = await http.SendAsync(message);
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!);
    }

    [Fact]
    public async Task OpenAisOwnClient_GetsTheGreedyAnswerOfAsk_PlainAndStreamed()
    {
        var (askCode, askOut, askErr) = await CliRun.Run("ask", "--image", Picture, "--query", Question, "--max-tokens", "8", "--json");
        Assert.True(askCode == 0, askErr);
        var ask = JsonNode.Parse(askOut)!;
        await using var server = await Server.StartAsync();
        var clients = Path.Combine(Repo.Root, "tests", "clients");
        Assert.True(File.Exists(Path.Combine(clients, "node_modules", "openai", "package.json")), "the openai npm package is not installed: ./test runs npm ci in tests/clients");
        var output = Tool.Run("node", [Path.Combine(clients, "openai_vision.mjs"), server.BaseUrl, Picture, Question, "8"]);
        var j = JsonNode.Parse(output)!;
        Assert.Equal((string)ask["set_name"]!, (string)j["model"]!);
        foreach (var way in new[] { "plain", "streamed" })
        {
            Assert.Equal(ask["token_ids"]!.ToJsonString(), j[way]!["ids"]!.ToJsonString());
            Assert.Equal((string)ask["answer"]!, (string)j[way]!["text"]!);
            Assert.Equal("stop", (string)j[way]!["finish"]!);
            // The prompt counts every position the answer attended to, the visual tokens among them.
            Assert.True((int)j[way]!["usage"]!["prompt_tokens"]! > (int)ask["tokens"]!, output);
            Assert.Equal(((JsonArray)ask["token_ids"]!).Count, (int)j[way]!["usage"]!["completion_tokens"]!);
        }
        Assert.True((int)j["streamed"]!["chunks"]! >= 3, output);  // role, content, finish (and usage)
    }

    [Fact]
    public async Task APictureSeenBefore_SkipsTheEncoder_AndOneQuestionOnNewPictures_IsPreparedOnce()
    {
        await using var server = await Server.StartAsync("--pipelines", "1");
        using var http = new HttpClient();
        var first = await PostAsync(http, server.BaseUrl, Request(DataUri(Picture)).ToJsonString());
        var again = await PostAsync(http, server.BaseUrl, Request(DataUri(Picture)).ToJsonString());
        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.Equal(HttpStatusCode.OK, again.Status);
        Assert.True((bool)first.Body["assistant"]!["vision_ran"]! && (double)first.Body["timings"]!["vision_ms"]! > 0);
        Assert.True((bool)again.Body["assistant"]!["picture_cached"]!);
        Assert.False((bool)again.Body["assistant"]!["vision_ran"]!);
        Assert.Equal(0.0, (double)again.Body["timings"]!["vision_ms"]!);
        Assert.Equal(first.Body["assistant"]!["token_ids"]!.ToJsonString(), again.Body["assistant"]!["token_ids"]!.ToJsonString());

        // Three other pictures, the same question: each is encoded, the question's text is not prepared again.
        var dir = Directory.CreateTempSubdirectory("assistant-serve-").FullName;
        for (int seed = 0; seed < 3; seed++)
        {
            var png = Path.Combine(dir, $"scene{seed}.png");
            var (code, _, err) = await CliRun.Run("world", "render", "--seed", (3000 + seed).ToString(System.Globalization.CultureInfo.InvariantCulture), "--out", png);
            Assert.True(code == 0, err);
            var r = await PostAsync(http, server.BaseUrl, Request(DataUri(png)).ToJsonString());
            Assert.Equal(HttpStatusCode.OK, r.Status);
            Assert.True((bool)r.Body["assistant"]!["vision_ran"]!);
            Assert.False((bool)r.Body["assistant"]!["question_prepared"]!);
            Assert.Equal(0.0, (double)r.Body["timings"]!["query_prefill_ms"]!);
        }
        var counters = (await PostAsync(http, server.BaseUrl, Request(DataUri(Picture)).ToJsonString())).Body["assistant"]!["counters"]!;
        Assert.Equal(6, (long)counters["answers"]!);
        Assert.Equal(5, (long)counters["vision_runs"]!);  // the first picture twice, three others, the first again
        Assert.Equal(1, (long)counters["question_preparations"]!);
    }

    [Fact]
    public async Task StopStrings_EndTheAnswerBeforeThem_PlainAndStreamed_AndTheTokenLimitSaysLength()
    {
        await using var server = await Server.StartAsync();
        using var http = new HttpClient();
        JsonObject Long(int max) => With(Request(DataUri(Picture), maxTokens: max), "assistant", new JsonObject { ["ignore_stop"] = true });
        var full = await PostAsync(http, server.BaseUrl, Long(12).ToJsonString());
        Assert.Equal(HttpStatusCode.OK, full.Status);
        Assert.Equal("length", (string)full.Body["choices"]![0]!["finish_reason"]!);
        string text = (string)full.Body["choices"]![0]!["message"]!["content"]!;
        Assert.True(text.Length >= 6, text);
        // A stop string that starts inside one token and ends inside a later one.
        int at = text.Length / 2;
        string stop = text.Substring(at, Math.Min(3, text.Length - at));
        int first = text.IndexOf(stop, StringComparison.Ordinal);
        var cut = await PostAsync(http, server.BaseUrl, With(Long(12), "stop", new JsonArray("never-said", stop)).ToJsonString());
        Assert.Equal(text[..first], (string)cut.Body["choices"]![0]!["message"]!["content"]!);
        Assert.Equal("stop", (string)cut.Body["choices"]![0]!["finish_reason"]!);
        var curl = Tool.Run("curl", ["-sN", "-H", "Content-Type: application/json", "-d", With(With(Long(12), "stop", stop), "stream", true).ToJsonString(), server.BaseUrl + "/chat/completions"]);
        var streamed = new System.Text.StringBuilder();
        foreach (var line in curl.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
            streamed.Append((string?)JsonNode.Parse(line[6..])!["choices"]![0]!["delta"]!["content"] ?? "");
        Assert.Equal(text[..first], streamed.ToString());
        Assert.EndsWith("data: [DONE]", curl.Trim(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ALatencyBudget_LetsThePlannerChoose_AsPlanDoes()
    {
        var cache = new Dictionary<string, string> { ["ASSISTANT_CACHE"] = Directory.CreateTempSubdirectory("assistant-serve-cache-").FullName };
        var (code, planOut, planErr) = await AssistantProcess.RunAsync(["plan", "--latency-ms", "1000", "--json"], cache);
        Assert.True(code == 0, planErr);
        var choice = JsonNode.Parse(planOut)!["choice"]!;
        var p = AssistantProcess.Start(["serve", "--port", "0"], cache);
        await using var _ = p;
        Assert.True(await p.WaitForOutputAsync(o => o.Contains(" at http://", StringComparison.Ordinal)), p.Err);
        string baseUrl = p.Out.Split(" at ")[1].Split(' ')[0];
        using var http = new HttpClient();
        var (status, body) = await PostAsync(http, baseUrl, With(Request(DataUri(Picture)), "assistant", new JsonObject { ["latency_ms"] = 1000 }).ToJsonString());
        Assert.True(status == HttpStatusCode.OK, body.ToJsonString());
        Assert.Equal((string)choice["decoder"]!, (string)body["assistant"]!["decoder"]!);
        Assert.Equal((int)choice["tokens"]!, (int)body["assistant"]!["tokens"]!);
        var both = await PostAsync(http, baseUrl, With(Request(DataUri(Picture)), "assistant", new JsonObject { ["latency_ms"] = 1000, ["tokens"] = 4 }).ToJsonString());
        Assert.Equal(HttpStatusCode.BadRequest, both.Status);
    }

    [Fact]
    public async Task AQuestionAboutText_IsAnsweredByReadingIt_AsAskRoutesIt()
    {
        var png = Path.Combine(Path.GetTempPath(), $"assistant-serve-text-{Guid.NewGuid():N}.png");
        TextLines.RenderText("Build 4127 succeeded", png, "DejaVu Sans", 24, "black", "white");
        await using var server = await Server.StartAsync();
        using var http = new HttpClient();
        var read = await PostAsync(http, server.BaseUrl, Request(DataUri(png), "what does the message say?").ToJsonString());
        Assert.True(read.Status == HttpStatusCode.OK, read.Body.ToJsonString());
        Assert.Equal("Build 4127 succeeded", (string)read.Body["choices"]![0]!["message"]!["content"]!);
        Assert.Equal("ocr", (string)read.Body["assistant"]!["route"]!);
        Assert.Equal("Build 4127 succeeded", (string)read.Body["assistant"]!["lines"]![0]!["text"]!);
        // Forced to the model, as ask --route visual: the VLM answers (a world set, so its words must be the world's).
        var visual = await PostAsync(http, server.BaseUrl,
            With(Request(DataUri(png), "how many circles are there?"), "assistant", new JsonObject { ["route"] = "visual" }).ToJsonString());
        Assert.True(visual.Status == HttpStatusCode.OK, visual.Body.ToJsonString());
        Assert.NotNull(visual.Body["assistant"]!["token_ids"]);
        var bad = await PostAsync(http, server.BaseUrl, With(Request(DataUri(png)), "assistant", new JsonObject { ["route"] = "sideways" }).ToJsonString());
        Assert.Equal(HttpStatusCode.BadRequest, bad.Status);
    }

    [Fact]
    public async Task BadRequests_AreOpenAIErrors_WithTheirStatus_AndNothingChanges()
    {
        var allowed = Directory.CreateTempSubdirectory("assistant-serve-allowed-").FullName;
        File.Copy(Picture, Path.Combine(allowed, "inside.png"));
        var outside = Path.Combine(Directory.CreateTempSubdirectory("assistant-serve-outside-").FullName, "outside.png");
        File.Copy(Picture, outside);
        File.CreateSymbolicLink(Path.Combine(allowed, "link.png"), outside);
        // A link whose target's own path runs through a folder link out of the allowed folder.
        Directory.CreateSymbolicLink(Path.Combine(allowed, "away"), Path.GetDirectoryName(outside)!);
        File.CreateSymbolicLink(Path.Combine(allowed, "indirect.png"), Path.Combine(allowed, "away", "outside.png"));
        await using var server = await Server.StartAsync("--allow-paths", allowed);
        using var http = new HttpClient();
        var noUser = new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = "be brief" }) };
        var big = Path.Combine(allowed, "big.json");
        await File.WriteAllTextAsync(big, Request("data:image/png;base64," + new string('A', 20 << 20)).ToJsonString());
        var cases = new (string Name, string Body, HttpStatusCode Status, string Fragment)[]
        {
            ("malformed JSON", "{\"messages\": [", HttpStatusCode.BadRequest, "not JSON"),
            ("no user turn", noUser.ToJsonString(), HttpStatusCode.BadRequest, "no user turn"),
            ("not an image", Request("data:image/png;base64," + Convert.ToBase64String(Encoding.UTF8.GetBytes("hello, not a picture"))).ToJsonString(), HttpStatusCode.BadRequest, "picture cannot be used"),
            ("a remote URL", Request("https://example.com/cat.png").ToJsonString(), HttpStatusCode.BadRequest, "remote image URLs are not fetched"),
            ("a path outside the folder", Request(outside).ToJsonString(), HttpStatusCode.BadRequest, "outside the folder"),
            ("a link out of the folder", Request(Path.Combine(allowed, "link.png")).ToJsonString(), HttpStatusCode.BadRequest, "outside the folder"),
            ("a link through a folder link", Request(Path.Combine(allowed, "indirect.png")).ToJsonString(), HttpStatusCode.BadRequest, "outside the folder"),
            ("no picture", new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = Question }) }.ToJsonString(), HttpStatusCode.BadRequest, "no picture"),
            ("an absurd max_tokens", Request(DataUri(Picture), maxTokens: 1_000_000).ToJsonString(), HttpStatusCode.BadRequest, "max_tokens"),
            ("an unknown decoder", With(Request(DataUri(Picture)), "assistant", new JsonObject { ["decoder"] = "nope" }).ToJsonString(), HttpStatusCode.BadRequest, "nope"),
        };
        foreach (var (name, body, status, fragment) in cases)
        {
            var (got, json) = await PostAsync(http, server.BaseUrl, body);
            Assert.True(got == status, $"{name}: {got} {json.ToJsonString()}");
            var error = json["error"]!;
            Assert.Contains(fragment, (string)error["message"]!, StringComparison.Ordinal);
            Assert.Equal("invalid_request_error", (string)error["type"]!);
        }
        // curl, for a 20 MB body: refused before it is read whole.
        var curl = Tool.Run("curl", ["-s", "-w", "\n%{http_code}", "-H", "Content-Type: application/json", "--data-binary", "@" + big, server.BaseUrl + "/chat/completions"]);
        Assert.EndsWith("413", curl.Trim(), StringComparison.Ordinal);
        Assert.Contains("\"request_too_large\"", curl, StringComparison.Ordinal);
        // A path inside the folder is allowed, and the server answers as before.
        var ok = await PostAsync(http, server.BaseUrl, Request(Path.Combine(allowed, "inside.png")).ToJsonString());
        Assert.Equal(HttpStatusCode.OK, ok.Status);
        Assert.Equal(1, (long)ok.Body["assistant"]!["counters"]!["answers"]!);  // no refused request ran the model
    }

    [Fact]
    public async Task AnApiKey_IsRequired_WhenSet_AndAForeignOriginIsRefused()
    {
        const string key = "test-key-0123456789abcdef";
        await using var server = await Server.StartAsync("--api-key", key);
        using var http = new HttpClient();
        var body = Request(DataUri(Picture)).ToJsonString();
        var none = await PostAsync(http, server.BaseUrl, body);
        var wrong = await PostAsync(http, server.BaseUrl, body, "test-key-0123456789abcdeX");
        var right = await PostAsync(http, server.BaseUrl, body, key);
        Assert.Equal(HttpStatusCode.Unauthorized, none.Status);
        Assert.Equal("invalid_api_key", (string)wrong.Body["error"]!["code"]!);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.Status);
        Assert.Equal(HttpStatusCode.OK, right.Status);
        Assert.DoesNotContain(key, server.Err, StringComparison.Ordinal);
        using var foreign = new HttpRequestMessage(HttpMethod.Post, server.BaseUrl + "/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        foreign.Headers.Add("Origin", "http://evil.example");
        foreign.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(foreign)).StatusCode);
        // Another address than loopback without a key: refused at start, one line.
        var (code, _, err) = await CliRun.Run("serve", "--bind", "0.0.0.0", "--port", "0");
        Assert.Equal(2, code);
        Assert.Matches(@"^error: binding 0\.0\.0\.0 exposes the API beyond this machine: set an API key .*\n?$", err);
    }

    [Fact]
    public async Task UnderLoad_EveryRequestIsAnsweredOrRefusedAtOnce_AndADisconnectedStreamFreesItsPipeline()
    {
        await using var server = await Server.StartAsync("--pipelines", "2", "--queue", "8");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(120) };
        var body = Request(DataUri(Picture)).ToJsonString();
        await PostAsync(http, server.BaseUrl, body);  // warm
        long residentBefore = Resident(server.Pid);
        var rounds = new List<(int Ok, int Refused, long Resident)>();
        for (int round = 0; round < 4; round++)
        {
            int ok = 0, refused = 0, other = 0;
            await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ =>
            {
                for (int i = 0; i < 10; i++)
                {
                    var (status, json) = await PostAsync(http, server.BaseUrl, body);
                    if (status == HttpStatusCode.OK && json["choices"]![0]!["message"]!["content"] is not null) Interlocked.Increment(ref ok);
                    else if (status == HttpStatusCode.TooManyRequests && (string)json["error"]!["code"]! == "queue_full") Interlocked.Increment(ref refused);
                    else Interlocked.Increment(ref other);
                }
            }));
            Assert.Equal(0, other);
            Assert.Equal(200, ok + refused);
            Assert.True(ok >= 10, $"{ok} answered, {refused} refused");
            rounds.Add((ok, refused, Resident(server.Pid)));
        }
        // Flat: after the second round (the heaps grown to their working size), the later rounds add at most a little.
        Assert.True(rounds[^1].Resident < rounds[1].Resident + (16L << 20), $"resident {residentBefore >> 20} -> {string.Join(" -> ", rounds.Select(r => r.Resident >> 20))} MiB");
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(http, server.BaseUrl, body)).Status);

        // A long stream (4,096 tokens past every stop: seconds of decoding) cut off after its first tokens.
        await using var single = await Server.StartAsync("--pipelines", "1", "--queue", "0");
        var longBody = With(With(Request(DataUri(Picture), maxTokens: 4096), "stream", true), "assistant", new JsonObject { ["ignore_stop"] = true }).ToJsonString();
        using (var cut = new CancellationTokenSource())
        {
            // Its own client, disposed below: that closes the connection, as a client that goes away does (a shared
            // client would first drain the response for up to 2 s to keep the connection).
            using var streamer = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 });
            using var message = new HttpRequestMessage(HttpMethod.Post, single.BaseUrl + "/chat/completions") { Content = new StringContent(longBody, Encoding.UTF8, "application/json") };
            using var response = await streamer.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cut.Token);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cut.Token));
            for (int chunks = 0; chunks < 3;)
                if ((await reader.ReadLineAsync(cut.Token))?.StartsWith("data: ", StringComparison.Ordinal) == true) chunks++;
            var busy = await PostAsync(http, single.BaseUrl, body);
            Assert.Equal(HttpStatusCode.TooManyRequests, busy.Status);  // the stream holds the only pipeline
            cut.Cancel();
        }
        var clock = Stopwatch.StartNew();
        HttpStatusCode next;
        while ((next = (await PostAsync(http, single.BaseUrl, body)).Status) == HttpStatusCode.TooManyRequests && clock.Elapsed < TimeSpan.FromSeconds(5))
            await Task.Delay(20);
        Assert.Equal(HttpStatusCode.OK, next);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"the pipeline came back after {clock.Elapsed.TotalSeconds:F1} s");
        output.WriteLine($"load: {string.Join(", then ", rounds.Select(r => $"{r.Ok} answered, {r.Refused} refused (429)"))}; " +
                         $"resident {residentBefore >> 20} -> {string.Join(" -> ", rounds.Select(r => r.Resident >> 20))} MiB; " +
                         $"after a cut stream the next request was answered in {clock.Elapsed.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public async Task LiveServe_AnswersARequestWithoutAPicture_AboutTheNewestFrame_AsATypedQuestion()
    {
        string record = Path.Combine(Directory.CreateTempSubdirectory("assistant-live-serve-").FullName, "run.jsonl");
        await using var live = AssistantProcess.Start(["live", "--serve", "--serve-port", "0", "--source", "world", "--realtime-fps", "20", "--record", record]);
        static string? UrlIn(string o) => o.Split('\n').FirstOrDefault(l => l.StartsWith("api: ", StringComparison.Ordinal))?["api: ".Length..].Split(' ')[0];
        Assert.True(await live.WaitForOutputAsync(o => UrlIn(o) is not null), live.Err);
        string baseUrl = UrlIn(live.Out)!;
        using var http = new HttpClient();
        var text = new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = Question }) }.ToJsonString();
        var (status, body) = await PostAsync(http, baseUrl, text);
        Assert.True(status == HttpStatusCode.OK, body.ToJsonString());
        Assert.True((bool)body["assistant"]!["live"]!);
        long frame = (long)body["assistant"]!["frame"]!;
        string answer = (string)body["choices"]![0]!["message"]!["content"]!;
        // The session shows it as it shows a typed question: the record's line for that frame has this question and answer.
        JsonNode? line = null;
        for (int i = 0; i < 50 && line is null; i++)
        {
            using var reader = new StreamReader(new FileStream(record, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
            line = (await reader.ReadToEndAsync()).Split('\n').Where(l => l.StartsWith("{\"frame\":", StringComparison.Ordinal))
                .Select(l => JsonNode.Parse(l)!).FirstOrDefault(j => (long)j["frame"]! == frame);
            if (line is null) await Task.Delay(100);
        }
        Assert.NotNull(line);
        Assert.Equal(Question, (string)line["question"]!);
        Assert.Equal(answer, (string)line["answer"]!);
        Assert.True((bool)line["answer_done"]!);
        Assert.Contains("new question: " + Question, live.Out, StringComparison.Ordinal);
        // A picture in the request is still answered about that picture, by a pipeline of its own.
        var withPicture = await PostAsync(http, baseUrl, Request(DataUri(Picture)).ToJsonString());
        Assert.Equal(HttpStatusCode.OK, withPicture.Status);
        Assert.Null(withPicture.Body["assistant"]!["live"]);
        // A question the set cannot take is refused at once, and the session keeps its question.
        var bad = await PostAsync(http, baseUrl, new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "what is a flurb?" }) }.ToJsonString());
        Assert.Equal(HttpStatusCode.BadRequest, bad.Status);
        Assert.Contains("flurb", (string)bad.Body["error"]!["message"]!, StringComparison.Ordinal);
    }

    private static long Resident(int pid) =>
        long.Parse(File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1],
            System.Globalization.CultureInfo.InvariantCulture) * 1024;
}
