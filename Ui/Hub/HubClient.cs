using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Assistant.Engine;

namespace Assistant.Ui.Hub;

/// <summary>One file of a repository revision as the hub lists it: its size, and the hash it is checked against
/// (the SHA-256 of a large file kept in LFS, else the git blob id, a SHA-1 of "blob SIZE\0" and the bytes).</summary>
public sealed record HubFile(string Name, long Size, string? Sha256, string? GitBlob);

/// <summary>A repository at one commit: the commit the revision named, and its top-level files.</summary>
public sealed record HubRevision(string Repo, string Commit, IReadOnlyList<HubFile> Files);

/// <summary>
/// A client of the Hugging Face hub's HTTP API, as huggingface_hub speaks it: the revision's file listing from
/// <c>/api/models/REPO/revision/REV?blobs=true</c>, files from <c>/REPO/resolve/COMMIT/FILE</c> (redirects followed by
/// hand, so that the token goes to the hub's host only, never to the storage it redirects to), resumed with HTTP Range
/// and checked against the listed hash before they count. The endpoint is <c>HF_ENDPOINT</c> (default
/// https://huggingface.co) and the token <c>HF_TOKEN</c>, which is sent as a bearer token and never printed.
/// Every failure is one <see cref="EngineException"/> line. Not thread-safe: one download at a time.
/// </summary>
public sealed partial class HubClient : IDisposable
{
    /// <summary>The hub when HF_ENDPOINT is not set.</summary>
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>Tries per file: a connection cut mid-file is resumed from where it stopped this many times.</summary>
    public const int Attempts = 4;

    private const int MaxListingBytes = 16 << 20;
    private const int MaxRedirects = 8;

    private readonly HttpClient _http;
    private readonly string? _token;
    private readonly string _base;  // the endpoint without a trailing '/', as URLs are built on it and messages name it

