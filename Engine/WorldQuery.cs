using System.Text.RegularExpressions;
using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>
/// Queries for a set trained on the synthetic world: the model only knows the world's words, in lower case,
/// ending with '?'. Normalises a typed query to that form and names any word the set cannot understand,
/// instead of letting the decoder answer garbage.
/// </summary>
public static partial class WorldQuery
{
    [GeneratedRegex(@"[a-z]+")]
    private static partial Regex Word();

    /// <summary>The query the model sees; throws <see cref="EngineException"/> listing unknown words.</summary>
    public static string Normalize(string query, WorldSpec? world)
    {
        if (world is null) return query;
        var lower = query.ToLowerInvariant();
        var words = Word().Matches(lower).Select(m => m.Value).ToList();
        var known = world.Vocabulary.ToHashSet();
        var unknown = words.Where(w => !known.Contains(w)).Distinct().ToList();
        var stray = lower.Where(c => !char.IsAsciiLetterLower(c) && !char.IsWhiteSpace(c) && c is not ('?' or ',' or '.')).Distinct().ToList();
        if (unknown.Count > 0)
            throw new EngineException(
                $"this model set does not know the word{(unknown.Count > 1 ? "s" : "")} {string.Join(", ", unknown.Select(w => $"'{w}'"))}: it answers questions about coloured shapes, e.g. \"what color is the small square?\"");
        if (stray.Count > 0)
            throw new EngineException($"this model set reads only words and '?': remove {string.Join(" ", stray.Select(c => $"'{c}'"))}");
        return string.Join(' ', words) + "?";
    }
}
