"""Quantized weights for CPU users of real sizes: `--quant q8` (8 bits) or `--quant q4` (4-bit text graphs).

Two kernels, each where it measured better (docs/PERFORMANCE.md, "The tower on integer kernels"):
  - int8, for the tower: ONNX Runtime's com.microsoft DynamicQuantizeMatMul. The weight in int8 (7-bit codes, so
    CPUs without VNNI do not saturate: CHANNEL_STEPS) with one scale per output column (channel_int8), the
    activations quantized to 8 bits per call over the whole tensor, integer dot products (VNNI where the CPU has it).
    On a tower's many rows (577 at CLIP-336) it is 2.4x F32 (measured with 8-bit codes), where 8-bit blocks ran no
    faster than F32 and 4-bit blocks slower.
  - nbits, for the text graphs: ONNX Runtime's com.microsoft MatMulNBits, blocks of 32 values along K with one float
    scale each, like llama.cpp's Q8_0/Q4_0, the activations quantized per block of 32 too (ACCURACY_LEVEL). On a
    decoder the int8 kernel prefilled 1.5-1.9x faster and decoded 1.05-1.13x faster, but its one activation
    scale per tensor moved the trained world set's logits twice as far (0.44 against 0.22 of 18.4), and language
    models' outlier channels make that worse at scale; blocks keep the decoder where llama.cpp's is.
The tower's products are calibrated (calibrate_int8): one whose input has outlier channels stays on 8-bit blocks.
KERNELS says which graph gets which.

The importer (`import_hf.py --quant q8|q4`) calls two things here, in this order:
  1. `round_trip_for(module, quant, role)` before export: every Linear weight the kernel will take is replaced by its
     quantized-then-dequantized value, so the PyTorch reference (the golden outputs) holds exactly the weights the
     ONNX graph will;
  2. `rewrite(path, quant, role, large_graph)` after export: every MatMul by a float initializer becomes the kernel.

The block scheme is symmetric, like llama.cpp's Q8_0 and Q4_0: per block along K, a scale d and codes q with
w = (q - z) * d, z = 2^(bits-1) (MatMulNBits's default zero point, so none is stored). 4-bit: d = m / -8 where m is
the block's value of largest magnitude (so m itself is exact), q = min(15, floor(w / d + 8.5)), two codes a
byte, the lower K index in the low nibble. 8-bit: d = max|w| / 127, q = round(w / d) + 128, a tie rounded away
from zero. The tie rules are ggml's own (roundf for Q8_0, + 8.5 then truncation for Q4_0), computed in float32 as
ggml does, and this is the one block quantizer: tools/export_gguf.py writes its GGUF blocks from `_codes` too, so
the engine's text graphs and llama.cpp's GGUF hold the same codes.
"""
from pathlib import Path

import numpy as np
import onnx
import torch

BLOCK = 32  # the default, as llama.cpp's Q8_0 / Q4_0; --block 64 or 128 for less memory (BLOCKS)
BLOCKS = (32, 64, 128)
BITS = {"q8": 8, "q4": 4}
# ONNX Runtime's accuracy level 4: activations are quantized to int8 per block and the dot products are integer,
# as llama.cpp does for its Q8_0/Q4_0 weights (Q8_0 activations). Without it MatMulNBits dequantizes to float32.
ACCURACY_LEVEL = 4
# The kernel each role's graphs get: "vision" is the tower's graph, "text" every other (decoder, compressors).
KERNELS = {"q8": {"vision": "int8", "text": "nbits"}, "q4": {"vision": "int8", "text": "nbits"}}
KERNEL_OPS = {"int8": "DynamicQuantizeMatMul", "nbits": "MatMulNBits"}


