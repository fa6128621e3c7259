using System.Text.Json.Serialization;
using Assistant.Capture;

namespace Assistant.Ui.Overlay;

/// <summary>What the overlay shows about one frame; made by the loop, read by the server's threads.</summary>
public sealed record OverlayFrame(
    [property: JsonPropertyName("frame")] long Frame,
    [property: JsonPropertyName("query")] string Query,
    [property: JsonPropertyName("answer")] string Answer,
    [property: JsonPropertyName("answer_done")] bool AnswerDone,
    [property: JsonPropertyName("truth")] string? Truth,
    [property: JsonPropertyName("accuracy")] double? Accuracy,
    [property: JsonPropertyName("stages_ms")] IReadOnlyDictionary<string, double> StagesMs,
    [property: JsonPropertyName("frame_ms")] double FrameMs,
    [property: JsonPropertyName("fps")] double Fps,
    [property: JsonPropertyName("decoder")] string Decoder,
    [property: JsonPropertyName("compressor")] string Compressor,
    [property: JsonPropertyName("tokens")] int Tokens,
    [property: JsonPropertyName("flops")] double Flops,
    [property: JsonPropertyName("budget_flops")] double? BudgetFlops,
    [property: JsonPropertyName("controls")] OverlayControls Controls,
    [property: JsonPropertyName("width")] int Width,
    [property: JsonPropertyName("height")] int Height);

/// <summary>
/// The engine settings the page can change. Null means "auto": the latency budget picks decoder and V
/// through the planner; no budget leaves the manifest's defaults.
/// </summary>
public sealed record OverlayControls(
    [property: JsonPropertyName("latency_ms")] double? LatencyMs,
    [property: JsonPropertyName("decoder")] string? Decoder,
    [property: JsonPropertyName("tokens")] int? Tokens,
    [property: JsonPropertyName("mode")] string Mode,
    [property: JsonPropertyName("paused")] bool Paused);

/// <summary>A change asked for by the page: only the fields present change (query: a new question).</summary>
public sealed record ControlRequest(
    [property: JsonPropertyName("latency_ms")] double? LatencyMs = null,
    [property: JsonPropertyName("decoder")] string? Decoder = null,
    [property: JsonPropertyName("tokens")] string? Tokens = null,
    [property: JsonPropertyName("mode")] string? Mode = null,
    [property: JsonPropertyName("paused")] bool? Paused = null,
    [property: JsonPropertyName("query")] string? Query = null);

/// <summary>
/// The one hand-over between the frame loop and the overlay server. The loop publishes the newest frame
/// and its telemetry (a reference swap, no encoding on the loop's thread) and takes pending control
/// requests at the start of its next frame; the server's threads read the newest state and queue requests.
/// Newest wins on both sides: nothing queues up behind a slow page.
/// </summary>
public sealed class OverlayHub
{
    private readonly object _gate = new();
    private readonly Queue<ControlRequest> _requests = new();
    private OverlayFrame? _telemetry;
    private Frame? _picture;
    private long _version;
    private (long Version, byte[] Bytes, string ContentType)? _preview;

    /// <summary>Raised (on the loop's thread) after each publish; subscribers must only signal, not work.</summary>
    public event Action? Published;

    public void Publish(Frame picture, OverlayFrame telemetry)
    {
        lock (_gate)
        {
            _picture = picture;
            _telemetry = telemetry;
            _version++;
        }
        Published?.Invoke();
    }

    public (long Version, OverlayFrame? Telemetry) Latest
    {
        get { lock (_gate) return (_version, _telemetry); }
    }

    /// <summary>
    /// The newest picture, encoded on the caller's thread (not the loop's) once per published frame: PNG up
    /// to 256 x 256 (exact, and cheap at that size), JPEG above (a screen or camera frame).
    /// </summary>
    public (byte[] Bytes, string ContentType)? Preview()
    {
        Frame? picture;
        long version;
        lock (_gate)
        {
            if (_preview is { } cached && cached.Version == _version) return (cached.Bytes, cached.ContentType);
            (picture, version) = (_picture, _version);
        }
        if (picture is null) return null;
        bool small = picture.Width * picture.Height <= 256 * 256;
        var bytes = small ? Capture.World.PngFile.Encode(picture) : Capture.World.PngFile.EncodeJpeg(picture);
        var type = small ? "image/png" : "image/jpeg";
        lock (_gate) _preview = (version, bytes, type);
        return (bytes, type);
    }

    public void Request(ControlRequest request)
    {
        lock (_gate)
        {
            _requests.Enqueue(request);
            while (_requests.Count > 64) _requests.Dequeue();  // a runaway client cannot grow it
        }
    }

    /// <summary>The requests since the last call, oldest first (the loop applies them in order).</summary>
    public List<ControlRequest> TakeRequests()
    {
        lock (_gate)
        {
            var list = _requests.ToList();
            _requests.Clear();
            return list;
        }
    }
}
