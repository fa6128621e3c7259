namespace Assistant.Engine.Tests;

public sealed class TerminalTextTests
{
    [Theory]
    [InlineData("a red square", "a red square")]
    [InlineData("two\nlines\tand a tab", "two\nlines\tand a tab")]
    [InlineData("\u001b]0;pwned\u0007\u001b[2J", "\\x1b]0;pwned\\x07\\x1b[2J")]
    [InlineData("back\rover", "back\\rover")]
    [InlineData("c1 \u009b31m and del \u007f", "c1 \\x9b31m and del \\x7f")]
    [InlineData("ünïcödé 三角形", "ünïcödé 三角形")]
    public void ControlCharacters_OtherThanNewlineAndTab_AreEscaped(string text, string printed) =>
        Assert.Equal(printed, TerminalText.Printable(text));

    [Fact]
    public void TextWithNothingToEscape_IsTheSameString() => Assert.Same("plain", TerminalText.Printable("plain"));
}
