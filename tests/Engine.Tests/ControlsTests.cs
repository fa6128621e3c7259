using System.Text.Json;

namespace Assistant.Engine.Tests;

/// <summary>The one control type and its one check: what the overlay posts, the flags and the session share.</summary>
public sealed class ControlsTests
{
    [Theory]
    [InlineData("auto", null)]
    [InlineData("4", 4)]
    [InlineData("65536", 65536)]
    public void TokenChoice_ReadsAutoOrAPlainCount(string text, int? count) => Assert.Equal(count, TokenChoice.Parse(text).Count);

    [Theory]
    [InlineData("0")]
    [InlineData("-4")]
    [InlineData("+4")]
    [InlineData("4.0")]
    [InlineData("1e3")]
    [InlineData(" 4")]
    [InlineData("65537")]
    [InlineData("\u001b[2J")]
    public void TokenChoice_RefusesAnythingElse_InOneLine(string text)
    {
        var e = Assert.Throws<EngineException>(() => TokenChoice.Parse(text));
        Assert.StartsWith("tokens must be a count or auto", e.Message);
        Assert.DoesNotContain("\u001b", e.Message);
    }

    [Fact]
    public void AnswerModes_HaveOneSpelling_ForFlagsControlsAndReports()
    {
        Assert.Equal(AnswerMode.Snapshot, AnswerModes.Parse("snapshot"));
        Assert.Equal("live", AnswerModes.Name(AnswerModes.Parse("live")));
        Assert.Equal("--mode must be live or snapshot, got 'fast'", Assert.Throws<EngineException>(() => AnswerModes.Parse("fast", "--mode")).Message);
    }

    [Fact]
    public void AControlChange_ReadsTheOverlaysJson_Typed_AndWritesItBack()
    {
        var change = JsonSerializer.Deserialize<ControlChange>("""{"latency_ms": 40, "tokens": "16", "mode": "snapshot", "decoder": "auto", "paused": true}""")!;
        Assert.Equal(new ControlChange(40, "auto", new TokenChoice(16), AnswerMode.Snapshot, true), change);
        Assert.Equal(change, JsonSerializer.Deserialize<ControlChange>(JsonSerializer.Serialize(change)));
        Assert.Equal(TokenChoice.Auto, JsonSerializer.Deserialize<ControlChange>("""{"tokens": "auto"}""")!.Tokens);
        Assert.Equal(new TokenChoice(4), JsonSerializer.Deserialize<ControlChange>("""{"tokens": 4}""")!.Tokens);  // a number is a number (issue 32)
        foreach (var bad in new[] { """{"mode": "sideways"}""", """{"tokens": 4.5}""", """{"tokens": 0}""", """{"tokens": "-1e9"}""", """{"mode": 1}""", """{"colour": "red"}""" })
            Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<ControlChange>(bad));
    }

    [Theory]
    [InlineData(-5.0, null, "latency_ms must be in 0..60000")]
    [InlineData(1e308, null, "latency_ms must be in 0..60000")]
    [InlineData(double.NaN, null, "latency_ms must be in 0..60000")]
    [InlineData(null, "", "decoder must be")]
    public void Check_HoldsTheRanges(double? latency, string? decoder, string message) =>
        Assert.StartsWith(message, Assert.Throws<EngineException>(() => new ControlChange(latency, decoder).Check()).Message);
}
