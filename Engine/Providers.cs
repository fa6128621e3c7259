using Assistant.Inference;

namespace Assistant.Engine;

/// <summary>Execution providers from their command-line names, noting a fallback once.</summary>
internal static class Providers
{
    public static SessionFactory Factory(string ep, Action<string>? note)
    {
        var factory = new SessionFactory(SessionConfig.FromOption(ep));
        if (factory.FallbackReason is { } why) note?.Invoke($"note: {why}; running on the CPU");
        return factory;
    }
}
