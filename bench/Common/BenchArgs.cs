using System.Globalization;

namespace Assistant.Bench;

/// <summary>
/// The bench programs' command line: <c>--name value</c> options and <c>--flag</c> switches. A value that is
/// not a number where one is needed ends the program with one line and exit code 2.
/// </summary>
internal sealed class BenchArgs(string[] args)
{
    public bool Has(string name) => Array.IndexOf(args, name) >= 0;

    public string Get(string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    public int Int(string name, int fallback) =>
        int.TryParse(Get(name, fallback.ToString(CultureInfo.InvariantCulture)), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : Fail<int>(name);

    public double Double(string name, double fallback) =>
        double.TryParse(Get(name, fallback.ToString(CultureInfo.InvariantCulture)), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : Fail<double>(name);

    private T Fail<T>(string name)
    {
        Console.Error.WriteLine($"error: {name} needs a number, got '{Get(name, "")}'");
        Environment.Exit(2);
        return default!;
    }

    /// <summary>The repository root (the folder holding Assistant.sln) above the running program, else the current folder.</summary>
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Assistant.sln"))) return dir.FullName;
        return Directory.GetCurrentDirectory();
    }
}
