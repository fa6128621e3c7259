using System.Text.RegularExpressions;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

/// <summary>The documents name only what a clone has: every repository path they mention exists, none points outside it.</summary>
public sealed partial class DocsTests
{
    private static IEnumerable<string> Documents() =>
        new[] { "README.md", "models/README.md", "tools/gpu/README.md" }.Select(p => Path.Combine(Repo.Root, p)).Where(File.Exists)
            .Concat(Directory.GetFiles(Path.Combine(Repo.Root, "docs"), "*.md"));

    [GeneratedRegex(@"(?<![\w./-])((?:tests|docs|tools|models|bench|Engine|Inference|Capture|Ui|Shaders)/[\w./-]*\w\.(?:csv|jsonl|json|png|py|sh|md|cs|mjs|onnx|txt))(?![\w])")]
    private static partial Regex RepoPath();

    [Fact]
    public void EveryRepositoryFileADocumentNames_IsInTheRepository()
    {
        var missing = new List<string>();
        foreach (var doc in Documents())
            foreach (Match m in RepoPath().Matches(File.ReadAllText(doc)))
                if (!File.Exists(Path.Combine(Repo.Root, m.Groups[1].Value)))
                    missing.Add($"{Path.GetRelativePath(Repo.Root, doc)}: {m.Groups[1].Value}");
        Assert.Empty(missing);
    }

    [Fact]
    public void NoDocumentPointsOutsideTheRepository()
    {
        foreach (var doc in Documents())
        {
            var text = File.ReadAllText(doc);
            Assert.DoesNotContain("../shared", text, StringComparison.Ordinal);
            Assert.DoesNotContain("/work/", text, StringComparison.Ordinal);
        }
    }
}
