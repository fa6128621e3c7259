using System.Text.Json.Serialization;
using Assistant.Engine;

namespace Assistant.Ui.Overlay;

/// <summary>
/// The one hand-over between the live session and the overlay server. The session's observer publishes the
/// newest frame's report, its picture inside (a reference swap, no encoding on the session's thread); the server's
/// threads read the newest state, and hand control requests to <paramref name="requests"/> (the session's
/// inbox, which applies them at the start of its next frame). Newest wins: nothing queues up behind a slow page.
/// </summary>
public sealed class OverlayHub(Action<ControlChange>? requests = null)
{
    private readonly object _gate = new();
    private FrameReport? _report;
    private long _version;
    private (long Version, byte[] Bytes, string ContentType)? _preview;

    /// <summary>Raised (on the loop's thread) after each publish; subscribers must only signal, not work.</summary>
    public event Action? Published;

    /// <summary>Makes <paramref name="report"/> the newest; raises <see cref="Published"/>.</summary>
    public void Publish(FrameReport report)
    {
        lock (_gate)
        {
            _report = report;
            _version++;
        }
        Published?.Invoke();
    }

    /// <summary>The newest report and its version (one per publish).</summary>
    public (long Version, FrameReport? Report) Latest
    {
        get { lock (_gate) return (_version, _report); }
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
            (picture, version) = (_report?.Picture, _version);
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
