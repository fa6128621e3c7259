namespace Assistant.Capture.Screen;

/// <summary>A global hotkey: each press wakes one <see cref="WaitAsync"/>.</summary>
public interface IGlobalHotkey : IDisposable
{
    /// <summary>The key as grabbed, e.g. F9.</summary>
    string Key { get; }

    /// <summary>Waits for the next press; false when cancelled first.</summary>
    Task<bool> WaitAsync(CancellationToken cancellation);
}
