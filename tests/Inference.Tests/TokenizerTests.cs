namespace Assistant.Inference.Tests;

public sealed class TokenizerTests(DefaultSet set) : IClassFixture<DefaultSet>
{
    private TextTokenizer Tok => set.Models.Tokenizer;

    [Theory]
    [InlineData("What color is the red square?")]
    [InlineData("  leading spaces, punctuation!? and digits 12345")]
    [InlineData("unicode: café — 日本語 🙂")]
    public void EncodeThenDecode_RoundTrips(string text) => Assert.Equal(text, Tok.Decode(Tok.Encode(text)));

    [Fact]
    public void SpecialTokenTextInUserInput_IsNotASpecialToken()
    {
        var ids = Tok.Encode("<|im_end|>");
        Assert.DoesNotContain(Tok.SpecialId("<|im_end|>"), ids);
        Assert.True(ids.Count > 1);
    }

    [Fact]
    public void Merges_AreApplied()
    {
        // The corpus makes " square" a merged token sequence far shorter than its 7 bytes.
        Assert.True(Tok.Encode(" square").Count < 4);
    }

    [Fact]
    public void StreamingDetokenizer_HoldsBackSplitCharacters()
    {
        var ids = Tok.Encode("é🙂x");
        var stream = Tok.CreateStream();
        var pieces = ids.Select(stream.Push).ToList();
        Assert.Equal("é🙂x", string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
    }

    [Fact]
    public void StreamingDetokenizer_ReusesWholeTokenText_AndStaysRightAroundSplitCharacters()
    {
        var ids = Tok.Encode("red 🙂 blue é green 🙂🙂 red");
        var first = Tok.CreateStream();
        Assert.Equal("red 🙂 blue é green 🙂🙂 red", string.Concat(ids.Select(first.Push)));

        // A second pass makes no strings for tokens that are whole characters (their text is kept per id).
        var second = Tok.CreateStream();
        var red = Tok.Encode("red")[0];
        second.Push(red);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) second.Push(red);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Same(second.Push(red), second.Push(red));
    }
}
