// What the overlay costs the frame loop: the same live run on the moving world without the overlay and
// with it, while a client polls the preview at 15 fps and reads the telemetry WebSocket, as a browser
// would. Runs alternate (off, on, off, on, ...) so drift in the machine's load hits both alike; reported:
// the ratio of the loop's time per frame (its p50 and p95 over the run's frames, waiting for the source
// excluded). --fps F captures at F frames a second (the overlay's use); 0 runs the loop flat out. Usage:
//   dotnet run -c Release --project bench/Overlay -- [--frames N] [--rounds R] [--fps F] [--json]
using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Assistant.Ui;

var cli = new Assistant.Bench.BenchArgs(args);
int frames = cli.Int("--frames", 300);
int rounds = cli.Int("--rounds", 3);
double fps = cli.Double("--fps", 15);
string[] common = ["live", "--source", "world:2000000", "--query", "how many circles are there?", "--frames", frames.ToString(CultureInfo.InvariantCulture),
    .. fps > 0 ? new[] { "--realtime-fps", fps.ToString(CultureInfo.InvariantCulture) } : []];

async Task<(double WallMs, double P50Ms, double P95Ms, long Previews, long Messages)> RunOnce(bool overlay)
{
    var stdout = new WatchedWriter();
    long previews = 0, messages = 0;
    using var stop = new CancellationTokenSource();
    Task? client = null;
    var run = Task.Run(() => Cli.RunAsync(overlay ? [.. common, "--overlay", "--port", "0"] : common, stdout, TextWriter.Null));
    if (overlay)
    {
        var url = await stdout.Overlay.Task;
        client = Task.Run(async () =>
        {
            using var http = new HttpClient();
            using var ws = new ClientWebSocket();
            await ws.ConnectAsync(new Uri(url.Replace("http://", "ws://") + "ws"), stop.Token);
            var reader = Task.Run(async () =>
            {
                var buffer = new byte[16384];
                try { while (true) { await ws.ReceiveAsync(buffer, stop.Token); Interlocked.Increment(ref messages); } }
                catch (Exception e) when (e is OperationCanceledException or WebSocketException) { }
            });
            var period = TimeSpan.FromSeconds(1 / 15.0);
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    var next = DateTime.UtcNow + period;
                    await http.GetByteArrayAsync(url + "preview?n=" + previews, stop.Token);
                    previews++;
                    var wait = next - DateTime.UtcNow;
                    if (wait > TimeSpan.Zero) await Task.Delay(wait, stop.Token);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or HttpRequestException) { }
            await reader;
        });
    }
    int code = await run;
    stop.Cancel();
    if (client is not null) await client;
    if (code != 0) throw new InvalidOperationException($"live exited {code}: {stdout}");
    var text = stdout.ToString();
    var m = Regex.Match(text, @"(\d+) frames from .* in ([\d.]+) s");
    var p = Regex.Match(text, @"ms p50/p95: frame ([\d.]+)/([\d.]+);");
    return (1000 * double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) / int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
        double.Parse(p.Groups[1].Value, CultureInfo.InvariantCulture), double.Parse(p.Groups[2].Value, CultureInfo.InvariantCulture), previews, messages);
}

await RunOnce(false);  // warm-up: first loads pay for JIT and ONNX Runtime's initialisation
var off = new List<(double WallMs, double P50Ms, double P95Ms, long Previews, long Messages)>();
var on = new List<(double WallMs, double P50Ms, double P95Ms, long Previews, long Messages)>();
for (int r = 0; r < rounds; r++)
{
    off.Add(await RunOnce(false));
    on.Add(await RunOnce(true));
}
double Median(IEnumerable<double> xs) { var s = xs.Order().ToList(); return s[s.Count / 2]; }

