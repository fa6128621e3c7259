using Assistant.Capture.Screen;

namespace Assistant.Capture.Tests;

/// <summary>
/// The Windows screen source and hotkey cannot run on these Linux machines; what can be checked here is that
/// they refuse clearly off Windows, that the platform choice picks X11 here, and the key-name mapping.
/// </summary>
public sealed class WindowsScreenTests
{
    [Fact]
    public void OffWindows_TheGdiSourceAndHotkeyRefuseWithAClearError()
    {
        Assert.False(OperatingSystem.IsWindows(), "this checks the refusal off Windows");
        Assert.Contains("needs Windows", Assert.Throws<CaptureException>(() => new WindowsScreenSource()).Message);
        Assert.Contains("needs Windows", Assert.Throws<CaptureException>(() => new WindowsHotkey("F9")).Message);
    }

    [Theory]
    [InlineData("F1", 0x70u)]
    [InlineData("F9", 0x78u)]
    [InlineData("F24", 0x87u)]
    [InlineData("Pause", 0x13u)]
    [InlineData("Scroll_Lock", 0x91u)]
    [InlineData("a", (uint)'A')]
    [InlineData("7", (uint)'7')]
    public void HotkeyNames_MapToVirtualKeys(string name, uint vk) => Assert.Equal(vk, WindowsHotkey.VirtualKey(name));

    [Theory]
    [InlineData("F25")]
    [InlineData("F0")]
    [InlineData("NoSuchKey")]
    [InlineData("")]
    public void UnknownHotkeyNames_HaveNoVirtualKey(string name) => Assert.Null(WindowsHotkey.VirtualKey(name));
}

public sealed class WasapiMicrophoneTests
{
    [Fact]
    public void OffWindows_WasapiRefusesClearly_AndThePlatformMicrophoneIsAlsa()
    {
        Assert.False(OperatingSystem.IsWindows(), "this checks the refusal off Windows");
#pragma warning disable CA1416  // the point: what happens when it is called off Windows
        Assert.Contains("needs Windows", Assert.Throws<CaptureException>(() => new Audio.WasapiMicrophone()).Message);
#pragma warning restore CA1416
        using var mic = Audio.Microphones.Open("null");  // ALSA's null device: real alsa-lib, silence
        Assert.IsType<Audio.AlsaMicrophone>(mic);
        var samples = new float[512];
        mic.Read(samples);
        Assert.All(samples, s => Assert.Equal(0f, s));
    }
}
