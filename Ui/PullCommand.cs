using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Assistant.Engine;
using Assistant.Ui.Hub;

namespace Assistant.Ui;

/// <summary>
/// <c>assistant models pull REPO[@REVISION]</c>: fetches from the Hugging Face hub only the files the importer reads
/// (the configurations, the tokenizer, the chat template and the safetensors weights the index names), each resumed
/// where an earlier run stopped and checked against the hub's hash, into a cache keyed by the revision's commit; then
/// imports them (<see cref="ModelsCommand.Import"/>). Files already in the cache are not fetched again.
/// </summary>
internal static class PullCommand
{
    /// <summary>The small files the importer may read, where the repository has them.</summary>
    private static readonly string[] Small =
    [
        "config.json", "generation_config.json", "preprocessor_config.json", "processor_config.json", "tokenizer.json",
        "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "chat_template.json",
        "chat_template.jinja",
    ];

    private const string Index = "model.safetensors.index.json";
    private const long MaxSmallBytes = 64L << 20;  // a tokenizer.json is at most tens of MB; a bigger "config" is not one

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var reference = new Argument<string>("REPO") { Description = "a hub repository, OWNER/NAME or OWNER/NAME@REVISION (a branch, tag or commit; default main)" };
        var outOption = new Option<string?>("--out") { Description = "model set folder to create (must not exist; default: models/NAME)" };
        var name = new Option<string?>("--name") { Description = "set name recorded in the manifest (default: the repository's NAME)" };
        var dtype = new Option<string>("--dtype") { Description = "weight storage: f32, or f16 (half the disk, computed in float32)", DefaultValueFactory = _ => "f32" };
        dtype.AcceptOnlyFromAmong("f32", "f16");
        var quant = new Option<string?>("--quant") { Description = "quantized MatMul weights: q8 (int8, a scale per output column) or q4 (the text graphs in 4-bit blocks, the tower in int8)" };
        quant.AcceptOnlyFromAmong("q8", "q4");
        var cache = new Option<string?>("--cache") { Description = "download cache (default: $XDG_CACHE_HOME/quecc-assistant/hub, else ~/.cache/quecc-assistant/hub)" };
        var splitting = ModelsCommand.ImageSplittingOption();
        var attention = ModelsCommand.AttentionOption();
        var block = ModelsCommand.BlockOption();
        var command = new Command("pull", "Download a LLaVA-family or SmolVLM checkpoint from the Hugging Face hub (HF_ENDPOINT, HF_TOKEN) and import it; an interrupted download resumes.")
        {
            reference, outOption, name, dtype, quant, block, attention, cache, splitting,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            ModelsCommand.RefuseImageSplitting(parse.GetValue(splitting));
            var (repo, revision) = HubClient.ParseReference(parse.GetValue(reference)!);
            var repoName = repo[(repo.IndexOf('/') + 1)..];
            var target = parse.GetValue(outOption) ?? Path.Combine("models", repoName);
            if (Directory.Exists(target) || File.Exists(target))
                throw new EngineException($"{target} exists: choose another --out (a set is never written over another)");
            await ModelsCommand.Importer(cancellation);  // before gigabytes are fetched for an importer that cannot run
            using var hub = HubClient.FromEnvironment();
            string folder;
            try
            {
                folder = await Fetch(hub, repo, revision, CacheRoot(parse.GetValue(cache)), stdout, stderr, cancellation);
            }
            // The network failing past the client's own retries, a stalled answer, a cache folder that cannot be written:
            // one line, and what is already in the cache stays for the next run.
            catch (Exception e) when (e is HttpRequestException or TimeoutException or IOException or UnauthorizedAccessException)
            {
                throw new EngineException($"the pull of {repo}@{revision} from {hub.Endpoint.GetLeftPart(UriPartial.Path).TrimEnd('/')} stopped: " +
                                          $"{TerminalText.Printable(e.Message.Split('\n')[0])}; what was fetched is kept, and the same command resumes");
            }
            return await ModelsCommand.Import(folder, target, parse.GetValue(name) ?? repoName, parse.GetValue(dtype)!, parse.GetValue(quant), parse.GetValue(block),
                parse.GetValue(attention)!, imageSplitting: false, stdout, stderr, cancellation);
        });
        return command;
    }

    private static string CacheRoot(string? option)
    {
        if (!string.IsNullOrWhiteSpace(option)) return Path.GetFullPath(option);
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = !string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg) ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "quecc-assistant", "hub");
    }

    /// <summary>The checkpoint folder of <paramref name="repo"/> at <paramref name="revision"/> in the cache, with every file the importer needs.</summary>
    internal static async Task<string> Fetch(HubClient hub, string repo, string revision, string cacheRoot, TextWriter stdout, TextWriter stderr,
        CancellationToken cancellation)
    {
        var listing = await hub.RevisionAsync(repo, revision, cancellation);
        var byName = listing.Files.ToDictionary(f => f.Name, StringComparer.Ordinal);
        if (!byName.ContainsKey("config.json"))
            throw new EngineException($"{repo}@{revision} has no config.json: not a checkpoint in the Hugging Face layout");
        var folder = Path.Combine(cacheRoot, repo.Replace("/", "--"), listing.Commit);  // huggingface_hub's own folder naming
        Directory.CreateDirectory(folder);
        stdout.WriteLine($"{repo}@{revision} is commit {listing.Commit[..12]}; cache {folder}");

        var small = Small.Concat([Index]).Where(byName.ContainsKey).Select(n => byName[n]).ToList();
        var tooBig = small.FirstOrDefault(f => f.Size > MaxSmallBytes);
        if (tooBig is not null)
            throw new EngineException($"{repo} lists {tooBig.Name} at {tooBig.Size:N0} bytes: not a file the importer reads");
        var progress = new PullProgress(stderr, small.Sum(f => f.Size));
        foreach (var f in small) await Get(hub, listing, f, folder, progress, cancellation);

        var weights = Weights(listing, byName, folder);
        long needed = weights.Where(w => !Complete(folder, w)).Sum(w => w.Size - PartLength(folder, w));
        long free = new DriveInfo(folder).AvailableFreeSpace;
        if (needed > free - (256L << 20))
            throw new EngineException($"the weights need {needed / 1e9:F1} GB more in {folder} and {free / 1e9:F1} GB are free");
        progress = new PullProgress(stderr, weights.Sum(w => w.Size));
        foreach (var w in weights) await Get(hub, listing, w, folder, progress, cancellation);
        stdout.WriteLine($"fetched {small.Count + weights.Count} files ({(small.Sum(f => f.Size) + weights.Sum(w => w.Size)) / 1e6:N1} MB), each checked against the hub's hash");
        return folder;
    }

    /// <summary>The safetensors files: the shards the index names (each listed by the hub), else model.safetensors.</summary>
    private static List<HubFile> Weights(HubRevision listing, Dictionary<string, HubFile> byName, string folder)
    {
        if (!byName.ContainsKey(Index))
            return byName.TryGetValue("model.safetensors", out var single) ? [single]
                : throw new EngineException($"{listing.Repo} has no model.safetensors nor {Index}: only safetensors weights are imported (not .bin or .pth)");
        HashSet<string> shards;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, Index)));
            shards = [.. doc.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => p.Value.GetString() ?? "")];
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new EngineException($"{listing.Repo}'s {Index} has no weight_map of tensor names to files");
        }
        var missing = shards.FirstOrDefault(s => !byName.ContainsKey(s) || s.Contains('/'));
        if (missing is not null)
            throw new EngineException($"{listing.Repo}'s {Index} names {TerminalText.Printable(missing)}, which the hub does not list at the top of the repository");
        return [.. shards.Order(StringComparer.Ordinal).Select(s => byName[s])];
    }

    private static bool Complete(string folder, HubFile f) => File.Exists(Path.Combine(folder, f.Name)) && new FileInfo(Path.Combine(folder, f.Name)).Length == f.Size;

    private static long PartLength(string folder, HubFile f) => File.Exists(Path.Combine(folder, f.Name + ".part")) ? new FileInfo(Path.Combine(folder, f.Name + ".part")).Length : 0;

    /// <summary>One file into the cache: kept as NAME.part while it comes, renamed to NAME once its hash agrees.</summary>
    private static async Task Get(HubClient hub, HubRevision listing, HubFile file, string folder, PullProgress progress, CancellationToken cancellation)
    {
        var path = Path.Combine(folder, file.Name);
        if (Complete(folder, file))
        {
            progress.Done(file, cached: true);
            return;
        }
        var part = path + ".part";
        progress.Start(file);
        await hub.DownloadAsync(listing.Repo, listing.Commit, file, part, progress.Bytes, progress.Resumed, cancellation);
        File.Move(part, path, overwrite: true);
        progress.Done(file, cached: false);
    }

    /// <summary>
    /// What a pull shows on stderr: on a terminal, one bar rewritten in place (bytes, rate, time left); otherwise a line
    /// per file and per resumption, so that a log says what happened.
    /// </summary>
    private sealed class PullProgress(TextWriter stderr, long total)
    {
        private readonly bool _bar = !Console.IsErrorRedirected && ReferenceEquals(stderr, Console.Error);
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private long _before;  // bytes of the files finished before this one
        private long _started;  // bytes already held when this file's transfer began (a resumption's start)
        private HubFile? _file;
        private long _lastDrawn = -1;

        public void Start(HubFile file)
        {
            _file = file;
            _started = -1;
        }

        public void Resumed(long from)
        {
            stderr.WriteLine($"{(_bar ? "\n" : "")}resuming {_file?.Name} at {from:N0} of {_file?.Size:N0} bytes");
            _started = from;
        }

        public void Bytes(long held)
        {
            if (_started < 0) _started = 0;
            if (!_bar || _file is null) return;
            long now = _clock.ElapsedMilliseconds;
            if (now - _lastDrawn < 200 && held < _file.Size) return;
            _lastDrawn = now;
            long done = _before + held;
            double rate = (held - _started) / Math.Max(_clock.Elapsed.TotalSeconds, 1e-3);
            var left = rate > 0 ? TimeSpan.FromSeconds((total - done) / rate) : TimeSpan.Zero;
            int width = 30, filled = total > 0 ? (int)(width * done / total) : width;
            stderr.Write($"\r{_file.Name,-36} [{new string('#', filled),-30}] {done / 1e6,9:N1}/{total / 1e6:N1} MB {rate / 1e6,6:N1} MB/s {left:mm\\:ss} left ");
        }

        public void Done(HubFile file, bool cached)
        {
            _before += file.Size;
            if (_bar) stderr.Write(cached ? "" : "\n");
            if (!_bar || cached) stderr.WriteLine($"{(cached ? "cached" : "fetched")} {file.Name} ({file.Size:N0} bytes{(cached ? "" : ", hash checked")})");
            _clock.Restart();
        }
    }
}
