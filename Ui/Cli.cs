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
        var parse = root.Parse(args.Length == 0 ? ["--help"] : args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Errors.Count > 0)
        {
            var path = string.Join(' ', CommandPath(parse).Prepend("assistant"));
            stderr.WriteLine($"error: {UserErrors.OneLine(parse.Errors[0].Message)} (see {path} --help)");
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

    internal static Option<string> EpOption() => new("--ep")
    {
        Description = "execution provider: cpu, cuda[:N], dml[:N] (Windows; N: the DXGI adapter index) or auto",
        DefaultValueFactory = _ => "auto",
    };

    internal static Option<bool> JsonOption() => new("--json") { Description = "print one JSON object instead of text" };
}
