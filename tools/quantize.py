"""Block-quantized weights for CPU users of real sizes: 8- or 4-bit, 32 values per block, one float scale each.

The importer (`import_hf.py --quant q8|q4`) calls two things here, in this order:
  1. `round_trip_linears(module, bits)` before export: every Linear weight whose input width is a whole number of
     blocks is replaced by its quantized-then-dequantized value, so the PyTorch reference (the golden outputs) and
     llama.cpp's GGUF hold exactly the weights the ONNX graph will;
  2. `matmul_nbits(path, bits)` after export: every MatMul by a float initializer of shape (K, N), K a multiple of
     the block, becomes ONNX Runtime's com.microsoft MatMulNBits with the same weight in blocks.

The scheme is symmetric, like llama.cpp's Q8_0 and Q4_0: per block along K, a scale d and codes q with
w = (q - z) * d, z = 2^(bits-1) (MatMulNBits's default zero point, so none is stored). 4-bit: d = m / -8 where m is
the block's value of largest magnitude (so m itself is exact), q = min(15, floor(w / d + 8.5)), two codes a
byte, the lower K index in the low nibble. 8-bit: d = max|w| / 127, q = round(w / d) + 128, a tie rounded away
from zero. The tie rules are ggml's own (roundf for Q8_0, + 8.5 then truncation for Q4_0), computed in float32 as
ggml does, and this is the one block quantizer: tools/export_gguf.py writes its GGUF blocks from `_codes` too, so
the engine's MatMulNBits set and llama.cpp's GGUF hold the same codes.
"""
from pathlib import Path

import numpy as np
import onnx
import torch

BLOCK = 32
BITS = {"q8": 8, "q4": 4}
# ONNX Runtime's accuracy level 4: activations are quantized to int8 per block and the dot products are integer,
# as llama.cpp does for its Q8_0/Q4_0 weights (Q8_0 activations). Without it MatMulNBits dequantizes to float32.
ACCURACY_LEVEL = 4


