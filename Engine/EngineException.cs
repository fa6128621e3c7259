namespace Assistant.Engine;

/// <summary>The engine's one user-facing failure (an empty query, an option out of range); one line, with an exit code.</summary>
public sealed class EngineException(string message, int exitCode = 2) : Exception(message)
{
    /// <summary>What the command line exits with (2: bad input).</summary>
    public int ExitCode { get; } = exitCode;
}
