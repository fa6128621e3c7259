using System.Text.Json;
using Assistant.Tests;

namespace Assistant.Ui.Tests;

/// <summary>
/// `assistant models pull` against a local hub on loopback (<see cref="HubServer"/>), run as a real process so that
/// HF_ENDPOINT, HF_TOKEN and the cache folder come from its environment: a download cut halfway resumes, a file whose
/// hash disagrees is refused and removed, a missing repository or revision and an unreachable hub are one line and
/// exit 2, and nothing half-imported is left. The checkpoint is a tiny llava-1.5 (tools/make_hf_checkpoint.py).
/// </summary>
public sealed class PullTests : IDisposable
{
    private const string Token = "hf_secretTOKEN0123456789";
    private const string Repo = "test-org/tiny-llava-1.5";
    private readonly string _root = Directory.CreateTempSubdirectory("assistant-pull-").FullName;
    private readonly HubServer _hub = new();
    private readonly string _commit;
    private readonly string _checkpoint;

    public PullTests()
    {
        _checkpoint = HfCheckpoints.MakeCheckpoint(_root, "--family", "llava-1.5");
        // What a real repository has beside the checkpoint, which the importer does not read.
        File.WriteAllText(Path.Combine(_checkpoint, "README.md"), "# tiny\n");
        File.WriteAllBytes(Path.Combine(_checkpoint, "pytorch_model.bin"), new byte[4096]);
        _commit = _hub.Add(Repo, _checkpoint);
    }

    private string Cache => Path.Combine(_root, "xdg", "quecc-assistant", "hub", Repo.Replace("/", "--"), _commit);

    private Dictionary<string, string> Environment(string? endpoint = null) => new()
    {
        ["HF_ENDPOINT"] = endpoint ?? _hub.Endpoint,
        ["HF_TOKEN"] = Token,
        ["XDG_CACHE_HOME"] = Path.Combine(_root, "xdg"),
    };

    private Task<(int Code, string Out, string Err)> Pull(string reference, string target, string? endpoint = null) =>
        AssistantProcess.RunAsync(["models", "pull", reference, "--out", target], Environment(endpoint), timeoutSeconds: 180);

