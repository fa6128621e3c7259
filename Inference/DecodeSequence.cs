using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference;

/// <summary>
/// One sequence being decoded a token at a time on a <see cref="DecoderState"/> (from
/// <see cref="DecoderState.BeginDecode(KvCache, int)"/>). Its keys/values live in the state's step buffers, so it is
/// valid until the state begins another sequence or is disposed. Disposing it frees the first step's binding, if it has one.
/// </summary>
public sealed class DecodeSequence : IDisposable
{
    private readonly DecoderState _state;

    internal DecodeSequence(DecoderState state, Binding? first, int start, int limit, int ticket)
    {
        _state = state;
        First = first;
        Start = Length = start;
        Limit = limit;
        Ticket = ticket;
    }

    /// <summary>The first step's binding when the sequence starts from a caller's cache; null when it starts in the step buffers.</summary>
    internal Binding? First { get; }
    internal int Start { get; }
    internal int Limit { get; }
    internal int Ticket { get; }

    /// <summary>Positions held: the prefix's plus one per step.</summary>
    public int Length { get; private set; }

    /// <summary>Feeds <paramref name="token"/> at the next position; its logits land in <see cref="DecoderState.LastLogits"/>.</summary>
    public void Append(int token)
    {
        _state.Step(this, token);
        Length++;
    }

    /// <summary>Frees the first step's binding, if any.</summary>
    public void Dispose() => First?.Dispose();
}
