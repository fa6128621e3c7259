using System.Runtime.InteropServices;

namespace Assistant.Capture;

/// <summary>
/// Variables that native libraries read with getenv. On Linux, Environment.SetEnvironmentVariable changes only
/// .NET's own copy of the environment, which native code never sees; this sets the C library's.
/// </summary>
internal static partial class NativeEnvironment
{
    /// <summary>Sets <paramref name="name"/> for native code unless the user (or anyone) has set it already.</summary>
    public static void Default(string name, string value)
    {
        if (Environment.GetEnvironmentVariable(name) is not null) return;
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) _ = SetEnv(name, value, overwrite: 0);
        else Environment.SetEnvironmentVariable(name, value);  // Windows: the process environment block, which getenv reads at CRT start only
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
