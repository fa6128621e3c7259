using Assistant.Inference;

namespace Assistant.Engine.Tests;

public sealed class WorldQueryTests
{
    private static readonly WorldSpec World = new("tools/world.py", 64,
        ["how", "many", "circles", "are", "there", "what", "color", "is", "the", "square"], ["one"], ["count"]);

    [Theory]
    [InlineData("How  many Circles are there", "how many circles are there?")]
    [InlineData("what color is the square ?", "what color is the square?")]
    [InlineData("  WHAT COLOR IS THE SQUARE?  ", "what color is the square?")]
    public void Normalize_LowercasesAndEndsWithAQuestionMark(string typed, string expected) =>
        Assert.Equal(expected, WorldQuery.Normalize(typed, World));

    [Fact]
    public void Normalize_NamesEveryUnknownWord()
    {
        var e = Assert.Throws<EngineException>(() => WorldQuery.Normalize("what color is the banana in the sky?", World));
        Assert.Contains("'banana'", e.Message);
        Assert.Contains("'in'", e.Message);
        Assert.Contains("'sky'", e.Message);
        Assert.DoesNotContain("'color'", e.Message);
        Assert.Equal(2, e.ExitCode);
    }

    [Fact]
    public void Normalize_RejectsDigitsAndSymbols()
    {
        var e = Assert.Throws<EngineException>(() => WorldQuery.Normalize("how many circles are there 3", World));
        Assert.Contains("'3'", e.Message);
    }

    [Fact]
    public void Normalize_LeavesQueriesAloneForSetsWithoutAWorld() =>
        Assert.Equal("Read the SIGN, please!", WorldQuery.Normalize("Read the SIGN, please!", null));
}
