using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Assistant.Inference;

/// <summary>Checks a loaded graph against what the manifest declares and what the contract requires.</summary>
internal static class GraphContract
{
    /// <summary>
    /// Every tensor the manifest names must exist in the graph with the same element type, rank and fixed
    /// sizes; every tensor in <paramref name="requiredInputs"/> and <paramref name="requiredOutputs"/> must be named by the manifest.
    /// </summary>
    public static void Check(InferenceSession session, GraphSpec spec, IEnumerable<string> requiredInputs, IEnumerable<string> requiredOutputs)
    {
        Side(session.InputMetadata, spec.Inputs, spec.File, "input");
        Side(session.OutputMetadata, spec.Outputs, spec.File, "output");
        foreach (var name in requiredInputs)
            if (!spec.Inputs.ContainsKey(name))
                throw new InferenceException($"manifest.json does not declare the contract input '{name}' of {spec.File}");
        foreach (var name in requiredOutputs)
            if (!spec.Outputs.ContainsKey(name))
                throw new InferenceException($"manifest.json does not declare the contract output '{name}' of {spec.File}");
    }

    private static void Side(IReadOnlyDictionary<string, NodeMetadata> actual, IReadOnlyDictionary<string, TensorSpec> declared, string file, string side)
    {
        foreach (var (name, want) in declared)
        {
            if (!actual.TryGetValue(name, out var meta))
                throw new InferenceException(
                    $"{file} has no {side} '{name}' (manifest.json names it; the graph has: {string.Join(", ", actual.Keys)})");
            var dtype = DtypeName(meta.ElementDataType);
            if (dtype != want.Dtype)
                throw new InferenceException($"{file} {side} '{name}' is {dtype}, manifest.json says {want.Dtype}");
            var dims = meta.Dimensions;
            if (dims.Length != want.Shape.Count)
                throw new InferenceException($"{file} {side} '{name}' has rank {dims.Length}, manifest.json declares {want}");
            for (int i = 0; i < dims.Length; i++)
            {
                var fixedSize = want.Fixed(i);
                if (fixedSize is { } f && dims[i] >= 0 && dims[i] != f)
                    throw new InferenceException(
                        $"{file} {side} '{name}' axis {i} is {dims[i]}, manifest.json declares {want}");
            }
        }
    }

    private static string DtypeName(TensorElementType t) => t switch
    {
        TensorElementType.Float => "float32",
        TensorElementType.Float16 => "float16",
        TensorElementType.Int64 => "int64",
        TensorElementType.Int32 => "int32",
        TensorElementType.Bool => "bool",
        _ => t.ToString().ToLowerInvariant(),
    };

    /// <summary>Requires a declared fixed axis to equal <paramref name="expected"/>: the cross-component check.</summary>
    public static void Dim(GraphSpec spec, string tensor, int axis, long expected, string what)
    {
        // Safe before the graph is opened (a compressor is checked so at load): a missing tensor or a short shape is a line too.
        var t = spec.Inputs.TryGetValue(tensor, out var input) ? input
            : spec.Outputs.TryGetValue(tensor, out var output) ? output
            : throw new InferenceException($"manifest.json does not declare the contract tensor '{tensor}' of {spec.File}");
        if (axis >= t.Shape.Count)
            throw new InferenceException($"manifest.json declares {spec.File} '{tensor}' as {t}, which has no axis {axis} ({what})");
        var declared = t.Fixed(axis);
        if (declared != expected)
            throw new InferenceException(
                $"dimension mismatch: {spec.File} '{tensor}' axis {axis} is {declared?.ToString() ?? "dynamic"}, but {what} is {expected}");
    }
}