// What the overlay adds on the loop's own thread: building a frame's telemetry and publishing it (with a
// page connected to the WebSocket and the preview polled, so the hand-over is contended as in use).
double publishUs;
{
    var hub = new Assistant.Ui.Overlay.OverlayHub();
    await using var server = await Assistant.Ui.Overlay.OverlayServer.StartAsync(new Assistant.Ui.Overlay.OverlayOptions(Port: 0), hub, []);
    using var ws = new ClientWebSocket();
    await ws.ConnectAsync(new Uri($"ws://127.0.0.1:{server.Port}/ws"), CancellationToken.None);
    using var stopReading = new CancellationTokenSource();
    var drain = Task.Run(async () =>
    {
        var buffer = new byte[16384];
        try { while (true) await ws.ReceiveAsync(buffer, stopReading.Token); }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException) { }
    });
    var picture = Assistant.Engine.FramePicture.FromRgb(new byte[64 * 64 * 3], 64, 64);
    var stages = new[] { "preprocess", "vision", "query_prefill", "quecc", "visual_prefill", "decode" };
    const int publishes = 20000;
    var clock = Stopwatch.StartNew();
    for (int i = 0; i < publishes; i++)
    {
        var report = new Assistant.Engine.FrameReport
        {
            Index = i, CapturedSeconds = i / 30.0, Question = "how many circles are there?", Answer = "two", AnswerDone = true,
            AnswerRestarted = false, NewTokens = 1, Truth = "two", Correct = true, LiveAccuracy = 0.9, VisionRan = true,
            QueryPrefilled = false, CompressorRan = true, SceneChange = 0.1f, StageMs = stages.ToDictionary(s => s, s => 1.0 + i),
            FrameMs = 7.0, RunMs = 6.0, AcquireMs = 0.1, ElapsedMs = 7.1, Fps = 140, IsRunningSlowly = false, Dropped = 0,
            Choice = new Assistant.Engine.ModelChoice("large-d192-l5", "quecc", 4), Flops = 6.5e7, BudgetFlops = null,
            Controls = new Assistant.Engine.SessionControls(null, null, null, "live", false),
            Counters = new Assistant.Engine.LoopCounters(i, i, 1, i), Picture = picture,
        };
        hub.Publish(report);
    }
    publishUs = clock.Elapsed.TotalMilliseconds * 1000 / publishes;
    stopReading.Cancel();
    await drain;
}

var result = new Dictionary<string, object>
{
    ["bench"] = "overlay_overhead", ["frames"] = frames, ["rounds"] = rounds, ["capture_fps"] = fps,
    ["off_p50_ms"] = Median(off.Select(x => x.P50Ms)), ["on_p50_ms"] = Median(on.Select(x => x.P50Ms)),
    ["off_p95_ms"] = Median(off.Select(x => x.P95Ms)), ["on_p95_ms"] = Median(on.Select(x => x.P95Ms)),
    ["on_over_off_p50"] = Median(on.Select(x => x.P50Ms)) / Median(off.Select(x => x.P50Ms)),
    ["on_over_off_p95"] = Median(on.Select(x => x.P95Ms)) / Median(off.Select(x => x.P95Ms)),
    ["on_over_off_wall_per_frame"] = Median(on.Select(x => x.WallMs)) / Median(off.Select(x => x.WallMs)),
    ["previews_per_s"] = on.Average(x => x.Previews / (x.WallMs * frames / 1000)),
    ["messages_per_s"] = on.Average(x => x.Messages / (x.WallMs * frames / 1000)),
    ["publish_us_per_frame"] = publishUs,
    ["publish_share_of_off_p50"] = publishUs / 1000 / Median(off.Select(x => x.P50Ms)),
    ["machine"] = $"{Environment.ProcessorCount} cores", ["date"] = DateTime.UtcNow.ToString("u", CultureInfo.InvariantCulture),
};
Console.WriteLine(cli.Has("--json") ? JsonSerializer.Serialize(result)
    : string.Join("  ", result.Select(kv => kv.Value is double x ? $"{kv.Key}={x:F3}" : $"{kv.Key}={kv.Value}")));
return 0;

/// <summary>Collects what the command prints and hands over the overlay's URL as soon as it is printed.</summary>
internal sealed class WatchedWriter : StringWriter
{
    public TaskCompletionSource<string> Overlay { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override void WriteLine(string? value)
    {
        lock (this) base.WriteLine(value);
        if (value is not null && value.StartsWith("overlay: ", StringComparison.Ordinal)) Overlay.TrySetResult(value["overlay: ".Length..].Split(' ')[0]);
    }

    public override string ToString() { lock (this) return base.ToString(); }
}