    [Fact]
    public async Task Pull_FetchesOnlyWhatTheImporterReads_ResumesACutDownload_AndImports()
    {
        _hub.CutOnce("model-00001-of-00002.safetensors");
        var target = Path.Combine(_root, "set");
        var (code, stdout, stderr) = await Pull(Repo, target);
        Assert.True(code == 0, stderr);
        Assert.Contains($"is commit {_commit[..12]}", stdout);
        Assert.Contains("checked by the engine", stdout);
        Assert.True(File.Exists(Path.Combine(target, "manifest.json")));
        using (var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(target, "manifest.json"))))
            Assert.Equal("tiny-llava-1.5", manifest.RootElement.GetProperty("name").GetString());

        // The cut: the shard came in two requests, the second from where the first stopped.
        var shard = _hub.Log.Where(r => r.Path.EndsWith("/model-00001-of-00002.safetensors", StringComparison.Ordinal) && r.Path.StartsWith("/cdn/", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, shard.Count);
        Assert.Null(shard[0].Range);
        long half = new FileInfo(Path.Combine(_checkpoint, "model-00001-of-00002.safetensors")).Length / 2;
        Assert.Equal($"bytes={half}-", shard[1].Range);
        Assert.Contains($"resuming model-00001-of-00002.safetensors at {half:N0}", stderr);

        // The hub's URL shapes, built on the endpoint without doubled slashes.
        Assert.Contains(_hub.Log, r => r.Path == $"/api/models/{Repo}/revision/main?blobs=true");
        Assert.Contains(_hub.Log, r => r.Path == $"/{Repo}/resolve/{_commit}/config.json");
        Assert.DoesNotContain(_hub.Log, r => r.Path.StartsWith("//", StringComparison.Ordinal));

        // Only the importer's files were asked for; README.md and pytorch_model.bin never were.
        Assert.DoesNotContain(_hub.Log, r => r.Path.Contains("README.md") || r.Path.Contains("pytorch_model.bin"));
        Assert.Equal(File.ReadAllBytes(Path.Combine(_checkpoint, "tokenizer.model")), File.ReadAllBytes(Path.Combine(Cache, "tokenizer.model")));
        Assert.Empty(Directory.GetFiles(Cache, "*.part"));

        // The token went to the hub's host only, never to the storage it redirected to, and was never printed.
        Assert.All(_hub.Log.Where(r => r.Host == "127.0.0.1"), r => Assert.Equal($"Bearer {Token}", r.Authorization));
        Assert.All(_hub.Log.Where(r => r.Host == "localhost"), r => Assert.Null(r.Authorization));
        Assert.Contains(_hub.Log, r => r.Host == "localhost");
        Assert.DoesNotContain(Token, stdout + stderr);

        // A second pull of the same revision fetches nothing again.
        int before = _hub.Log.Count(r => r.Path.Contains("/resolve/") || r.Path.StartsWith("/cdn/", StringComparison.Ordinal));
        var (again, out2, err2) = await Pull(Repo, Path.Combine(_root, "set2"));
        Assert.True(again == 0, err2);
        Assert.Contains("cached model-00002-of-00002.safetensors", err2);
        Assert.Equal(before, _hub.Log.Count(r => r.Path.Contains("/resolve/") || r.Path.StartsWith("/cdn/", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Pull_OnATerminal_DrawsOneProgressBar_ThatSaysBytesRateAndTimeLeft()
    {
        // A real terminal (util-linux's `script` makes one): the bar is redrawn in place with \r, never a line per update.
        var target = Path.Combine(_root, "set");
        var env = string.Join(" ", Environment().Select(kv => $"{kv.Key}={kv.Value}"));
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/script") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["-qfec", $"env {env} {AssistantProcess.Executable} models pull {Repo} --out {target}", "/dev/null"])
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        Assert.True(p.WaitForExit(180_000), "the pull did not end");
        var screen = await output;
        Assert.True(p.ExitCode == 0, screen);
        Assert.Matches(@"\rmodel-0000[12]-of-00002\.safetensors +\[#+ *\] +[0-9.]+/[0-9.]+ MB +[0-9.]+ MB/s \d\d:\d\d left", screen);
        Assert.DoesNotContain("fetched model-00001", screen);  // the bar says it; no line per file on a terminal
        Assert.Contains("checked by the engine", screen);
        Assert.DoesNotContain(Token, screen);
        Assert.True(File.Exists(Path.Combine(target, "manifest.json")));
    }

    [Fact]
    public async Task Pull_ResumesWhatAnEarlierRunLeft()
    {
        // An interrupted run leaves NAME.part in the commit's cache folder: the next run asks for the rest only.
        const string file = "model-00002-of-00002.safetensors";
        Directory.CreateDirectory(Cache);
        var bytes = File.ReadAllBytes(Path.Combine(_checkpoint, file));
        int kept = bytes.Length / 3;
        File.WriteAllBytes(Path.Combine(Cache, file + ".part"), bytes[..kept]);
        var (code, _, stderr) = await Pull($"{Repo}@main", Path.Combine(_root, "set"));
        Assert.True(code == 0, stderr);
        var asked = _hub.Log.Where(r => r.Path.EndsWith("/" + file, StringComparison.Ordinal) && r.Path.StartsWith("/cdn/", StringComparison.Ordinal)).ToList();
        Assert.Equal([$"bytes={kept}-"], asked.Select(r => r.Range));
        Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(Cache, file)));
    }

    [Fact]
    public async Task Pull_RefusesAFileWhoseHashDisagrees_AndRemovesIt()
    {
        _hub.Corrupt("model-00002-of-00002.safetensors");
        var target = Path.Combine(_root, "set");
        var (code, stdout, stderr) = await Pull(Repo, target);
        Assert.Equal(2, code);
        var line = Assert.Single(stderr.Trim().Split('\n'), l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.Contains("model-00002-of-00002.safetensors", line);
        Assert.Contains("SHA-256", line);
        Assert.Contains("the file was removed", line);
        Assert.False(File.Exists(Path.Combine(Cache, "model-00002-of-00002.safetensors")));
        Assert.False(File.Exists(Path.Combine(Cache, "model-00002-of-00002.safetensors.part")));
        Assert.False(Directory.Exists(target));
        Assert.Empty(Directory.GetDirectories(_root, ".set.partial-*"));
        Assert.DoesNotContain("imported", stdout);
    }

    [Theory]
    [InlineData("test-org/no-such-model", "no repository test-org/no-such-model at")]
    [InlineData(Repo + "@v9", "has no revision 'v9'")]
    [InlineData("../etc/passwd", "is not a hub repository")]
    [InlineData("owner/name@..", "is not a revision")]
    public async Task Pull_MissingOrMalformedReferences_AreOneLineAndExit2(string reference, string expected)
    {
        var target = Path.Combine(_root, "set");
        var (code, _, stderr) = await Pull(reference, target);
        Assert.Equal(2, code);
        var line = Assert.Single(stderr.Trim().Split('\n'));
        Assert.StartsWith("error: ", line);
        Assert.Contains(expected, line);
        Assert.False(Directory.Exists(target));
        Assert.DoesNotContain(Token, stderr);
    }

    [Fact]
    public async Task Pull_IntoACacheThatCannotBeWritten_IsOneLine()
    {
        // A cache path through a regular file: no folder can be made there.
        var target = Path.Combine(_root, "set");
        var (code, _, stderr) = await AssistantProcess.RunAsync(["models", "pull", Repo, "--out", target, "--cache", "/etc/hostname/cache"],
            Environment(), timeoutSeconds: 120);
        Assert.Equal(2, code);
        var line = Assert.Single(stderr.Trim().Split('\n'));
        Assert.StartsWith($"error: the pull of {Repo}@main from {_hub.Endpoint} stopped: ", line);
        Assert.False(Directory.Exists(target));
    }

    [Fact]
    public async Task Pull_WithoutAHub_NamesTheEndpointItCouldNotReach()
    {
        var closed = $"http://127.0.0.1:{HubServerPort.Closed()}";
        var (code, _, stderr) = await Pull(Repo, Path.Combine(_root, "set"), closed);
        Assert.Equal(2, code);
        var line = Assert.Single(stderr.Trim().Split('\n'));
        Assert.StartsWith($"error: cannot reach the model hub at {closed} (", line);
    }

    public void Dispose()
    {
        _hub.Dispose();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>A loopback port nothing listens on (taken and let go).</summary>
internal static class HubServerPort
{
    public static int Closed()
    {
        var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        int port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }
}
