using System.Text.Json.Serialization;
using Assistant.Engine;

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
    [property: JsonPropertyName("controls")] SessionControls Controls,
    [property: JsonPropertyName("width")] int Width,
    [property: JsonPropertyName("height")] int Height);

/// <summary>
/// The one hand-over between the live session and the overlay server. The session's observer publishes the
/// newest frame and its telemetry (a reference swap, no encoding on the session's thread); the server's
/// threads read the newest state, and hand control requests to <paramref name="requests"/> (the session's
/// inbox, which applies them at the start of its next frame). Newest wins: nothing queues up behind a slow page.
/// </summary>
public sealed class OverlayHub(Action<ControlChange>? requests = null)
{
    private readonly object _gate = new();
    private OverlayFrame? _telemetry;
    private FramePicture? _picture;
    private long _version;
    private (long Version, byte[] Bytes, string ContentType)? _preview;

    /// <summary>Raised (on the loop's thread) after each publish; subscribers must only signal, not work.</summary>
    public event Action? Published;

    /// <summary>Makes <paramref name="picture"/> and <paramref name="telemetry"/> the newest; raises <see cref="Published"/>.</summary>
    public void Publish(FramePicture picture, OverlayFrame telemetry)
    {
        lock (_gate)
        {
            _picture = picture;
            _telemetry = telemetry;
            _version++;
        }
        Published?.Invoke();
    }

    /// <summary>The newest telemetry and its version (one per publish).</summary>
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
        FramePicture? picture;
        long version;
        lock (_gate)
        {
            if (_preview is { } cached && cached.Version == _version) return (cached.Bytes, cached.ContentType);
            (picture, version) = (_picture, _version);
        }
        if (picture is null) return null;
        bool small = picture.Width * picture.Height <= 256 * 256;
        var bytes = small ? picture.EncodePng() : picture.EncodeJpeg();
        var type = small ? "image/png" : "image/jpeg";
        lock (_gate) _preview = (version, bytes, type);
        return (bytes, type);
    }

    /// <summary>Hands a validated request to the session (from a server thread).</summary>
    public void Request(ControlChange request) => requests?.Invoke(request);
}
