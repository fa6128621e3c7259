using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Assistant.Inference;

/// <summary>
/// Fixed memory for a decoder's keys/values during decoding, so a step writes into buffers made once
/// instead of tensors ONNX Runtime allocates per step. Each present tensor name has two buffers of
/// <see cref="Capacity"/> positions; a cache of length L always lives in buffer L % 2, so the step from L
/// reads one buffer and writes the other. The tensor over each (name, L) and the attention mask of each
/// length are made on first use and kept. Grows by doubling (everything made before is then freed, so the
/// owner must drop what it bound to them); never shrinks. Owned by one <see cref="DecoderState"/>.
/// </summary>
internal sealed class StepBuffers(OrtMemoryInfo memory, OrtAllocator? deviceAllocator, int names, int kvHeads, int headDim) : IDisposable
{
    private OrtMemoryAllocation[] _buffers = [];  // [name * 2 + parity]; DangerousGetHandle is the address (Pointer is internal)
    private OrtValue?[][] _views = [];            // [name][L]: buffer L % 2 seen as [1, kv_heads, L, head_dim]
    private OrtValue?[] _masks = [];              // [L]: [1, L] of ones, over _ones
    private OrtMemoryAllocation? _ones;

    public int Capacity { get; private set; }

    /// <summary>Makes room for <paramref name="positions"/>; true when it had to grow (earlier tensors are gone).</summary>
    public bool Ensure(int positions)
    {
        if (positions <= Capacity) return false;
        Release();
        int capacity = Math.Max(positions, Math.Max(128, 2 * Capacity));
        uint bytes = checked((uint)((long)kvHeads * capacity * headDim * sizeof(float)));
        var allocator = deviceAllocator ?? OrtAllocator.DefaultInstance;
        _buffers = new OrtMemoryAllocation[names * 2];
        for (int i = 0; i < _buffers.Length; i++) _buffers[i] = allocator.Allocate(bytes);
        _ones = OrtAllocator.DefaultInstance.Allocate(checked((uint)(capacity + 1) * sizeof(long)));
        unsafe { new Span<long>((void*)_ones.DangerousGetHandle(), capacity + 1).Fill(1); }
        _views = new OrtValue?[names][];
        for (int i = 0; i < names; i++) _views[i] = new OrtValue?[capacity + 1];
        _masks = new OrtValue?[capacity + 2];
        Capacity = capacity;
        return true;
    }

    /// <summary>Present/past tensor <paramref name="name"/> (index in the decoder's present names) holding <paramref name="length"/> positions.</summary>
    public OrtValue View(int name, int length)
    {
        if (_views[name][length] is { } made) return made;
        var buffer = _buffers[name * 2 + length % 2];
        long floats = (long)kvHeads * length * headDim;
        return _views[name][length] = OrtValue.CreateTensorValueWithData(memory, TensorElementType.Float,
            [1, kvHeads, length, headDim], buffer.DangerousGetHandle(), floats * sizeof(float));
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
