using System.CommandLine;
using Assistant.Engine;

namespace Assistant.Ui;

/// <summary>
/// The `assistant` command line. Every user-facing failure is printed as one line on stderr with the
/// exception's exit code (2 for bad input); a stack trace is shown only with ASSISTANT_DEBUG=1.
/// </summary>
public static class Cli
{
    /// <param name="stdin">Lines typed while a live loop runs (new questions); null: none.</param>
    /// <param name="args">The command line, without the program name.</param>
    /// <param name="stdout">Where answers and reports go.</param>
    /// <param name="stderr">Where the one-line errors and notes go.</param>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, TextReader? stdin = null)
    {
        var root = new RootCommand("assistant: a real-time visual assistant (QueCC + an inference-optimal decoder on ONNX Runtime)");
        root.Subcommands.Add(AskCommand.Create(stdout, stderr));
        root.Subcommands.Add(ModelsCommand.Create(stdout, stderr));
        root.Subcommands.Add(EvalCommand.Create(stdout, stderr));
        root.Subcommands.Add(WorldCommand.Create(stdout));
        root.Subcommands.Add(LawCommand.Create(stdout, stderr));
        root.Subcommands.Add(PlanCommand.Create(stdout, stderr));
        root.Subcommands.Add(LiveCommand.Create(stdout, stderr, stdin));
        root.Subcommands.Add(HotkeyCommand.Create(stdout, stderr));
        root.Subcommands.Add(CaptureCommand.Create(stdout, stderr));
        root.Subcommands.Add(ReadCommand.Create(stdout, stderr));
        root.Subcommands.Add(ListenCommand.Create(stdout, stderr));
        root.Subcommands.Add(ServeCommand.Create(stdout, stderr));

        // Response files (@file) are off: nothing here needs them, and they let an argument name any file to read
        // (a FIFO blocks, /dev/zero grows without bound, a line of /etc/passwd came back in the error).
        CliHelp.AddExamples(root);
        var (words, mistyped) = CliHelp.Rewrite(root, args);
        if (mistyped is not null)
        {
            stderr.WriteLine($"error: {mistyped}");
            return 2;
        }
        var parse = root.Parse(words.Length == 0 ? ["--help"] : words, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Errors.Count > 0)
        {
            var path = string.Join(' ', CommandPath(parse).Prepend("assistant"));
            stderr.WriteLine($"error: {CliHelp.Explain(CliHelp.First(parse.Errors))} (see {path} --help)");
            return 2;
        }
        // Signals are handled here, not by System.CommandLine (its handler crashed on a second signal): see Termination.
        using var termination = new Termination(stderr);
        int code;
        try
        {
            code = await parse.InvokeAsync(new InvocationConfiguration
            {
                Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null,
            }, termination.Token);
        }
        catch (OperationCanceledException) when (termination.ExitCode is not null)
        {
            code = 0;  // replaced below
        }
        catch (Exception e) when (UserFacing(e) is { } exit)
        {
            stderr.WriteLine($"error: {UserErrors.OneLine(e.Message)}");
            return exit;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"internal error: {e.GetType().Name}: {UserErrors.OneLine(e.Message)}");
            if (Environment.GetEnvironmentVariable("ASSISTANT_DEBUG") == "1") stderr.WriteLine(e);
            return 1;
        }
        if (termination.ExitCode is { } stopped)
        {
            stderr.WriteLine($"stopped by {termination.SignalName}");
            return stopped;
        }
        return code;
    }

    private static int? UserFacing(Exception e) => UserErrors.ExitCode(e);

    private static IEnumerable<string> CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var r = parse.CommandResult; r.Parent is System.CommandLine.Parsing.CommandResult p; r = p)
            names.Insert(0, r.Command.Name);
        return names;
    }

    /// <summary>Resolves and loads the model set on the requested provider, noting on stderr when auto fell back to the CPU.</summary>
    internal static LoadedModels LoadModels(string? dir, string ep, TextWriter stderr) => LoadedModels.Load(dir, ep, stderr.WriteLine);

    /// <summary>
    /// Checks a file the user names for a command to write (<paramref name="option"/>), before any work: a folder or a
    /// file name whose extension is not among <paramref name="extensions"/> (the formats the command writes) is one
    /// specific line, not an "access denied" from the runtime or PNG bytes in a .jpg.
    /// </summary>
    internal static string OutputFile(string? path, string option, params string[] extensions)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new EngineException($"{option} needs a file name");
        string example = "frame" + extensions[0];
        if (Directory.Exists(path))
            throw new EngineException($"{option} {path} is a folder: name a file in it, e.g. {Path.Combine(path, example)}");
        if (!extensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase))
            throw new EngineException($"{option} {path}: this command writes {string.Join(" or ", extensions.Select(e => e.TrimStart('.').ToUpperInvariant()))}; " +
                                      $"name the file {Path.ChangeExtension(Path.GetFileName(path), extensions[0])}");
        return path;
    }

    internal static Option<string> EpOption() => new("--ep")
    {
        Description = "execution provider: cpu, cuda[:N], dml[:N] (Windows; N: the DXGI adapter index) or auto",
        DefaultValueFactory = _ => "auto",
    };

    internal static Option<bool> JsonOption() => new("--json") { Description = "print one JSON object instead of text" };
}
