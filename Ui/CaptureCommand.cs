using System.CommandLine;
using System.Diagnostics;
using Assistant.Engine;

namespace Assistant.Ui;

/// <summary><c>assistant capture --source S --out frame.png [--frames N]</c>: checks a source by saving what it delivers.</summary>
internal static class CaptureCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var source = new Option<string>("--source") { Description = "world[:SEED], folder:PATH, file:PATH (still or video), camera:N, screen or screen:X,Y,W,H", Required = true };
        var output = new Option<string>("--out") { Description = "PNG to write (with several frames: NAME-0001.png, NAME-0002.png, ...)", Required = true };
        var frames = new Option<int>("--frames") { Description = "frames to read", DefaultValueFactory = _ => 1 };
        var command = new Command("capture", "Check a source: read frames from it, save them as PNG, and print their size and rate.") { source, output, frames };
        command.SetAction(parse =>
        {
            int n = parse.GetValue(frames);
            if (n is < 1 or > 10000) throw new EngineException($"--frames must be in 1..10000, got {n}");
            var path = Cli.OutputFile(parse.GetValue(output), "--out", ".png");
            using var src = FrameSources.OpenReader(parse.GetValue(source)!, loop: false, speed: 0.004, size: 256);
            var clock = Stopwatch.StartNew();
            int read = 0;
            for (; read < n; read++)
            {
                if (!src.TryRead(out var frame))
                {
                    stderr.WriteLine($"source {src.Name} ended after {read} frames");
                    break;
                }
                var file = n == 1 ? path : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!,
                    $"{Path.GetFileNameWithoutExtension(path)}-{read + 1:D4}{Path.GetExtension(path)}");
                frame.SavePng(file);
                if (read == 0) stdout.WriteLine($"{src.Name}: {frame.Width}x{frame.Height}, first frame in {file}");
            }
            double seconds = clock.Elapsed.TotalSeconds;
            stdout.WriteLine($"{read} frames in {seconds:F2} s ({read / Math.Max(seconds, 1e-9):F1} frames/s, PNG writing included)");
            return read > 0 ? 0 : 1;
        });
        return command;
    }
}
