using System.Diagnostics;
using System.Text.Json;
using Assistant.Engine;
using Assistant.Inference;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Assistant.Bench.Peers;

/// <summary>The question every run asks.</summary>
internal static class Prompt
{
    public const string Question = "What is in this picture?";

    /// <summary>The set's chat template pieces: before the image, and after it with the question.</summary>
    public static (string Before, string After) Of(string set)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(set, "manifest.json")));
        var chat = doc.RootElement.GetProperty("prompt").GetProperty("chat");
        return (chat.GetProperty("before_image").GetString()!,
            chat.GetProperty("before_question").GetString()! + Question + chat.GetProperty("after_question").GetString()!);
    }
}

/// <summary>
/// The engine as the live loop runs it (bench/Common/FrameLatency.cs), on the CPU, reporting in this bench's
/// <see cref="Sample"/> with the process's resident memory.
/// </summary>
internal sealed class Ours(Dirs d) : IDisposable
{
    private readonly FrameLatency _frames = new(d.Set, d.Image, Prompt.Question, new SessionConfig(ExecutionProvider.Cpu));

    /// <summary>full at every patch; pool and query at V = 1, 4, 16 where the set offers them.</summary>
    public List<(string Kind, int V)> Configs() => _frames.Configs();

    public Sample Run(string kind, int v, int tokens) => Of(_frames.Run(kind, v, tokens));

    /// <summary>One frame's figures as a bench sample, with the process's resident set now.</summary>
    public static Sample Of(FrameSample s) =>
        new(s.VisualTokens, s.TtftMs, s.StaticTtftMs, s.VisionMs, s.PrefillMs, s.PrefillPositions, s.DecodeTokS, Runs.RssMb());

    public void Dispose() => _frames.Dispose();
}

/// <summary>
/// llama.cpp (LLamaSharp 0.30.0, CPU backend, libmtmd) answering the same picture and prompt from scratch each run,
/// as it does for every new camera frame: its cache is cleared, the picture decoded, the prompt's chunks evaluated
/// (vision encoder, then the text and image positions), then greedy decoding.
/// </summary>
internal sealed class LlamaCpp : IDisposable
{
    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;
    private readonly MtmdWeights _mtmd;
    private readonly string _prompt, _image;

    public LlamaCpp(Dirs d)
    {
        NativeLogConfig.llama_log_set((level, message) => { if (level == LLamaLogLevel.Error) Console.Error.Write(message); });
        var parameters = new ModelParams(d.TextGguf) { ContextSize = 2048, GpuLayerCount = 0, BatchSize = 2048, UBatchSize = 2048, Threads = Environment.ProcessorCount };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
        var mp = MtmdContextParams.Default();
        mp.UseGpu = false;
        mp.NThreads = Environment.ProcessorCount;
        _mtmd = MtmdWeights.LoadFromFile(d.MmprojGguf, _weights, mp);
        var (before, after) = Prompt.Of(d.Set);
        _prompt = before + (mp.MediaMarker ?? NativeApi.MtmdDefaultMarker() ?? "<__media__>") + after;
        _image = d.Image;
    }

    public Sample Run(int tokens)
    {
        _context.NativeHandle.MemoryClear(true);
        var clock = Stopwatch.StartNew();
        using var media = _mtmd.LoadMedia(_image);
        if (_mtmd.Tokenize(_prompt, false, true, out var chunks) != 0) throw new InvalidOperationException("mtmd tokenize failed");
        using (chunks)
        {
            int past = 0;
            if (_mtmd.EvaluateChunks(chunks!, _context.NativeHandle, ref past, 0, 2048, true) != 0)
                throw new InvalidOperationException("mtmd evaluate failed");
            var logits = _context.NativeHandle.GetLogitsIth(-1);
            int next = VocabMath.ArgMax(logits);
            double ttft = clock.Elapsed.TotalMilliseconds;
            int imageTokens = 0, positions = 0;
            foreach (var c in chunks!.Enumerate())
            {
                positions += (int)c.NTokens;
                if (c.Type == SafeMtmdInputChunk.SafeMtmdInputChunkType.Image) imageTokens = (int)c.NTokens;
            }
            // The vision encoder alone, on the image chunk (outside the first-token time).
            var image = chunks.Enumerate().Select((c, i) => (c, i)).First(x => x.c.Type == SafeMtmdInputChunk.SafeMtmdInputChunkType.Image).i;
            var vision = Stopwatch.StartNew();
            if (Mtmd.mtmd_encode_chunk(_mtmd.NativeHandle.DangerousGetHandle(), chunks.GetChunkPtr((ulong)image)) != 0)
                throw new InvalidOperationException("mtmd encode failed");
            double visionMs = vision.Elapsed.TotalMilliseconds;
            var batch = new LLamaBatch();
            var decode = Stopwatch.StartNew();
            for (int i = 1; i < tokens; i++)
            {
                batch.Clear();
                batch.Add((LLamaToken)next, past++, (LLamaSeqId)0, true);
                if (_context.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed");
                next = VocabMath.ArgMax(_context.NativeHandle.GetLogitsIth(0));
            }
            double decodeS = decode.Elapsed.TotalSeconds;
            return new Sample(imageTokens, ttft, ttft, visionMs, ttft - visionMs, positions, (tokens - 1) / decodeS, Runs.RssMb());
        }
    }

    /// <summary>
    /// libmtmd's encoder entry point, which LLamaSharp 0.30.0 keeps internal: bound to the copy LLamaSharp already
    /// loaded (dlopen by its soname finds the loaded library).
    /// </summary>
    private static class Mtmd
    {
        static Mtmd() => System.Runtime.InteropServices.NativeLibrary.SetDllImportResolver(typeof(Mtmd).Assembly,
            (name, _, _) => name == "mtmd" ? System.Runtime.InteropServices.NativeLibrary.Load("libmtmd.so") : IntPtr.Zero);

        [System.Runtime.InteropServices.DllImport("mtmd")]
        public static extern int mtmd_encode_chunk(IntPtr context, IntPtr chunk);
    }

    public void Dispose()
    {
        _mtmd.Dispose();
        _context.Dispose();
        _weights.Dispose();
    }
}
