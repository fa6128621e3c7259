namespace Assistant.Ui.Tests;

/// <summary>Runs the command line in process and captures what it prints.</summary>
internal static class CliRun
{
    public static Task<(int Code, string Out, string Err)> Run(params string[] args) => RunWithInput(null, args);

    public static async Task<(int Code, string Out, string Err)> RunWithInput(string? stdin, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await Cli.RunAsync(args, stdout, stderr, stdin is null ? null : new StringReader(stdin));
        return (code, stdout.ToString(), stderr.ToString());
    }
}
