using System.IO.MemoryMappedFiles;

namespace Assistant.Inference;

/// <summary>
/// A decoder's token embeddings read from a memory-mapped file of rows (the manifest's <c>embed_table</c>), instead of
/// the embedding graph, whose table ONNX Runtime holds whole in memory: a page of the file becomes resident only when
/// a row on it is read, so a 0.5 GB table costs the rows a session's prompts and answers use. Thread-safe (reads
/// only); lives as long as its <see cref="LanguageModel"/>, which disposes it.
/// </summary>
internal sealed unsafe class EmbeddingTable : IDisposable
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _rows;
    private readonly bool _half;

    private EmbeddingTable(MemoryMappedFile file, MemoryMappedViewAccessor view, byte* rows, int count, int dim, bool half)
    {
        _file = file;
        _view = view;
        _rows = rows;
        Rows = count;
        Dim = dim;
        _half = half;
    }

    /// <summary>Rows (token ids) in the table.</summary>
    public int Rows { get; }

    /// <summary>Values per row.</summary>
    public int Dim { get; }

    /// <summary>The table <paramref name="spec"/> names in <paramref name="directory"/>, checked against the decoder's width and vocabulary and the file's size.</summary>
    public static EmbeddingTable Open(string directory, EmbedTableSpec spec, DecoderSpec decoder)
    {
        var path = SetFile.Resolve(directory, spec.File, $"decoder {decoder.Name} embedding table");
        int size = spec.Dtype switch
        {
            "f32" => 4,
            "f16" => 2,
            _ => throw new InferenceException($"decoder {decoder.Name} embed_table dtype '{spec.Dtype}' is not one this build reads (f32, f16)"),
        };
        if (spec.Dim != decoder.Dim || spec.Rows != decoder.VocabSize)
            throw new InferenceException($"decoder {decoder.Name} embed_table is {spec.Rows} x {spec.Dim}, not vocab_size {decoder.VocabSize} x dim {decoder.Dim}");
        long bytes = (long)spec.Rows * spec.Dim * size, length = new FileInfo(path).Length;
        if (spec.Offset < 0 || spec.Offset > length - bytes)
            throw new InferenceException($"decoder {decoder.Name} embedding table {spec.File} holds {length:N0} bytes, not the {bytes:N0} from byte {spec.Offset:N0} that {spec.Rows} x {spec.Dim} {spec.Dtype} rows need");
        MemoryMappedFile? file = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            view = file.CreateViewAccessor(spec.Offset, bytes, MemoryMappedFileAccess.Read);
            byte* start = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
            // The view begins at the page that holds Offset; PointerOffset is where the table starts within it.
            return new EmbeddingTable(file, view, start + view.PointerOffset, spec.Rows, spec.Dim, size == 2);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            view?.Dispose();
            file?.Dispose();
            throw new InferenceException($"cannot map decoder {decoder.Name} embedding table {path}: {SessionFactory.FirstLine(e.Message)}", inner: e);
        }
    }

    /// <summary>Row <paramref name="id"/> into <paramref name="destination"/> (<see cref="Dim"/> floats); an id past the table is an error.</summary>
    public void Row(int id, Span<float> destination)
    {
        if ((uint)id >= (uint)Rows)
            throw new InferenceException($"token id {id} is outside the embedding table's {Rows} rows");
        if (!_half)
        {
            new ReadOnlySpan<float>(_rows + (long)id * Dim * sizeof(float), Dim).CopyTo(destination);
            return;
        }
        var row = new ReadOnlySpan<Half>(_rows + (long)id * Dim * sizeof(ushort), Dim);
        for (int i = 0; i < row.Length; i++) destination[i] = (float)row[i];
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}