    /// <param name="endpoint">The hub's base address (http or https).</param>
    /// <param name="token">A bearer token for private or gated repositories; null: none.</param>
    /// <param name="timeout">How long one request may wait for an answer or for its next bytes.</param>
    public HubClient(Uri endpoint, string? token, TimeSpan? timeout = null)
    {
        Endpoint = endpoint;
        _base = endpoint.GetLeftPart(UriPartial.Path).TrimEnd('/');
        _token = string.IsNullOrWhiteSpace(token) ? null : token.Trim();
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,  // the bytes hashed are the file's bytes
            ConnectTimeout = TimeSpan.FromSeconds(15),
        };
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("quecc-assistant", "1"));
        ReadTimeout = timeout ?? TimeSpan.FromSeconds(60);
    }

    /// <summary>The hub's base address.</summary>
    public Uri Endpoint { get; }

    /// <summary>How long a request may wait for its answer, and a download for its next bytes.</summary>
    public TimeSpan ReadTimeout { get; }

    /// <summary>The client of <c>HF_ENDPOINT</c> (or <paramref name="endpoint"/>) with <c>HF_TOKEN</c>.</summary>
    public static HubClient FromEnvironment(string? endpoint = null)
    {
        var text = endpoint ?? Environment.GetEnvironmentVariable("HF_ENDPOINT");
        if (string.IsNullOrWhiteSpace(text)) text = DefaultEndpoint;
        if (!Uri.TryCreate(text.Trim().TrimEnd('/'), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || !string.IsNullOrEmpty(uri.Query))
            throw new EngineException($"HF_ENDPOINT '{TerminalText.Printable(text)}' is not an http(s) address such as {DefaultEndpoint}");
        return new HubClient(uri, Environment.GetEnvironmentVariable("HF_TOKEN"));
    }

    /// <summary>OWNER/NAME, as the hub spells repositories (letters, digits, '.', '_', '-').</summary>
    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")]
    private static partial Regex RepoPattern();

    /// <summary>A branch, tag or commit: no "..", no leading '/', nothing outside these characters.</summary>
    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")]
    private static partial Regex RevisionPattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();

    /// <summary>Splits REPO[@REVISION] (revision default main); a malformed one is one line.</summary>
    public static (string Repo, string Revision) ParseReference(string reference)
    {
        var at = reference.IndexOf('@');
        var repo = at < 0 ? reference : reference[..at];
        var revision = at < 0 ? "main" : reference[(at + 1)..];
        if (!RepoPattern().IsMatch(repo) || repo.Contains(".."))
            throw new EngineException($"'{TerminalText.Printable(reference)}' is not a hub repository: write OWNER/NAME or OWNER/NAME@REVISION, e.g. llava-hf/llava-1.5-7b-hf");
        if (!RevisionPattern().IsMatch(revision) || revision.Contains("..") || revision.EndsWith('/'))
            throw new EngineException($"'{TerminalText.Printable(revision)}' is not a revision (a branch, a tag or a commit)");
        return (repo, revision);
    }

    /// <summary>The revision's commit and files; a missing repository or revision, or an unreachable hub, is one line.</summary>
    public async Task<HubRevision> RevisionAsync(string repo, string revision, CancellationToken cancellation)
    {
        var url = new Uri($"{_base}/api/models/{repo}/revision/{Uri.EscapeDataString(revision)}?blobs=true");
        using var response = await SendAsync(url, null, cancellation);
        if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.NotFound)
            throw Missing(response, repo, revision);
        if (!response.IsSuccessStatusCode)
            throw new EngineException($"the hub at {_base} answered {(int)response.StatusCode} {response.ReasonPhrase} for {repo}@{revision}");
        var body = await ReadCapped(response, MaxListingBytes, cancellation);
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            var commit = root.TryGetProperty("sha", out var sha) && sha.ValueKind == JsonValueKind.String ? sha.GetString()! : "";
            if (!CommitPattern().IsMatch(commit))
                throw new EngineException($"the hub at {_base} listed {repo}@{revision} without a commit id");
            var files = new List<HubFile>();
            if (root.TryGetProperty("siblings", out var siblings) && siblings.ValueKind == JsonValueKind.Array)
                foreach (var s in siblings.EnumerateArray())
                    if (File(s) is { } f) files.Add(f);
            return new HubRevision(repo, commit, files);
        }
        catch (JsonException e)
        {
            throw new EngineException($"the hub at {_base} sent a listing of {repo}@{revision} that is not JSON ({e.Message.Split('\n')[0]})");
        }
    }

    /// <summary>A listed file with a name, a size and a hash; anything else (a folder's file, a malformed entry) is skipped.</summary>
    private static HubFile? File(JsonElement s)
    {
        if (s.ValueKind != JsonValueKind.Object || !s.TryGetProperty("rfilename", out var n) || n.ValueKind != JsonValueKind.String) return null;
        var name = n.GetString()!;
        long size = -1;
        string? sha256 = null, blob = null;
        if (s.TryGetProperty("lfs", out var lfs) && lfs.ValueKind == JsonValueKind.Object)
        {
            if (lfs.TryGetProperty("sha256", out var h) && h.ValueKind == JsonValueKind.String) sha256 = h.GetString()!.ToLowerInvariant();
            if (lfs.TryGetProperty("size", out var z) && z.ValueKind == JsonValueKind.Number && z.TryGetInt64(out var lz)) size = lz;
        }
        if (size < 0 && s.TryGetProperty("size", out var sz) && sz.ValueKind == JsonValueKind.Number && sz.TryGetInt64(out var l)) size = l;
        if (s.TryGetProperty("blobId", out var b) && b.ValueKind == JsonValueKind.String) blob = b.GetString()!.ToLowerInvariant();
        bool hashed = (sha256 is not null && Regex.IsMatch(sha256, "^[0-9a-f]{64}$")) || (sha256 is null && blob is not null && CommitPattern().IsMatch(blob));
        return size >= 0 && hashed ? new HubFile(name, size, sha256, sha256 is null ? blob : null) : null;
    }

    private EngineException Missing(HttpResponseMessage response, string repo, string revision)
    {
        var code = response.Headers.TryGetValues("X-Error-Code", out var values) ? values.FirstOrDefault() : null;
        return code switch
        {
            "RevisionNotFound" => new EngineException($"{repo} has no revision '{revision}' at {_base}"),
            "EntryNotFound" => new EngineException($"{repo}@{revision} at {_base} lacks a file it listed"),
            "GatedRepo" => new EngineException($"{repo} at {_base} is gated: accept its terms on the hub, then set HF_TOKEN"),
            _ when response.StatusCode == HttpStatusCode.NotFound && code is null && _token is null =>
                new EngineException($"no repository {repo} (or no revision '{revision}' of it) at {_base}"),
            _ => new EngineException($"no repository {repo} at {_base}" + (_token is null ? " (a private one needs HF_TOKEN)" : " that this HF_TOKEN may read")),
        };
    }

    /// <summary>
    /// Downloads <paramref name="file"/> of <paramref name="commit"/> to <paramref name="part"/>, continuing what is
    /// already there (a download cut earlier), resuming after a cut connection up to <see cref="Attempts"/> times, then
    /// checks its hash: a file that disagrees is deleted and refused. <paramref name="progress"/> is told the bytes held
    /// so far; <paramref name="resumed"/> each offset a cut download went on from.
    /// </summary>
    public async Task DownloadAsync(string repo, string commit, HubFile file, string part, Action<long> progress, Action<long> resumed,
        CancellationToken cancellation)
    {
        var url = new Uri($"{_base}/{repo}/resolve/{commit}/{Uri.EscapeDataString(file.Name)}");
        for (int attempt = 1; ; attempt++)
        {
            long have = System.IO.File.Exists(part) ? new FileInfo(part).Length : 0;
            if (have > file.Size)
            {
                System.IO.File.Delete(part);
                have = 0;
            }
            if (have == file.Size) break;
            if (have > 0) resumed(have);
            try
            {
                await Fetch(url, file, part, have, progress, cancellation);
                break;
            }
            catch (Exception e) when (e is IOException or HttpRequestException or TimeoutException && !cancellation.IsCancellationRequested)
            {
                long now = System.IO.File.Exists(part) ? new FileInfo(part).Length : 0;
                if (attempt >= Attempts)
                    throw new EngineException($"the download of {file.Name} was cut at {now:N0} of {file.Size:N0} bytes {Attempts} times ({e.Message.Split('\n')[0]}); run the same command again to resume");
                await Task.Delay(TimeSpan.FromMilliseconds(250 * attempt), cancellation);
            }
        }
        Verify(file, part);
    }

    private async Task Fetch(Uri url, HubFile file, string part, long have, Action<long> progress, CancellationToken cancellation)
    {
        using var response = await SendAsync(url, have > 0 ? have : null, cancellation);
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            System.IO.File.Delete(part);  // the part on disk is not a prefix of what the hub has; start again
            throw new IOException("the hub refused to resume; starting the file again");
        }
        if (!response.IsSuccessStatusCode)
            throw new EngineException($"the hub at {_base} answered {(int)response.StatusCode} {response.ReasonPhrase} for {file.Name}");
        bool partial = response.StatusCode == HttpStatusCode.PartialContent;
        if (partial && response.Content.Headers.ContentRange?.From != have)
            throw new EngineException($"the hub at {_base} sent {file.Name} from byte {response.Content.Headers.ContentRange?.From} when asked for byte {have}");
        long offset = partial ? have : 0;  // a plain 200 is the whole file: the part is replaced
        await using var output = new FileStream(part, partial ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        await using var input = await response.Content.ReadAsStreamAsync(cancellation);
        var buffer = new byte[1 << 20];
        while (true)
        {
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            wait.CancelAfter(ReadTimeout);
            int n;
            try
            {
                n = await input.ReadAsync(buffer, wait.Token);
            }
            catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
            {
                throw new TimeoutException($"no bytes for {ReadTimeout.TotalSeconds:F0} s");
            }
            if (n == 0) break;
            if (offset + n > file.Size)
            {
                output.Close();
                System.IO.File.Delete(part);
                throw new EngineException($"the hub at {_base} sent more of {file.Name} than the {file.Size:N0} bytes it listed; the file was removed");
            }
            await output.WriteAsync(buffer.AsMemory(0, n), cancellation);
            offset += n;
            progress(offset);
        }
        if (offset < file.Size) throw new IOException($"the connection ended at byte {offset:N0}");
    }

    /// <summary>The file's hash against the listing's; a mismatch deletes it.</summary>
    private void Verify(HubFile file, string part)
    {
        string actual;
        using (var stream = System.IO.File.OpenRead(part))
        {
            if (file.Sha256 is not null)
                actual = Convert.ToHexStringLower(SHA256.HashData(stream));
            else
            {
                using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
                sha1.AppendData(System.Text.Encoding.ASCII.GetBytes($"blob {stream.Length}\0"));
                var buffer = new byte[1 << 20];
                int n;
                while ((n = stream.Read(buffer)) > 0) sha1.AppendData(buffer, 0, n);
                actual = Convert.ToHexStringLower(sha1.GetHashAndReset());
            }
        }
        var expected = file.Sha256 ?? file.GitBlob!;
        if (actual == expected) return;
        System.IO.File.Delete(part);
        throw new EngineException($"{file.Name} from {_base} has {(file.Sha256 is not null ? "SHA-256" : "git blob id")} {actual[..12]}..., " +
                                  $"not the {expected[..12]}... the hub lists; the file was removed");
    }

    /// <summary>A GET with the token (to the hub's own host only) and redirects followed by hand; an unreachable host is one line.</summary>
    private async Task<HttpResponseMessage> SendAsync(Uri url, long? from, CancellationToken cancellation)
    {
        for (int hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (_token is not null && SameHost(url, Endpoint))
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
            if (from is { } start) request.Headers.Range = new RangeHeaderValue(start, null);
            HttpResponseMessage response;
            using (var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellation))
            {
                wait.CancelAfter(ReadTimeout);
                try
                {
                    response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, wait.Token);
                }
                catch (HttpRequestException e) when (hop == 0 && url.Host == Endpoint.Host && e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError)
                {
                    throw new EngineException($"cannot reach the model hub at {_base} ({Reason(e)}); set HF_ENDPOINT to a mirror, or import a folder you have with `assistant models import`");
                }
                catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
                {
                    throw new TimeoutException($"{url.Host} did not answer within {ReadTimeout.TotalSeconds:F0} s");
                }
            }
            if ((int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { } location)
            {
                response.Dispose();
                if (hop >= MaxRedirects) throw new EngineException($"the hub at {_base} redirected {url.AbsolutePath} more than {MaxRedirects} times");
                url = location.IsAbsoluteUri ? location : new Uri(url, location);
                if (url.Scheme is not ("http" or "https")) throw new EngineException($"the hub at {_base} redirected to a {url.Scheme} address");
                continue;
            }
            return response;
        }
    }

    private static bool SameHost(Uri a, Uri b) =>
        string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port && a.Scheme == b.Scheme;

    private static string Reason(HttpRequestException e) =>
        (e.InnerException?.Message ?? e.Message).Split('\n')[0];

    private static async Task<byte[]> ReadCapped(HttpResponseMessage response, int cap, CancellationToken cancellation)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(cancellation);
        var memory = new MemoryStream();
        var buffer = new byte[1 << 16];
        int n;
        while ((n = await stream.ReadAsync(buffer, cancellation)) > 0)
        {
            if (memory.Length + n > cap) throw new EngineException($"the hub's listing is larger than {cap >> 20} MB");
            memory.Write(buffer, 0, n);
        }
        return memory.ToArray();
    }

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();
}