def _codes(w: np.ndarray, bits: int) -> tuple:
    """w: (N, K) float32, K a multiple of BLOCK -> (codes uint8 (N, K), scales float32 (N, K // BLOCK))."""
    n, k = w.shape
    blocks = w.reshape(n, k // BLOCK, BLOCK).astype(np.float32)
    if bits == 4:
        at = np.abs(blocks).argmax(axis=2)
        m = np.take_along_axis(blocks, at[..., None], axis=2)[..., 0]
        d = (m / -8.0).astype(np.float32)
        inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
        q = np.clip(np.floor(blocks * inv[..., None] + np.float32(8.5)), 0, 15)  # ggml's Q4_0: a tie rounds up
    elif bits == 8:
        d = (np.abs(blocks).max(axis=2) / 127.0).astype(np.float32)
        inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
        x = blocks * inv[..., None]
        q = np.clip(np.sign(x) * np.floor(np.abs(x) + np.float32(0.5)) + 128, 0, 255)  # ggml's Q8_0 (roundf): a tie away from zero
    else:
        raise ValueError(f"bits must be 4 or 8, not {bits}")
    return q.astype(np.uint8).reshape(n, k), d


def dequantize(codes: np.ndarray, scales: np.ndarray, bits: int) -> np.ndarray:
    n, k = codes.shape
    z = 1 << (bits - 1)
    return ((codes.reshape(n, k // BLOCK, BLOCK).astype(np.float32) - z) * scales[..., None]).reshape(n, k)


def round_trip(w: np.ndarray, bits: int) -> np.ndarray:
    """The value a (N, K) weight has after quantization: what every runtime computes with."""
    codes, scales = _codes(w, bits)
    return dequantize(codes, scales, bits)


def quantizable(k: int, n: int) -> bool:
    return k % BLOCK == 0 and k >= BLOCK and n >= 1


@torch.no_grad()
def round_trip_linears(module: torch.nn.Module, bits: int) -> int:
    """Replaces every Linear weight (N, K) with K a multiple of BLOCK by its round-tripped value; returns how many.
    A weight shared by two Linears (tied embeddings) is rounded once."""
    seen, count = set(), 0
    for m in module.modules():
        if isinstance(m, torch.nn.Linear) and id(m.weight) not in seen and quantizable(m.in_features, m.out_features):
            seen.add(id(m.weight))
            m.weight.copy_(torch.from_numpy(round_trip(m.weight.detach().numpy(), bits)))
            count += 1
    return count


def _pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """(N, K) codes -> MatMulNBits's B: uint8 (N, K // BLOCK, BLOCK * bits // 8), low nibble first for 4 bits."""
    n, k = codes.shape
    if bits == 4:
        pairs = codes.reshape(n, k // 2, 2)
        packed = (pairs[..., 0] | (pairs[..., 1] << 4)).astype(np.uint8)
        return packed.reshape(n, k // BLOCK, BLOCK // 2)
    return codes.reshape(n, k // BLOCK, BLOCK)


def matmul_nbits(path: Path, bits: int, large_graph: int) -> dict:
    """Rewrites the graph at `path` in place: MatMul(A, W) with W a float32 initializer (K, N), K a multiple of
    BLOCK, becomes MatMulNBits(A, B, scales). Returns counts of quantized and float parameters."""
    from onnx import helper, numpy_helper
    model = onnx.load(str(path))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    uses = {}
    for node in g.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    new_nodes, dropped, quantized, matrices = [], set(), 0, 0
    added = []
    for node in g.node:
        w = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if (w is None or w.data_type != onnx.TensorProto.FLOAT or len(w.dims) != 2
                or not quantizable(int(w.dims[0]), int(w.dims[1]))):
            new_nodes.append(node)
            continue
        k, n = int(w.dims[0]), int(w.dims[1])
        codes, scales = _codes(numpy_helper.to_array(w).T.copy(), bits)  # (N, K): blocks run along K
        base = node.name or node.output[0]
        b = numpy_helper.from_array(_pack(codes, bits), f"{w.name}_q{bits}")
        s = numpy_helper.from_array(scales.reshape(-1).astype(np.float32), f"{w.name}_q{bits}_scales")
        added += [b, s]
        new_nodes.append(helper.make_node("MatMulNBits", [node.input[0], b.name, s.name], list(node.output),
                                          name=base + f"_q{bits}", domain="com.microsoft", K=k, N=n, bits=bits,
                                          block_size=BLOCK, accuracy_level=ACCURACY_LEVEL))
        uses[w.name] -= 1
        if uses[w.name] == 0:
            dropped.add(w.name)
        quantized += k * n
        matrices += 1
    if not matrices:  # nothing to quantize (an embedding graph): the file is left as it is, external data and all
        floats = sum(int(np.prod(i.dims)) for i in g.initializer if i.data_type == onnx.TensorProto.FLOAT)
        return {"matrices": 0, "quantized_params": 0, "float_params": floats}
    kept = [i for i in g.initializer if i.name not in dropped] + added
    del g.initializer[:]
    g.initializer.extend(kept)
    del g.node[:]
    g.node.extend(new_nodes)
    if matrices and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    floats = sum(int(np.prod(i.dims)) for i in g.initializer if i.data_type == onnx.TensorProto.FLOAT)
    size = sum(len(i.raw_data) for i in g.initializer)  # ByteSize() itself fails past protobuf's 2 GB
    data = path.with_name(path.name + ".data")
    if data.exists():
        data.unlink()  # loaded into memory above; rewritten below only if the graph is still large
    if size > large_graph:
        onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data.name)
    else:
        onnx.save(model, str(path))
    return {"matrices": matrices, "quantized_params": quantized, "float_params": floats}


def quantize_set(set_dir: Path, out: Path, bits: int) -> dict:
    """A copy of the model set at `set_dir` with every graph's MatMuls by block-sized weights in MatMulNBits (the
    golden outputs stay the float set's: a quantized copy answers near them, not exactly). The copy appears whole
    or not at all."""
    import json
    import shutil
    import scratch as scratch_folders
    import set_files
    out = out.resolve()
    # Every file judged by its real target first (a link to /dev/zero or out of the set is one line), then copied as
    # files: links are not kept, so nothing written below can reach through one into the source set.
    set_files.check_tree(set_dir)
    with scratch_folders.folder_for(out) as scratch:  # unique to this run; removed on any failure or signal
        shutil.rmtree(scratch)
        shutil.copytree(set_dir, scratch, symlinks=False)
        totals = {"graphs": 0, "matrices": 0, "quantized_params": 0, "float_params": 0}
        for graph in sorted(scratch.rglob("*.onnx")):
            counts = matmul_nbits(graph, bits, 1_800_000_000)
            totals["graphs"] += 1
            for k, v in counts.items():
                totals[k] += v
        manifest = json.loads((scratch / "manifest.json").read_text())
        manifest.setdefault("source", {})["weights"] = f"q{bits}"
        manifest["source"]["quantization"] = {"bits": bits, "block": BLOCK, "symmetric": True,
                                              "accuracy_level": ACCURACY_LEVEL, **totals}
        (scratch / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        scratch_folders.place(scratch, out)
        return totals


def main(argv=None) -> int:
    import argparse
    import sys
    p = argparse.ArgumentParser(description="Copy a model set with its MatMul weights block-quantized (8 or 4 bits, "
                                            "32 a block). Imported checkpoints get this from import_hf.py --quant, "
                                            "which also rounds the golden outputs' weights.")
    p.add_argument("set", type=Path, help="a model set (a folder with manifest.json)")
    p.add_argument("--out", type=Path, required=True, help="the quantized copy to write (must not exist)")
    p.add_argument("--quant", choices=sorted(BITS), required=True)
    a = p.parse_args(argv)
    import scratch
    scratch.stop_on_signals()
    try:
        t = quantize_set(a.set, a.out, BITS[a.quant])
    except (OSError, ValueError, scratch.Unplaceable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BaseException as e:  # the run's signal, raised or wrapped (tools/scratch.py); anything else goes on
        if (code := scratch.signal_exit(e)) is None:
            raise
        return code
    print(f"quantized {t['matrices']} matrices in {t['graphs']} graphs ({t['quantized_params']:,} parameters; "
          f"{t['float_params']:,} stay float) -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
