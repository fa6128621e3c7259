using System.Buffers.Binary;

namespace Assistant.Tests;

/// <summary>One hostile file: its category (for the counts), a name saying how it was made, its bytes and extension.</summary>
public sealed record HostileFile(string Category, string Name, byte[] Bytes, string Extension);

/// <summary>
/// The fuzz suite's seeded image corpus (issue 20): the golden picture in every accepted format, then
/// truncated, byte-flipped, given another format's magic, and patched to declare a huge picture. The same seed
/// gives the same files on every run: <see cref="Seed"/> is ASSISTANT_FUZZ_SEED, or 20.
/// </summary>
public static class HostileFiles
{
    /// <summary>The seed every fuzz test starts from; set ASSISTANT_FUZZ_SEED to reproduce another run.</summary>
    public static int Seed { get; } = int.TryParse(Environment.GetEnvironmentVariable("ASSISTANT_FUZZ_SEED"), out var s) ? s : 20;

    /// <summary>The formats the image reader accepts, as the extension its files carry.</summary>
    public static readonly string[] Formats = [".png", ".jpg", ".gif", ".bmp", ".tga"];

    private static readonly Dictionary<string, byte[]> Magic = new()
    {
        [".png"] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A],
        [".jpg"] = [0xFF, 0xD8, 0xFF, 0xE0],
        [".gif"] = "GIF89a"u8.ToArray(),
        [".bmp"] = "BM"u8.ToArray(),
        [".tga"] = [0, 0, 2, 0],
    };

    /// <summary>The golden picture (96 x 80) converted by ImageMagick to <paramref name="ext"/>.</summary>
    public static byte[] Intact(string ext)
    {
        if (ext == ".png") return File.ReadAllBytes(Golden.Tiny.ImagePath);
        var path = Path.Combine(Path.GetTempPath(), $"assistant-fuzz-{Guid.NewGuid():N}{ext}");
        Tool.Run("convert", [Golden.Tiny.ImagePath, path]);
        var bytes = File.ReadAllBytes(path);
        File.Delete(path);
        return bytes;
    }

    /// <summary>Every case, in a fixed order for a seed: <paramref name="flipsPerFormat"/> byte-flip cases per format.</summary>
    public static IReadOnlyList<HostileFile> Images(int flipsPerFormat = 40)
    {
        var rng = new Random(Seed);
        var cases = new List<HostileFile>();
        foreach (var ext in Formats)
        {
            var whole = Intact(ext);
            // Truncations: the empty file, one byte, the magic alone, a seeded spread, one byte short.
            var cuts = new[] { 0, 1, Magic[ext].Length, whole.Length - 1 }
                .Concat(Enumerable.Range(0, 6).Select(_ => rng.Next(2, whole.Length - 1))).Distinct();
            foreach (var cut in cuts) cases.Add(new("truncated", $"{ext} cut to {cut} of {whole.Length} bytes", whole[..cut], ext));
            for (int i = 0; i < flipsPerFormat; i++)
            {
                var flipped = (byte[])whole.Clone();
                int flips = 1 + i % 8;
                for (int k = 0; k < flips; k++) flipped[rng.Next(flipped.Length)] = (byte)rng.Next(256);
                cases.Add(new("byte flips", $"{ext} with {flips} random bytes (case {i})", flipped, ext));
            }
            foreach (var (other, magic) in Magic.Where(m => m.Key != ext))
            {
                var swapped = (byte[])whole.Clone();
                magic.AsSpan(0, Math.Min(magic.Length, swapped.Length)).CopyTo(swapped);
                cases.Add(new("wrong magic", $"{ext} body behind {other}'s magic", swapped, ext));
            }
            foreach (var (w, h) in new[] { (65535, 65535), (1, 65535), (30000, 2) })
                if (Huge(ext, whole, w, h) is { } huge) cases.Add(new("huge declared size", $"{ext} declaring {w} x {h}", huge, ext));
        }
        return cases;
    }

    /// <summary>The intact file with its header patched to declare <paramref name="width"/> x <paramref name="height"/>.</summary>
    public static byte[]? Huge(string ext, byte[] whole, int width, int height)
    {
        var b = (byte[])whole.Clone();
        switch (ext)
        {
            case ".png":  // IHDR: width and height big-endian at 16 and 20
                BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(16), width);
                BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(20), height);
                return b;
            case ".gif":  // the logical screen and the first image descriptor, little-endian
                BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(6), (ushort)width);
                BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(8), (ushort)height);
                int descriptor = Array.IndexOf(b, (byte)0x2C, 13);
                if (descriptor > 0 && descriptor + 9 <= b.Length)
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(descriptor + 5), (ushort)width);
                    BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(descriptor + 7), (ushort)height);
                }
                return b;
            case ".bmp":  // BITMAPINFOHEADER: width and height little-endian int32 at 18 and 22
                BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(18), width);
                BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(22), height);
                return b;
            case ".tga":  // width and height little-endian at 12 and 14
                BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(12), (ushort)width);
                BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(14), (ushort)height);
                return b;
            case ".jpg":  // the first SOF0/SOF2 segment: height then width, big-endian, after length and precision
                for (int i = 2; i + 9 < b.Length; i++)
                    if (b[i] == 0xFF && b[i + 1] is 0xC0 or 0xC2)
                    {
                        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(i + 5), (ushort)height);
                        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(i + 7), (ushort)width);
                        return b;
                    }
                return null;
            default:
                return null;
        }
    }

    /// <summary>Writes <paramref name="file"/> into <paramref name="folder"/> under a name made of <paramref name="stem"/>.</summary>
    public static string Write(HostileFile file, string folder, string stem)
    {
        var path = Path.Combine(folder, stem + file.Extension);
        File.WriteAllBytes(path, file.Bytes);
        return path;
    }
}
