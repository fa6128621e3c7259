using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Assistant.Ui.Tests;

/// <summary>
/// A local stand-in for the Hugging Face hub on loopback, speaking the shapes huggingface_hub reads: the revision
/// listing (<c>/api/models/REPO/revision/REV?blobs=true</c>: commit sha, siblings with size, blobId and, for LFS files,
/// lfs.sha256), <c>/REPO/resolve/COMMIT/FILE</c> (small files served directly with an ETag; safetensors redirected with
/// 302 to a storage host, here the same server under "localhost" where the hub is "127.0.0.1", as the hub redirects to
/// its CDN), HTTP Range (206 and Content-Range), and X-Error-Code on a missing repository or revision. Faults on demand:
/// a file cut halfway on its first whole request, a file served with one byte changed. Every request is logged.
/// </summary>
public sealed class HubServer : IDisposable
{
    /// <summary>One logged request: path and query, its Range header, its Authorization header, the host it was sent to.</summary>
    public sealed record Request(string Path, string? Range, string? Authorization, string Host);

    private sealed record Repo(string Commit, string Folder, IReadOnlyDictionary<string, string> Revisions, IReadOnlyList<string> Files);

    private readonly HttpListener _listener = new();
    private readonly ConcurrentDictionary<string, Repo> _repos = new();
    private readonly ConcurrentDictionary<string, bool> _cutOnce = new();
    private readonly ConcurrentBag<string> _corrupt = [];
    private readonly ConcurrentQueue<Request> _log = new();
    private readonly Task _loop;

    public HubServer()
    {
        Port = FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Prefixes.Add($"http://localhost:{Port}/");
        _listener.Start();
        _loop = Task.Run(Serve);
    }

    public int Port { get; }

    /// <summary>The hub's address, as HF_ENDPOINT gives it.</summary>
    public string Endpoint => $"http://127.0.0.1:{Port}";

    public IReadOnlyList<Request> Log => [.. _log];

    /// <summary>Serves <paramref name="folder"/>'s files as <paramref name="repo"/> at one commit, reachable as "main" and by the commit.</summary>
    public string Add(string repo, string folder)
    {
        var files = Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        var commit = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(repo + string.Join(",", files))));
        _repos[repo] = new Repo(commit, folder, new Dictionary<string, string> { ["main"] = commit, [commit] = commit }, files!);
        return commit;
    }

    /// <summary>The first whole request for <paramref name="file"/> sends half of it and drops the connection.</summary>
    public void CutOnce(string file) => _cutOnce[file] = true;

    /// <summary><paramref name="file"/> is served with its middle byte changed (its listed hash stays the true one).</summary>
    public void Corrupt(string file) => _corrupt.Add(file);

    private static int FreePort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    private async Task Serve()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            _ = Task.Run(() => Handle(context));
        }
    }

    private void Handle(HttpListenerContext context)
    {
        var request = context.Request;
        var response = context.Response;
        _log.Enqueue(new Request(request.Url!.PathAndQuery, request.Headers["Range"], request.Headers["Authorization"], request.Url.Host));
        try
        {
            var path = Uri.UnescapeDataString(request.Url.AbsolutePath);
            var parts = path.Trim('/').Split('/');
            if (parts is ["api", "models", var owner, var name, "revision", var rev])
                Listing(response, $"{owner}/{name}", rev);
            else if (parts is [var o, var n, "resolve", var commit, var file])
                Resolve(response, $"{o}/{n}", commit, file);
            else if (parts is ["cdn", var repoKey, var cdnFile])
                Send(request, response, _repos[repoKey.Replace("--", "/")], cdnFile);
            else
                Error(response, 404, "EntryNotFound");
        }
        catch (HttpListenerException)
        {
            // the client went away
        }
    }

    private void Listing(HttpListenerResponse response, string repoName, string revision)
    {
        if (!_repos.TryGetValue(repoName, out var repo)) { Error(response, 401, "RepoNotFound"); return; }
        if (!repo.Revisions.TryGetValue(revision, out var commit)) { Error(response, 404, "RevisionNotFound"); return; }
        var siblings = repo.Files.Select(f =>
        {
            var bytes = File.ReadAllBytes(Path.Combine(repo.Folder, f));
            var blob = Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));
            return f.EndsWith(".safetensors", StringComparison.Ordinal)
                ? (object)new { rfilename = f, size = bytes.Length, blobId = blob, lfs = new { sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes)), size = bytes.Length, pointerSize = 134 } }
                : new { rfilename = f, size = bytes.Length, blobId = blob };
        });
        var body = JsonSerializer.SerializeToUtf8Bytes(new { id = repoName, sha = commit, siblings });
        response.ContentType = "application/json";
        response.ContentLength64 = body.Length;
        response.OutputStream.Write(body);
        response.Close();
    }

    private void Resolve(HttpListenerResponse response, string repoName, string commit, string file)
    {
        if (!_repos.TryGetValue(repoName, out var repo)) { Error(response, 401, "RepoNotFound"); return; }
        if (!repo.Revisions.ContainsKey(commit)) { Error(response, 404, "RevisionNotFound"); return; }
        if (!repo.Files.Contains(file)) { Error(response, 404, "EntryNotFound"); return; }
        if (file.EndsWith(".safetensors", StringComparison.Ordinal))
        {
            response.StatusCode = 302;
            response.RedirectLocation = $"http://localhost:{Port}/cdn/{repoName.Replace("/", "--")}/{file}";
            response.Headers["X-Repo-Commit"] = commit;
            response.Close();
            return;
        }
        Send(null, response, repo, file);
    }

    private void Send(HttpListenerRequest? request, HttpListenerResponse response, Repo repo, string file)
    {
        var bytes = File.ReadAllBytes(Path.Combine(repo.Folder, file));
        response.Headers["ETag"] = $"\"{Convert.ToHexStringLower(SHA256.HashData(bytes))}\"";
        response.Headers["Accept-Ranges"] = "bytes";
        if (_corrupt.Contains(file)) bytes[bytes.Length / 2] ^= 0x5A;
        long from = 0;
        var range = request?.Headers["Range"];
        if (range is not null && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            from = long.Parse(range["bytes=".Length..^1]);
            if (from >= bytes.Length) { response.StatusCode = 416; response.Close(); return; }
            response.StatusCode = 206;
            response.Headers["Content-Range"] = $"bytes {from}-{bytes.Length - 1}/{bytes.Length}";
        }
        response.ContentLength64 = bytes.Length - from;
        if (from == 0 && _cutOnce.TryRemove(file, out _))
        {
            response.OutputStream.Write(bytes, 0, bytes.Length / 2);
            response.OutputStream.Flush();
            response.Abort();  // the connection drops with half the promised bytes sent
            return;
        }
        response.OutputStream.Write(bytes, (int)from, bytes.Length - (int)from);
        response.Close();
    }

    private static void Error(HttpListenerResponse response, int status, string code)
    {
        response.StatusCode = status;
        response.Headers["X-Error-Code"] = code;
        var body = Encoding.UTF8.GetBytes($"{{\"error\":\"{code}\"}}");
        response.ContentLength64 = body.Length;
        response.OutputStream.Write(body);
        response.Close();
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        try { _loop.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
    }
}
