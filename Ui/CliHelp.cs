using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;

namespace Assistant.Ui;

/// <summary>
/// What the command line says about itself: parse errors in plain words (the option, the form it takes, what was
/// given; never a .NET type name), "did you mean" for a mistyped command, <c>assistant help [COMMAND]</c>, and an
/// example in every command's help.
/// </summary>
internal static partial class CliHelp
{
    /// <summary>One example per command, by its path: what a newcomer can run in a clone as written.</summary>
    private static readonly Dictionary<string, string[]> Examples = new()
    {
        ["ask"] = ["assistant ask --image models/default/golden/image.png --query \"how many circles are there?\""],
        ["models check"] = ["assistant models check models/default"],
        ["models calibrate-domain"] = ["assistant models calibrate-domain models/default"],
        ["models import"] = ["assistant models import ~/checkpoints/llava-interleave-qwen-0.5b-hf --out models/llava-0.5b --quant q8", "assistant models import ~/checkpoints/llava-interleave-qwen-0.5b-hf --out models/llava-0.5b-q4 --quant q4 --block 128"],
        ["models pull"] = ["assistant models pull llava-hf/llava-interleave-qwen-0.5b-hf --quant q8", "HF_ENDPOINT=https://hf-mirror.example assistant models pull llava-hf/llava-1.5-7b-hf@main --out models/llava-1.5-7b --quant q4"],
        ["models distill"] =
        [
            "assistant models distill models/world-llava --checkpoint models/world-llava-hf --baseline",
            "assistant models distill models/world-llava --checkpoint models/world-llava-hf --baseline --scenes 20000 --batch 64 --tokens 4 --steps 10000 --keep --threads 1",
            "assistant models distill models/llava-0.5b --checkpoint ~/checkpoints/llava-interleave-qwen-0.5b-hf --data ~/pictures --questions questions.txt --tokens 1,4 --steps 300",
        ],
        ["eval"] = ["assistant eval --n 600"],
        ["world render"] = ["assistant world render --seed 2000000 --out scene.png"],
        ["law fit"] = ["assistant law fit --points tests/data/paper_scaling_points.csv"],
        ["plan"] = ["assistant plan --latency-ms 50"],
        ["live"] = ["assistant live --frames 300", "assistant live --overlay"],
        ["hotkey"] = ["assistant hotkey --mode read --key F9"],
        ["capture"] = ["assistant capture --source world --out frame.png"],
        ["read"] = ["assistant read --image picture.png"],
        ["listen"] = ["assistant listen --file question.wav"],
        ["serve"] = ["assistant serve --port 8080"],
    };

    /// <summary>Adds each command's example to its help text (every command of <paramref name="root"/> that runs something).</summary>
    public static void AddExamples(RootCommand root)
    {
        foreach (var (path, command) in Walk(root, ""))
        {
            if (command.Action is null) continue;
            var lines = Examples.TryGetValue(path, out var e) ? e : throw new InvalidOperationException($"the command '{path}' has no example in CliHelp");
            command.Description = (command.Description ?? "").TrimEnd() + "\n\nExample" + (lines.Length > 1 ? "s" : "") + ":\n" +
                                  string.Join("\n", lines.Select(l => "  " + l));
        }
    }

    private static IEnumerable<(string Path, Command Command)> Walk(Command command, string path)
    {
        foreach (var sub in command.Subcommands)
        {
            string p = path.Length == 0 ? sub.Name : path + " " + sub.Name;
            yield return (p, sub);
            foreach (var inner in Walk(sub, p)) yield return inner;
        }
    }

    /// <summary>
    /// The arguments as the parser should see them: <c>help</c> and <c>help COMMAND...</c> become <c>--help</c>
    /// requests; a mistyped command is an error with the nearest name (null when the arguments are fine).
    /// </summary>
    public static (string[] Args, string? Error) Rewrite(RootCommand root, string[] args)
    {
        if (args is ["help", .. var rest]) return ([.. rest, "--help"], null);
        Command current = root;
        var path = new List<string> { "assistant" };
        foreach (var word in args)
        {
            if (word.StartsWith('-') || current.Subcommands.Count == 0) break;
            var next = current.Subcommands.FirstOrDefault(c => c.Name == word || c.Aliases.Contains(word));
            if (next is null)
            {
                var names = current.Subcommands.Select(c => c.Name).ToList();
                var near = names.OrderBy(n => Distance(n, word)).First();
                string hint = Distance(near, word) <= Math.Max(2, word.Length / 3) ? $": did you mean '{near}'?" : ".";
                return (args, $"unknown command '{Printable(word)}' for {string.Join(' ', path)}{hint} Its commands: {string.Join(", ", names)} (see {string.Join(' ', path)} --help)");
            }
            current = next;
            path.Add(next.Name);
        }
        return (args, null);
    }

    /// <summary>A parse error in plain words, naming the option and the form it takes.</summary>
    public static string Explain(ParseError error)
    {
        var option = error.SymbolResult switch
        {
            OptionResult o => o.Option,
            ArgumentResult { Parent: OptionResult o } => o.Option,
            _ => null,
        };
        string message = error.Message;
        if (TypeError().Match(message) is { Success: true } t)
            return $"{t.Groups["option"].Value} takes {Form(t.Groups["type"].Value)}, got '{Printable(t.Groups["value"].Value)}'";
        if (ChoiceError().Match(message) is { Success: true } c)
        {
            var choices = Quoted().Matches(c.Groups["choices"].Value).Select(m => m.Groups[1].Value);
            return $"{option?.Name ?? "the value"} must be one of {string.Join(", ", choices)}; got '{Printable(c.Groups["value"].Value)}'";
        }
        if (RequiredOption().Match(message) is { Success: true } r) return $"{r.Groups["option"].Value} is required";
        if (Unrecognized().Match(message) is { Success: true } u) return $"'{Printable(u.Groups["value"].Value)}' is not an option or argument of this command";
        return Engine.UserErrors.OneLine(message);
    }

    /// <summary>The errors worth showing first: a mistyped word before the missing command it caused.</summary>
    public static ParseError First(IReadOnlyList<ParseError> errors) =>
        errors.FirstOrDefault(e => Unrecognized().IsMatch(e.Message)) ?? errors[0];

    private static string Form(string type) => type switch
    {
        _ when type.Contains("Int32") || type.Contains("Int64") => "a whole number",
        _ when type.Contains("Single") || type.Contains("Double") => "a number",
        _ when type.Contains("Boolean") => "true or false",
        _ => "a value of the form its --help shows",
    };

    private static string Printable(string s) => Engine.UserErrors.OneLine(s.Length <= 60 ? s : s[..60] + "...");

    /// <summary>Edit distance (insertions, deletions, substitutions; a swap of neighbours counts one).</summary>
    internal static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }

    [GeneratedRegex(@"^Cannot parse argument '(?<value>.*)' for option '(?<option>[^']*)' as expected type '(?<type>[^']*)'", RegexOptions.Singleline)]
    private static partial Regex TypeError();

    [GeneratedRegex(@"^Argument '(?<value>.*)' not recognized\. Must be one of:(?<choices>.*)$", RegexOptions.Singleline)]
    private static partial Regex ChoiceError();

    [GeneratedRegex(@"'([^']*)'")]
    private static partial Regex Quoted();

    [GeneratedRegex(@"^Option '(?<option>[^']*)' is required")]
    private static partial Regex RequiredOption();

    [GeneratedRegex(@"^Unrecognized command or argument '(?<value>.*)'", RegexOptions.Singleline)]
    private static partial Regex Unrecognized();
}