def _codes(w: np.ndarray, bits: int, block: int = BLOCK) -> tuple:
    """w: (N, K) float32, K a multiple of block -> (codes uint8 (N, K), scales float32 (N, K // block))."""
    n, k = w.shape
    blocks = w.reshape(n, k // block, block).astype(np.float32)
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


def dequantize(codes: np.ndarray, scales: np.ndarray, bits: int, block: int = BLOCK) -> np.ndarray:
    n, k = codes.shape
    z = 1 << (bits - 1)
    return ((codes.reshape(n, k // block, block).astype(np.float32) - z) * scales[..., None]).reshape(n, k)


def round_trip(w: np.ndarray, bits: int, block: int = BLOCK) -> np.ndarray:
    """The value a (N, K) weight has after quantization: what every runtime computes with."""
    codes, scales = _codes(w, bits, block)
    return dequantize(codes, scales, bits, block)


def quantizable(k: int, n: int, block: int = BLOCK) -> bool:
    return k % block == 0 and k >= block and n >= 1


@torch.no_grad()
def round_trip_linears(module: torch.nn.Module, bits: int, block: int = BLOCK) -> int:
    """Replaces every Linear weight (N, K) with K a multiple of `block` by its round-tripped value; returns how many.
    A weight shared by two Linears (tied embeddings) is rounded once."""
    seen, count = set(), 0
    for m in module.modules():
        if isinstance(m, torch.nn.Linear) and id(m.weight) not in seen and quantizable(m.in_features, m.out_features, block):
            seen.add(id(m.weight))
            m.weight.copy_(torch.from_numpy(round_trip(m.weight.detach().numpy(), bits, block)))
            count += 1
    return count


def channel_quantizable(k: int, n: int) -> bool:
    return k >= BLOCK and n >= 1  # a product narrower than a block stays float, as it does for MatMulNBits


@torch.no_grad()
def round_trip_channel_linears(module: torch.nn.Module) -> int:
    """As round_trip_linears, for the int8 kernel: each Linear weight (N, K) rounded with one scale per output row."""
    seen, count = set(), 0
    for m in module.modules():
        if isinstance(m, torch.nn.Linear) and id(m.weight) not in seen and channel_quantizable(m.in_features, m.out_features):
            seen.add(id(m.weight))
            codes, scales = channel_int8(m.weight.detach().numpy().T)
            m.weight.copy_(torch.from_numpy((codes.astype(np.float32) * scales[None, :]).T.copy()))
            count += 1
    return count


# The int8 kernel quantizes a product's whole input with one scale, so one channel far larger than the rest (the
# outlier channels that trained transformers grow) costs every other value its precision: on a tower with four such
# channels at 40x, the features' cosine to F32 fell to 0.38 (0.73 with 8-bit blocks, whose activations are
# quantized per 32 values). A product whose ordinary input channels lose more than this share to that quantization
# (calibrate_int8: the median channel's error over its own norm, on the calibration pictures) stays on 8-bit
# blocks. Measured at the CLIP-336 shape: at most 2.5% on the random checkpoint, 32.5% beside the 40x channels.
INT8_MAX_ERROR = 0.04


def _tensor_u8(a: torch.Tensor) -> torch.Tensor:
    """`a` as ONNX Runtime's DynamicQuantizeMatMul sees it: uint8 over the whole tensor's range (0 included), back in
    float."""
    lo, hi = min(float(a.min()), 0.0), max(float(a.max()), 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    zero = round(-lo / scale)
    return (torch.clamp(torch.round(a / scale) + zero, 0, 255) - zero) * scale


@torch.no_grad()
def calibrate_int8(module: torch.nn.Module, inputs: list) -> dict:
    """Runs `module` on each of `inputs` (argument tuples) with every int8-eligible Linear's input captured, and
    measures what quantizing that input as the int8 kernel does costs its ordinary channels: per input channel the
    error's norm over the channel's own norm, the median over channels. {Linear's dotted name: the largest such
    median over the inputs}. An outlier channel sets the one scale, and the median channel pays: 1-2% for a
    benign input, tens of percent beside an outlier. (The product's own error hides this: an outlier channel
    dominates the output too, and is itself quantized well.)"""
    errors, hooks = {}, []

    def hook(name):
        def measure(_, args, out):
            a = args[0].float().reshape(-1, args[0].shape[-1])
            per_channel = torch.linalg.vector_norm(_tensor_u8(a) - a, dim=0) / (torch.linalg.vector_norm(a, dim=0) + 1e-30)
            errors[name] = max(errors.get(name, 0.0), float(per_channel.median()))
        return measure
    for name, m in module.named_modules():
        if isinstance(m, torch.nn.Linear) and channel_quantizable(m.in_features, m.out_features):
            hooks.append(m.register_forward_hook(hook(name)))
    try:
        for args in inputs:
            module(*args)
    finally:
        for h in hooks:
            h.remove()
    return errors


def int8_plan(errors: dict) -> dict:
    """{Linear's dotted name: "int8" or "nbits"} from calibrate_int8's errors (INT8_MAX_ERROR)."""
    return {name: "int8" if e <= INT8_MAX_ERROR else "nbits" for name, e in errors.items()}


def node_module(node_name: str) -> str:
    """The dotted module name of an exported MatMul node: "/layers.0/mlp/fc2/MatMul" -> "layers.0.mlp.fc2"."""
    parts = node_name.strip("/").split("/")
    return ".".join(parts[:-1])


def round_trip_for(module: torch.nn.Module, quant: str, role: str, plan: dict | None = None, block: int = BLOCK) -> int:
    """Rounds `module`'s Linear weights as `rewrite` will store its graph's (KERNELS[quant][role]; for an int8 graph
    with a calibration `plan`, each Linear the plan keeps on blocks is rounded to 8-bit blocks of BLOCK)."""
    if KERNELS[quant][role] != "int8":
        return round_trip_linears(module, BITS[quant], block)
    if not plan or all(k == "int8" for k in plan.values()):
        return round_trip_channel_linears(module)
    count = 0
    for name, m in module.named_modules():
        if isinstance(m, torch.nn.Linear):
            if plan.get(name, "int8") == "nbits":
                count += round_trip_linears(m, 8)
            else:
                count += round_trip_channel_linears(m)
    return count


def _pack(codes: np.ndarray, bits: int, block: int = BLOCK) -> np.ndarray:
    """(N, K) codes -> MatMulNBits's B: uint8 (N, K // block, block * bits // 8), low nibble first for 4 bits."""
    n, k = codes.shape
    if bits == 4:
        pairs = codes.reshape(n, k // 2, 2)
        packed = (pairs[..., 0] | (pairs[..., 1] << 4)).astype(np.uint8)
        return packed.reshape(n, k // block, block // 2)
    return codes.reshape(n, k // block, block)


def _rewrite_matmuls(path: Path, large_graph: int, rewrite) -> dict:
    """Rewrites the graph at `path` in place: every MatMul(A, W) with W a float32 initializer (K, N) that
    `rewrite(node, w, consumers, inits)` takes becomes the nodes it returns. `rewrite` gives None to leave a MatMul as it
    is, or (nodes, new initializers, names of initializers and nodes it replaces); `consumers` maps a value's name
    to the nodes that read it. Returns counts of quantized and
    float parameters; a graph with no MatMul taken is left as it is on disk, external data and all."""
    model = onnx.load(str(path))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    uses, consumers = {}, {}
    for node in g.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
            consumers.setdefault(name, []).append(node)
    replaced_nodes, rewritten, added, dropped = set(), {}, [], set()
    quantized, matrices = 0, 0
    for node in g.node:
        w = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if w is None or w.data_type != onnx.TensorProto.FLOAT or len(w.dims) != 2:
            continue
        taken = rewrite(node, w, consumers, inits)
        if taken is None:
            continue
        nodes, new_inits, used_up = taken
        rewritten[id(node)] = nodes
        added += new_inits
        for name in used_up:  # initializers the new nodes no longer read, and nodes they absorb (a bias Add)
            if name in inits:
                uses[name] -= 1
                if uses[name] == 0:
                    dropped.add(name)
            else:
                replaced_nodes.add(name)
        uses[w.name] -= 1
        if uses[w.name] == 0:
            dropped.add(w.name)
        quantized += int(w.dims[0]) * int(w.dims[1])
        matrices += 1
    if not matrices:  # nothing to quantize (an embedding graph): the file is left as it is, external data and all
        floats = sum(int(np.prod(i.dims)) for i in g.initializer if i.data_type == onnx.TensorProto.FLOAT)
        return {"matrices": 0, "quantized_params": 0, "float_params": floats}
    new_nodes = []
    for node in g.node:
        if node.name and node.name in replaced_nodes:
            continue
        new_nodes.extend(rewritten.get(id(node), [node]))
    kept = [i for i in g.initializer if i.name not in dropped] + added
    del g.initializer[:]
    g.initializer.extend(kept)
    del g.node[:]
    g.node.extend(new_nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
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


def _nbits_node(node, w, bits: int, block: int = BLOCK):
    """MatMul(A, W) as MatMulNBits(A, B, scales): (nodes, initializers, nothing replaced); None if K is not whole blocks."""
    from onnx import helper, numpy_helper
    k, n = int(w.dims[0]), int(w.dims[1])
    if not quantizable(k, n, block):
        return None
    codes, scales = _codes(numpy_helper.to_array(w).T.copy(), bits, block)  # (N, K): blocks run along K
    b = numpy_helper.from_array(_pack(codes, bits, block), f"{w.name}_q{bits}")
    s = numpy_helper.from_array(scales.reshape(-1).astype(np.float32), f"{w.name}_q{bits}_scales")
    return ([helper.make_node("MatMulNBits", [node.input[0], b.name, s.name], list(node.output),
                              name=(node.name or node.output[0]) + f"_q{bits}", domain="com.microsoft", K=k, N=n,
                              bits=bits, block_size=block, accuracy_level=ACCURACY_LEVEL)], [b, s], [])


def matmul_nbits(path: Path, bits: int, large_graph: int, block: int = BLOCK) -> dict:
    """Rewrites the graph at `path` in place: MatMul(A, W) with W a float32 initializer (K, N), K a multiple of
    `block`, becomes MatMulNBits(A, B, scales). Returns counts of quantized and float parameters."""
    def to_nbits(node, w, consumers, inits):
        return _nbits_node(node, w, bits, block)
    return _rewrite_matmuls(path, large_graph, to_nbits)


# The int8 kernel's weights keep 7 bits (codes in [-63, 63], ONNX Runtime's reduce_range): on an x86 CPU without
# VNNI (AVX2 alone, as on the AMD EPYC these tests also run on) the u8 x s8 product adds two products into a
# saturating int16, and 255 x 127 x 2 overflows it; 255 x 63 x 2 = 32,130 does not. With 8-bit codes the features of
# a SigLIP tower were 22% off their golden on such a CPU (about 1% with VNNI); with 7 they are within the tests' 5%.
CHANNEL_STEPS = 63


def channel_int8(w: np.ndarray) -> tuple:
    """w: (K, N) float32 -> (codes int8 (K, N) in [-CHANNEL_STEPS, CHANNEL_STEPS], scales float32 (N,)): symmetric,
    one scale per output column, d = max|w| / CHANNEL_STEPS over the column, q = round(w / d), a tie away from zero
    (as _codes does for Q8_0)."""
    d = (np.abs(w).max(axis=0) / np.float32(CHANNEL_STEPS)).astype(np.float32)
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    x = w.astype(np.float32) * inv[None, :]
    q = np.clip(np.sign(x) * np.floor(np.abs(x) + np.float32(0.5)), -CHANNEL_STEPS, CHANNEL_STEPS)
    return q.astype(np.int8), d


def dynamic_int8(path: Path, large_graph: int, plan: dict | None = None) -> dict:
    """Rewrites the graph at `path` in place for many-row products: MatMul(A, W) with W a float32 initializer (K, N)
    becomes ONNX Runtime's com.microsoft DynamicQuantizeMatMul(A, codes, scales, zero points, bias): W in int8 with
    one scale per output column (channel_int8), A quantized to 8 bits per call over the whole tensor, integer dot
    products (VNNI where the CPU has it), and a following Add of a float (N,) initializer folded in as the bias.
    Products that read the same A (an attention's query, key and value) become one over their weights side by side,
    then a Split: A is quantized once, and one wide product runs instead of three (the codes and scales are the same,
    a column's scale being its own). A product that `plan` (int8_plan, by the exported node's module) keeps on
    blocks becomes an 8-bit MatMulNBits instead. Returns counts of quantized and float parameters, and how many
    products stayed on blocks."""
    from onnx import helper, numpy_helper
    plan = plan or {}
    on_blocks = []

    def planned_int8(node):
        return plan.get(node_module(node.name), "int8") == "int8" if node.name else True

    def bias_of(node, n, consumers, inits):
        """The Add that follows `node` with a float (N,) initializer, and that initializer; (None, None) if none."""
        after = consumers.get(node.output[0], [])
        add = after[0] if len(after) == 1 and after[0].op_type == "Add" and after[0].name else None
        if add is None:
            return None, None
        other = [x for x in add.input if x != node.output[0]]
        bias = inits.get(other[0]) if len(other) == 1 else None
        if bias is None or bias.data_type != onnx.TensorProto.FLOAT or list(bias.dims) != [n]:
            return None, None
        return add, bias

    def weight_of(node, inits):
        w = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        ok = w is not None and w.data_type == onnx.TensorProto.FLOAT and len(w.dims) == 2 and planned_int8(node)
        return w if ok and channel_quantizable(int(w.dims[0]), int(w.dims[1])) else None

    def siblings(node, consumers, inits):
        """The products reading node's A that merge with it: all bias-folded or all not, each read once."""
        group = [c for c in consumers.get(node.input[0], []) if weight_of(c, inits) is not None]
        if len(group) < 2 or len({int(weight_of(c, inits).dims[0]) for c in group}) != 1:
            return [node]
        biased = [bias_of(c, int(weight_of(c, inits).dims[1]), consumers, inits)[0] is not None for c in group]
        if len(set(biased)) != 1 or len({weight_of(c, inits).name for c in group}) != len(group):
            return [node]
        return group

    def to_dynamic(node, w, consumers, inits):
        if not planned_int8(node):
            taken = _nbits_node(node, w, 8)
            on_blocks.extend([node.name] if taken else [])
            return taken
        if weight_of(node, inits) is None:
            return None
        group = siblings(node, consumers, inits)
        if group[0] is not node:
            return [], [], []  # merged into the group's first product, which comes before it in the graph
        parts = [channel_int8(numpy_helper.to_array(weight_of(c, inits))) for c in group]
        widths = [int(weight_of(c, inits).dims[1]) for c in group]
        base = (node.name or node.output[0]) + ("_i8" if len(group) == 1 else "_merged_i8")
        b = numpy_helper.from_array(np.concatenate([p[0] for p in parts], axis=1), f"{w.name}_i8")
        scale = numpy_helper.from_array(np.concatenate([p[1] for p in parts]), f"{w.name}_i8_scales")
        z = numpy_helper.from_array(np.zeros(sum(widths), np.int8), f"{w.name}_i8_zero")
        inputs, added, used, outputs = [node.input[0], b.name, scale.name, z.name], [b, scale, z], [], []
        for c, n in zip(group, widths):
            add, bias = bias_of(c, n, consumers, inits)
            outputs += list(add.output) if add is not None else list(c.output)
            used += [add.name, bias.name] if add is not None else []
        if used:
            biases = [numpy_helper.to_array(bias_of(c, n, consumers, inits)[1]) for c, n in zip(group, widths)]
            bias = numpy_helper.from_array(np.concatenate(biases).astype(np.float32), f"{w.name}_i8_bias")
            inputs.append(bias.name)
            added.append(bias)
        if len(group) == 1:
            return [helper.make_node("DynamicQuantizeMatMul", inputs, outputs, name=base, domain="com.microsoft")], added, used
        wide = base + "_output"
        sizes = numpy_helper.from_array(np.array(widths, np.int64), base + "_sizes")
        return ([helper.make_node("DynamicQuantizeMatMul", inputs, [wide], name=base, domain="com.microsoft"),
                 helper.make_node("Split", [wide, sizes.name], outputs, name=base + "_split", axis=-1)],
                added + [sizes], used)
    counts = _rewrite_matmuls(path, large_graph, to_dynamic)
    return {**counts, "on_blocks": len(on_blocks)}


def rewrite(path: Path, quant: str, role: str, large_graph: int, plan: dict | None = None, block: int = BLOCK) -> dict:
    """The graph at `path` with its MatMuls on the kernel KERNELS[quant][role] (in place; an int8 graph's products
    that the calibration `plan` keeps on blocks in 8-bit MatMulNBits); counts as the kernels give them, and which
    kernel. `block` is the text graphs' (the int8 tower's products kept on blocks stay on blocks of BLOCK)."""
    kernel = KERNELS[quant][role]
    if kernel == "int8":
        counts = dynamic_int8(path, large_graph, plan)
    else:
        counts = {**matmul_nbits(path, BITS[quant], large_graph, block), "on_blocks": 0}
    return {**counts, "kernel": KERNEL_OPS[kernel] if counts["matrices"] else None}


def describe(quant: str, counts: dict, block: int = BLOCK) -> dict:
    """The manifest's record of a quantization: `counts` maps each graph (its path in the set) to what rewrite gave."""
    kernels = {graph: c["kernel"] for graph, c in sorted(counts.items()) if c["kernel"]}
    record = {"bits": BITS[quant], "symmetric": True, "kernels": kernels}
    if "MatMulNBits" in kernels.values() or any(c.get("on_blocks") for c in counts.values()):
        record.update(block=block, accuracy_level=ACCURACY_LEVEL)
    if "DynamicQuantizeMatMul" in kernels.values():
        record["int8"] = "one scale per output column; activations quantized per call"
        record["int8_max_error"] = INT8_MAX_ERROR
        record["int8_kept_on_blocks"] = sum(c.get("on_blocks", 0) for c in counts.values())
    for key in ("matrices", "quantized_params", "float_params"):
        record[key] = sum(c[key] for c in counts.values())
    record["graphs"] = len(counts)
    return record


def quantize_set(set_dir: Path, out: Path, bits: int, block: int = BLOCK) -> dict:
    """A copy of the model set at `set_dir` with every graph's MatMuls by float weights on the kernel KERNELS gives
    its role (the golden outputs stay the float set's: a quantized copy answers near them, not exactly). The copy
    appears whole or not at all."""
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
        manifest = json.loads((scratch / "manifest.json").read_text())
        tower = (scratch / manifest["vision"]["file"]).resolve()
        counts = {}
        for graph in sorted(scratch.rglob("*.onnx")):
            role = "vision" if graph.resolve() == tower else "text"
            counts[graph.relative_to(scratch).as_posix()] = rewrite(graph, "q8" if bits == 8 else "q4", role, set_files.EXTERNAL_ABOVE, None, block)
        manifest.setdefault("source", {})["weights"] = f"q{bits}"
        totals = describe("q8" if bits == 8 else "q4", counts, block)
        manifest["source"]["quantization"] = totals
        (scratch / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        scratch_folders.place(scratch, out)
        return totals


def main(argv=None) -> int:
    import argparse
    import sys
    p = argparse.ArgumentParser(description="Copy a model set with its MatMul weights quantized: the tower in int8 "
                                            "with one scale per output column (DynamicQuantizeMatMul), the other "
                                            "graphs in 8- or 4-bit blocks of 32 (MatMulNBits). Imported checkpoints "
                                            "get this from import_hf.py --quant, which also rounds the golden "
                                            "outputs' weights.")
    p.add_argument("set", type=Path, help="a model set (a folder with manifest.json)")
    p.add_argument("--out", type=Path, required=True, help="the quantized copy to write (must not exist)")
    p.add_argument("--quant", choices=sorted(BITS), required=True)
    p.add_argument("--block", type=int, choices=BLOCKS, default=BLOCK,
                   help="values per scale in the text graphs' blocks (default 32, as llama.cpp's Q4_0): 128 holds a 4-bit "
                        "decoder in about 15%% less memory (an 8-bit one in about 10%%) and rounds it more coarsely")
    a = p.parse_args(argv)
    import scratch
    scratch.stop_on_signals()
    try:
        t = quantize_set(a.set, a.out, BITS[a.quant], a.block)
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
