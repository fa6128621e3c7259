using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Assistant.Inference;

/// <summary>
/// The per-token arithmetic over a whole vocabulary (151,936 logits for Qwen2), in SIMD vectors. A decode step
/// runs it once or twice, between two decoder runs that keep every core busy, so what it costs is the answer's:
/// as scalar loops, the greedy pick and its softmax probability took 1.6 ms a token on this 2-core CPU (5% of a 0.5B
/// q4 step), and sampling at a temperature, with a sort of the whole vocabulary, 26-29 ms (as long as the step).
/// Results equal the scalar loops' where they are exact (<see cref="ArgMax"/>); exponentials are within 2 units
/// in the last place of float. Inputs with a NaN take the scalar path, so that their behaviour is the one tested.
/// </summary>
public static class VocabMath
{
    /// <summary>
    /// The index of the largest value, the first where several tie; NaNs are passed over (index 0 if all are NaN),
    /// as <c>for i: if (v[i] &gt; v[best]) best = i</c> does.
    /// </summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        if (values.IsEmpty) throw new ArgumentException("no values to take the largest of", nameof(values));
        if (!Vector.IsHardwareAccelerated || values.Length < 2 * Vector<float>.Count) return ArgMaxScalar(values);
        if (!TryMax(values, out float max)) return ArgMaxScalar(values);
        // The first index holding the maximum: whole vectors compared at once, then the lane.
        var target = new Vector<float>(max);
        var lanes = MemoryMarshal.Cast<float, Vector<float>>(values);
        for (int v = 0; v < lanes.Length; v++)
        {
            var hits = Vector.Equals(lanes[v], target);
            if (hits == Vector<int>.Zero) continue;
            for (int i = v * Vector<float>.Count; ; i++)
                if (values[i] == max) return i;
        }
        for (int i = lanes.Length * Vector<float>.Count; i < values.Length; i++)
            if (values[i] == max) return i;
        return ArgMaxScalar(values);  // not reached: max is one of the values
    }

    /// <summary>
    /// Writes <c>exp((values[i] - shift) * scale)</c> into <paramref name="exps"/> (or nowhere, if it is empty) and
    /// returns their sum. <paramref name="shift"/> is the largest value and <paramref name="scale"/> positive, so every
    /// exponent is at most 0 (a softmax's numerators); exponents below -87 give 0.
    /// </summary>
    public static double SumExp(ReadOnlySpan<float> values, float shift, float scale, Span<float> exps)
    {
        bool write = !exps.IsEmpty;
        if (write && exps.Length < values.Length) throw new ArgumentException("the output is shorter than the input", nameof(exps));
        int whole = Vector.IsHardwareAccelerated ? values.Length - values.Length % Vector<float>.Count : 0;
        var lanes = MemoryMarshal.Cast<float, Vector<float>>(values[..whole]);
        var outLanes = write ? MemoryMarshal.Cast<float, Vector<float>>(exps[..whole]) : default;
        var shiftV = new Vector<float>(shift);
        var scaleV = new Vector<float>(scale);
        // Float sums of a few thousand terms each, gathered into a double: the vocabulary's sum stays exact to ~1e-7.
        var sum = Vector<double>.Zero;
        var block = Vector<float>.Zero;
        for (int v = 0; v < lanes.Length; v++)
        {
            var e = Exp((lanes[v] - shiftV) * scaleV);
            if (write) outLanes[v] = e;
            block += e;
            if ((v & 255) == 255)
            {
                Vector.Widen(block, out var low, out var high);
                sum += low + high;
                block = Vector<float>.Zero;
            }
        }
        Vector.Widen(block, out var lo, out var hi);
        double total = Vector.Sum(sum + lo + hi);
        for (int i = whole; i < values.Length; i++)
        {
            float e = MathF.Exp((values[i] - shift) * scale);
            if (write) exps[i] = e;
            total += e;
        }
        return total;
    }

    /// <summary>The softmax probability of <paramref name="id"/> among <paramref name="logits"/>.</summary>
    public static double Probability(ReadOnlySpan<float> logits, int id)
    {
        if (!TryMax(logits, out float max))
        {
            // NaN somewhere: the scalar loop, whatever it makes of it.
            max = logits[ArgMaxScalar(logits)];
            double s = 0;
            for (int i = 0; i < logits.Length; i++) s += Math.Exp(logits[i] - max);
            return Math.Exp(logits[id] - max) / s;
        }
        return Math.Exp(logits[id] - max) / SumExp(logits, max, 1f, []);
    }

    /// <summary>The largest value, false where there is a NaN (or nothing) to take it from.</summary>
    public static bool TryMax(ReadOnlySpan<float> values, out float max)
    {
        max = float.NaN;
        if (values.IsEmpty) return false;
        int whole = Vector.IsHardwareAccelerated ? values.Length - values.Length % Vector<float>.Count : 0;
        var lanes = MemoryMarshal.Cast<float, Vector<float>>(values[..whole]);
        var best = new Vector<float>(float.NegativeInfinity);
        var ordered = Vector<int>.AllBitsSet;  // lanes where every value so far equals itself (is not NaN)
        foreach (var v in lanes)
        {
            best = Vector.Max(best, v);
            ordered &= Vector.Equals(v, v);
        }
        if (ordered != Vector<int>.AllBitsSet) return false;
        float m = float.NegativeInfinity;
        for (int i = 0; i < Vector<float>.Count && whole > 0; i++) m = Math.Max(m, best[i]);
        for (int i = whole; i < values.Length; i++)
        {
            if (float.IsNaN(values[i])) return false;
            m = Math.Max(m, values[i]);
        }
        max = m;
        return true;
    }

    /// <summary>
    /// e^x lane by lane for x at most 0 (larger x is not this class's use and saturates at 2^127): x = n ln 2 + r with
    /// |r| &lt;= ln 2 / 2, e^r by a degree-7 polynomial (Cephes' expf coefficients), times 2^n built in the exponent bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> Exp(Vector<float> x)
    {
        // Below -87 the true value is at the edge of float's normal range: 0, as the scalar softmax all but gives.
        var tiny = Vector.LessThan(x, new Vector<float>(-87f));
        x = Vector.Min(Vector.Max(x, new Vector<float>(-87f)), new Vector<float>(88f));
        var n = Vector.Floor(x * new Vector<float>(1.44269504f) + new Vector<float>(0.5f));
        var r = x - n * new Vector<float>(0.693359375f) - n * new Vector<float>(-2.12194440e-4f);
        var p = new Vector<float>(1.9875691500e-4f);
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(1.3981999507e-3f));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(8.3334519073e-3f));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(4.1665795894e-2f));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(1.6666665459e-1f));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(5.0000001201e-1f));
        p = Vector.FusedMultiplyAdd(p, r * r, r + Vector<float>.One);
        var pow2 = Vector.ShiftLeft(Vector.ConvertToInt32(n) + new Vector<int>(127), 23);
        return Vector.ConditionalSelect(tiny, Vector<float>.Zero, p * Vector.AsVectorSingle(pow2));
    }

    private static int ArgMaxScalar(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }
}
