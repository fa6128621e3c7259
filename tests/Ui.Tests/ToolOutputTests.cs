using Assistant.Ui;
using Xunit;

namespace Assistant.Tests;

/// <summary>Ui/ToolOutput.cs: a tool child's lines pass up to a cap, then only the last ones, printed at the end.</summary>
public sealed class ToolOutputTests
{
    private static string Through(string text, int maxLines)
    {
        var to = new StringWriter();
        var output = new ToolOutput(to, maxLines);
        foreach (var chunk in text.Chunk(7)) output.Write(chunk);  // lines arrive cut anywhere
        output.Close();
        return to.ToString();
    }

    [Fact]
    public void PastTheCap_OnlyTheLastLinesArePrinted_AfterACount()
    {
        var text = string.Concat(Enumerable.Range(1, 100).Select(i => $"line {i}\n")) + "summary: done";
        var lines = Through(text, 20).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Enumerable.Range(1, 20).Select(i => $"line {i}"), lines[..20]);
        Assert.Equal($"({101 - 20 - ToolOutput.TailLines} more lines of the tool's output not shown)", lines[20]);
        Assert.Equal([.. Enumerable.Range(101 - ToolOutput.TailLines + 1, ToolOutput.TailLines - 1).Select(i => $"line {i}"), "summary: done"], lines[21..]);
    }

    [Fact]
    public void UnderTheCap_EveryLinePasses_AndProgressRedrawsPassAsCarriageReturns()
    {
        var text = "[##   ] 1/3\r[#### ] 2/3\r[#####] 3/3\nheld out: 0.7\n";
        Assert.Equal(text, Through(text, 60));
    }

    [Fact]
    public void ALongLineIsCut_AndEscapesAreShownNotRun()
    {
        var printed = Through("\u001b[2J" + new string('x', 5_000) + "\n", 60);
        Assert.DoesNotContain('\u001b', printed);
        Assert.True(printed.TrimEnd('\n').Length <= ToolOutput.MaxLineChars, $"{printed.Length}");
        Assert.EndsWith("…\n", printed);
    }
}
