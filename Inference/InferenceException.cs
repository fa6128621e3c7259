namespace Assistant.Inference;

/// <summary>
/// The one user-facing failure of the inference layer: a bad model set, a missing execution provider,
/// a tensor of the wrong shape. <see cref="Exception.Message"/> is a single line meant for the user;
/// <see cref="ExitCode"/> is what the command line exits with (2: bad input or configuration).
/// </summary>
public sealed class InferenceException(string message, int exitCode = 2, Exception? inner = null)
    : Exception(message, inner)
{
    /// <summary>What the command line exits with (2: bad input or configuration; 1: a runtime failure).</summary>
    public int ExitCode { get; } = exitCode;
}
