using System.CommandLine;
using Assistant.Engine;
using Assistant.Ui.Serve;

namespace Assistant.Ui;

/// <summary><c>assistant serve</c>: the set loaded once, kept warm behind an OpenAI-compatible HTTP API until Ctrl+C.</summary>
internal static class ServeCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var models = new Option<string?>("--models") { Description = "model set folder (default: models/default)" };
        var ep = Cli.EpOption();
        var port = new Option<int>("--port") { Description = "port to listen on (0: a free one)", DefaultValueFactory = _ => 8080 };
        var bind = new Option<string>("--bind") { Description = "address to listen on; other than loopback only with an API key", DefaultValueFactory = _ => "127.0.0.1" };
        var apiKey = new Option<string?>("--api-key")
        {
            Description = "the key every request must send as 'Authorization: Bearer KEY' (at least 16 characters; or set ASSISTANT_API_KEY, which other users cannot read in the process list)",
        };
        var pipelines = new Option<int>("--pipelines") { Description = "requests answered at once, each on its own warm pipeline (memory: one set of buffers and caches each)", DefaultValueFactory = _ => 1 };
        var queue = new Option<int>("--queue") { Description = "requests that may wait for a pipeline; more get 429 at once", DefaultValueFactory = _ => 8 };
        var ocrModels = ReadCommand.OcrModelsOption();
        var allowPaths = new Option<string?>("--allow-paths") { Description = "a folder whose image files requests may name by path or file:// URL (default: data: URIs only)" };

        var command = new Command("serve", """
            Serve the model set warm behind an OpenAI-compatible API: GET /v1/models, POST /v1/chat/completions (pictures as data: URIs, streaming with "stream": true).
            Example:
              assistant serve --port 8080
              curl -s localhost:8080/v1/chat/completions -H 'Content-Type: application/json' -d '{"messages": [{"role": "user", "content": [{"type": "text", "text": "how many circles are there?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}]}]}'
            docs/SERVE.md has the whole API.
            """)
        {
            models, ep, port, bind, apiKey, pipelines, queue, allowPaths, ocrModels,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            string? key = parse.GetValue(apiKey) ?? (Environment.GetEnvironmentVariable("ASSISTANT_API_KEY") is { Length: > 0 } env ? env : null);
            var options = new ApiOptions(parse.GetValue(bind)!, parse.GetValue(port), key, parse.GetValue(allowPaths));
            int n = parse.GetValue(pipelines), q = parse.GetValue(queue);
            using var set = Cli.LoadModels(parse.GetValue(models), parse.GetValue(ep)!, stderr);
            using var pool = new AnswerPool(set, n, q);
            string ocrDir = parse.GetValue(ocrModels) ?? "", epName = parse.GetValue(ep)!;
            // A question about text on the picture is read with OCR, as ask routes it (the reader loads at the first one).
            await using var server = await ApiServer.StartAsync(options, set, pool, stderr, reader: () => TextReading.Load(ocrDir.Length == 0 ? null : ocrDir, epName));
            stdout.WriteLine($"serving '{set.Name}' on {set.Provider} at {server.BaseUrl} ({n} pipeline{(n == 1 ? "" : "s")}, queue {q}{(key is null ? "" : ", API key required")}); Ctrl+C stops");
            stdout.Flush();
            try
            {
                await Task.Delay(Timeout.Infinite, cancellation);
            }
            catch (OperationCanceledException)
            {
            }
            stdout.WriteLine($"stopped after {server.Served} answer{(server.Served == 1 ? "" : "s")}");
            return 0;
        });
        return command;
    }
}
