namespace Assistant.Engine.Tests;

/// <summary>The one error path's text: one terminal line, nothing that drives the terminal, bounded length.</summary>
public sealed class UserErrorsTests
{
    [Theory]
    [InlineData("plain message: ok", "plain message: ok")]
    [InlineData("two\nlines", "two\\nlines")]
    [InlineData("cr\rtab\tend", "cr\\rtab\\tend")]
    [InlineData("\u001b]0;title\u0007 \u001b[31mred", "\\x1b]0;title\\x07 \\x1b[31mred")]
    [InlineData("nul\0bytes\0", "nul\\x00bytes\\x00")]
    [InlineData("rtl\u202eevil and a line\u2028separator", "rtl\\u202eevil and a line\\u2028separator")]
    [InlineData("unicode is kept: größe, 形, 🙂", "unicode is kept: größe, 形, 🙂")]
    public void OneLine_EscapesWhatCouldBreakTheLineOrDriveTheTerminal(string message, string expected) =>
        Assert.Equal(expected, UserErrors.OneLine(message));

    [Fact]
    public void OneLine_CutsAVeryLongMessage()
    {
        var line = UserErrors.OneLine(new string('a', 100_000));
        Assert.Equal(UserErrors.MaxMessageChars + 1, line.Length);
        Assert.EndsWith("…", line);
    }

    [Fact]
    public void OneLine_CountsEscapesInTheCut()
    {
        // Found by the fuzz suite: an escape written at character 399 carried the line to 405.
        var line = UserErrors.OneLine(new string('a', UserErrors.MaxMessageChars - 1) + "\u200e\u200e");
        Assert.Equal(UserErrors.MaxMessageChars, line.Length);
        Assert.EndsWith("a…", line);
    }

    [Fact]
    public void ExitCode_KnowsEveryLayersUserFacingFailure_AndNothingElse()
    {
        Assert.Equal(2, UserErrors.ExitCode(new EngineException("bad option")));
        Assert.Equal(1, UserErrors.ExitCode(new Inference.InferenceException("a graph failed", exitCode: 1)));
        Assert.Equal(2, UserErrors.ExitCode(new Capture.CaptureException("no camera")));
        Assert.Null(UserErrors.ExitCode(new InvalidOperationException("a bug")));
    }
}
