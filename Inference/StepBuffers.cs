using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Assistant.Inference;

/// <summary>
/// Fixed memory for a decoder's keys/values during decoding, so a step writes into buffers made once
/// instead of tensors ONNX Runtime allocates per step. Two layouts:
/// <list type="bullet">
/// <item>Concatenated (a graph that appends to its cache): each present tensor name has two buffers of
/// <see cref="Capacity"/> positions; a cache of length L always lives in buffer L % 2, so the step from L reads
/// one buffer and writes the other (the whole cache is copied every step).</item>
/// <item>In place (constructed with inPlace: a graph whose GroupQueryAttention takes past and present as one buffer,
/// manifest <c>kv_cache: in_place</c>): each name has one buffer of <see cref="Capacity"/> positions, seen always as
/// [1, kv_heads, Capacity, head_dim]; a run writes only its new positions into it, and the attention mask's length
/// says how many are valid. Positions below a run's start are never written, so a prefix copied in
/// (<see cref="CopyPrefix"/>) stays valid for every sequence that extends it.</item>
/// </list>
/// The tensor over each (name, L) and the attention mask of each length are made on first use and kept. Grows by
/// doubling (everything made before is then freed, contents included, so the owner must drop what it bound to them
/// and copy its prefix again); never shrinks. Owned by one <see cref="DecoderState"/>.
/// </summary>
internal sealed class StepBuffers(OrtMemoryInfo memory, OrtAllocator? deviceAllocator, int names, int kvHeads, int headDim, bool inPlace) : IDisposable
{
    private OrtMemoryAllocation[] _buffers = [];  // [name * 2 + parity], or [name] in place; DangerousGetHandle is the address
    private OrtValue?[][] _views = [];            // [name][L]: buffer L % 2 seen as [1, kv_heads, L, head_dim]; in place [name][0]: the whole buffer
    private OrtValue?[] _masks = [];              // [L]: [1, L] of ones, over _ones
    private OrtMemoryAllocation? _ones;

    public int Capacity { get; private set; }

    /// <summary>Makes room for <paramref name="positions"/>; true when it had to grow (earlier tensors and contents are gone).</summary>
    public bool Ensure(int positions)
    {
        if (positions <= Capacity) return false;
        Release();
        int capacity = Math.Max(positions, Math.Max(128, 2 * Capacity));
        uint bytes = checked((uint)((long)kvHeads * capacity * headDim * sizeof(float)));
        var allocator = deviceAllocator ?? OrtAllocator.DefaultInstance;
        _buffers = new OrtMemoryAllocation[names * (inPlace ? 1 : 2)];
        for (int i = 0; i < _buffers.Length; i++) _buffers[i] = allocator.Allocate(bytes);
        _ones = OrtAllocator.DefaultInstance.Allocate(checked((uint)(capacity + 1) * sizeof(long)));
        unsafe { new Span<long>((void*)_ones.DangerousGetHandle(), capacity + 1).Fill(1); }
        _views = new OrtValue?[names][];
        for (int i = 0; i < names; i++) _views[i] = new OrtValue?[inPlace ? 1 : capacity + 1];
        _masks = new OrtValue?[capacity + 2];
        Capacity = capacity;
        return true;
    }

    /// <summary>
    /// Present/past tensor <paramref name="name"/> (index in the decoder's present names) holding <paramref name="length"/>
    /// positions; in place, the whole buffer whatever the length (the mask gives the length).
    /// </summary>
    public OrtValue View(int name, int length)
    {
        int slot = inPlace ? 0 : length;
        if (_views[name][slot] is { } made) return made;
        var buffer = _buffers[inPlace ? name : name * 2 + length % 2];
        int positions = inPlace ? Capacity : length;
        long floats = (long)kvHeads * positions * headDim;
        return _views[name][slot] = OrtValue.CreateTensorValueWithData(memory, TensorElementType.Float,
            [1, kvHeads, positions, headDim], buffer.DangerousGetHandle(), floats * sizeof(float));
    }

    /// <summary>
    /// In place: copies the first <paramref name="length"/> positions of <paramref name="values"/> (a cache's tensors,
    /// [1, kv_heads, length, head_dim] each, in host memory) into positions 0..length-1 of the buffers.
    /// </summary>
    public void CopyPrefix(OrtValue[] values, int length)
    {
        if (!inPlace) throw new InvalidOperationException("only an in-place cache holds a copied prefix");
        if (length > Capacity) throw new InvalidOperationException($"a prefix of {length} positions does not fit {Capacity}");
        int chunk = length * headDim;
        for (int name = 0; name < names; name++)
        {
            var source = values[name].GetTensorDataAsSpan<float>();
            unsafe
            {
                var target = new Span<float>((void*)_buffers[name].DangerousGetHandle(), kvHeads * Capacity * headDim);
                for (int h = 0; h < kvHeads; h++)
                    source.Slice(h * chunk, chunk).CopyTo(target.Slice(h * Capacity * headDim, chunk));
            }
        }
    }

    /// <summary>An attention mask of <paramref name="length"/> ones (host memory).</summary>
    public OrtValue Mask(int length) =>
        _masks[length] ??= OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Int64,
            [1, length], _ones!.DangerousGetHandle(), (long)length * sizeof(long));

    private void Release()
    {
        foreach (var views in _views) foreach (var v in views) v?.Dispose();
        foreach (var m in _masks) m?.Dispose();
        foreach (var b in _buffers) b.Dispose();
        _ones?.Dispose();
        (_views, _masks, _buffers, _ones, Capacity) = ([], [], [], null, 0);
    }

    public void Dispose()
    {
        Release();
        deviceAllocator?.Dispose();
    }
}
