using System.Net;
using Assistant.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Assistant.Ui;

/// <summary>Where a local web host listens: the address as given, parsed, and whether it is loopback.</summary>
internal sealed record LocalEndpoint(string Bind, IPAddress? Address, int Port, bool Loopback)
{
    /// <summary>The host part of a URL to it (an IPv6 address in brackets).</summary>
    public string UrlHost => Bind.Contains(':') ? $"[{Bind}]" : Bind;
}

/// <summary>
/// What the overlay's and the API's web hosts (ASP.NET Core, Kestrel) share: the address checked in one line, a
/// quiet host that lives and dies with the command, start-up failures as one line, the Host and Origin checks, and
/// the stop.
/// </summary>
internal static class LocalWebHost
{
    /// <summary>Checks <paramref name="bind"/> and <paramref name="port"/>; a bad one is one <see cref="EngineException"/> line.</summary>
    public static LocalEndpoint Endpoint(string bind, int port)
    {
        if (port is < 0 or > 65535) throw new EngineException($"--port must be in 0..65535, got {port}");
        if (!IPAddress.TryParse(bind, out var address) && bind != "localhost")
            throw new EngineException($"--bind takes an IP address, got '{bind}'");
        return new LocalEndpoint(bind, address, port, bind == "localhost" || IPAddress.IsLoopback(address!));
    }

    /// <summary>A slim host on <paramref name="endpoint"/>: no logging providers, no console lifetime of its own.</summary>
    public static WebApplicationBuilder Builder(LocalEndpoint endpoint, long? maxRequestBodyBytes = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<IHostLifetime, CommandLifetime>();
        builder.WebHost.ConfigureKestrel(k =>
        {
            if (maxRequestBodyBytes is { } max) k.Limits.MaxRequestBodySize = max;
            if (endpoint.Bind == "localhost") k.ListenLocalhost(endpoint.Port);
            else k.Listen(endpoint.Address!, endpoint.Port);
        });
        return builder;
    }

    /// <summary>Starts <paramref name="app"/>; a port in use is one line. Returns the port it listens on (the free one chosen for 0).</summary>
    public static async Task<int> StartAsync(WebApplication app, LocalEndpoint endpoint)
    {
        try
        {
            await app.StartAsync();
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            throw new EngineException($"cannot listen on {endpoint.Bind}:{endpoint.Port}: {e.Message}");
        }
        return new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
    }

    /// <summary>A Host header naming this machine's loopback (anything else, on a loopback host, is DNS rebinding).</summary>
    public static bool IsLoopbackName(string host) => host is "127.0.0.1" or "localhost" or "[::1]" or "::1";

    /// <summary>Whether a request's Origin is this server itself.</summary>
    public static bool SameOrigin(string origin, HttpRequest request) =>
        Uri.TryCreate(origin, UriKind.Absolute, out var o) && o.Scheme == "http"
        && string.Equals(o.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase);

    /// <summary>Stops <paramref name="app"/> (2 s for open connections) and frees it.</summary>
    public static async ValueTask StopAsync(WebApplication app)
    {
        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2))) await app.StopAsync(stop.Token);
        await app.DisposeAsync();
    }

    /// <summary>
    /// The server lives and dies with the command that started it. The default console lifetime would add its own
    /// Ctrl+C and SIGTERM handlers and stop the server under a session still running; Termination handles signals.
    /// </summary>
    private sealed class CommandLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
