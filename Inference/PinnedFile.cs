using System.Security.Cryptography;

namespace Assistant.Inference;

/// <summary>Third-party model files fetched outside git are checked against a pinned SHA-256 before use.</summary>
public static class PinnedFile
{
    /// <summary>Largest file hashed (1 GB; the pinned OCR and VAD files are a few MB each).</summary>
    public const long MaxBytes = 1L << 30;

    /// <summary>Returns <paramref name="path"/> if it exists and has the pinned hash; else a one-line error naming how to fetch it.</summary>
    public static string Verify(string path, string sha256, string fetchHint)
    {
        // Hashed only when it is a regular file of a sane size: a FIFO blocked the hash, /dev/zero never ended it.
        try
        {
            SetFile.Regular(path, "model file");
        }
        catch (InferenceException e)
        {
            throw new InferenceException($"{e.Message} ({fetchHint})");
        }
        if (SetFile.Target(new FileInfo(path)).Length > MaxBytes)
            throw new InferenceException($"model file {path} is larger than {MaxBytes >> 20} MB, far beyond the pinned file: delete it ({fetchHint})");
        string actual;
        using (var stream = File.OpenRead(path)) actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        if (actual != sha256)
            throw new InferenceException($"model file {path} has SHA-256 {actual[..12]}..., not the pinned {sha256[..12]}...: delete it ({fetchHint})");
        return path;
    }

    /// <summary>$<paramref name="variable"/>, else $ASSISTANT_CACHE/<paramref name="relative"/>, else the user's local data folder.</summary>
    public static string CacheDirectory(string variable, string relative)
    {
        var explicitDir = Environment.GetEnvironmentVariable(variable);
        if (!string.IsNullOrEmpty(explicitDir)) return explicitDir;
        var root = Environment.GetEnvironmentVariable("ASSISTANT_CACHE");
        if (string.IsNullOrEmpty(root))
            root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify), "assistant");
        return Path.Combine(root, relative);
    }
}
