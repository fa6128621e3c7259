"""tools/quantize.py: the block scheme's arithmetic, the MatMulNBits packing, and the graph rewrite."""
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

import quantize  # noqa: E402


@pytest.mark.parametrize("bits", [4, 8])
def test_round_trip_error_is_within_half_a_step_and_idempotent(bits):
    w = np.random.default_rng(bits).standard_normal((6, 64)).astype(np.float32)
    codes, scales = quantize._codes(w, bits)
    rt = quantize.dequantize(codes, scales, bits)
    step = np.repeat(np.abs(scales), quantize.BLOCK, axis=1)
    # half a step, except 4-bit's one-sided clip: +8 steps is not a code (0..15 is -8..+7), as in llama.cpp's Q4_0
    assert np.all(np.abs(rt - w) <= (step if bits == 4 else step / 2) + 1e-6)
    assert np.mean(np.abs(rt - w) <= step / 2 + 1e-6) > 0.97
    assert np.array_equal(quantize.round_trip(rt, bits), rt)  # quantizing the stored values again changes nothing
    # the block's largest magnitude is kept exactly (4-bit: as code 0, i.e. -8 steps; 8-bit: as +-127 steps)
    blocks, rblocks = w.reshape(6, 2, 32), rt.reshape(6, 2, 32)
    at = np.abs(blocks).argmax(axis=2)
    assert np.allclose(np.take_along_axis(blocks, at[..., None], 2), np.take_along_axis(rblocks, at[..., None], 2), rtol=1e-6)


def test_four_bit_codes_pack_two_a_byte_low_nibble_first():
    codes = np.arange(64, dtype=np.uint8).reshape(1, 64) % 16
    packed = quantize._pack(codes, 4)
    assert packed.shape == (1, 2, 16)
    assert packed[0, 0, 0] == (0 | 1 << 4) and packed[0, 0, 1] == (2 | 3 << 4) and packed[0, 1, 15] == (14 | 15 << 4)


def test_zero_block_quantizes_to_zero():
    w = np.zeros((2, 32), np.float32)
    for bits in (4, 8):
        assert np.array_equal(quantize.round_trip(w, bits), w)


def test_linears_are_rounded_once_even_when_tied():
    emb = torch.nn.Embedding(10, 32)
    head = torch.nn.Linear(32, 10, bias=False)
    head.weight = emb.weight
    odd = torch.nn.Linear(20, 4)  # 20 inputs: not a whole block, left alone
    before = odd.weight.detach().clone()
    model = torch.nn.ModuleList([emb, head, odd])
    assert quantize.round_trip_linears(model, 4) == 1
    assert torch.equal(odd.weight, before)
    assert torch.equal(emb.weight, head.weight)
    assert len({round(float(x), 6) for x in (emb.weight[0, :32] / emb.weight[0, :32].abs().max())}) <= 16


def test_graph_rewrite_replaces_block_matmuls_and_keeps_the_rest(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 8)).astype(np.float32)   # K=64: quantized
    v = rng.standard_normal((8, 3)).astype(np.float32)    # K=8: not a whole block, stays a MatMul
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("MatMul", ["h", "v"], ["y"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(v, "v")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    counts = quantize.matmul_nbits(path, 4, large_graph=1 << 30)
    assert counts == {"matrices": 1, "quantized_params": 64 * 8, "float_params": 8 * 3 + 64 * 8 // 32}
    m = onnx.load(str(path))
    ops = [(n.op_type, n.domain) for n in m.graph.node]
    assert ops == [("MatMulNBits", "com.microsoft"), ("MatMul", "")]
    node = m.graph.node[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["K"] == 64 and attrs["N"] == 8 and attrs["bits"] == 4 and attrs["block_size"] == 32
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    assert "w" not in inits and inits[node.input[1]].shape == (8, 2, 16) and inits[node.input[2]].shape == (16,)
    # unpacking B gives back the round-tripped weight (N, K), transposed from the MatMul's (K, N)
    packed = inits[node.input[1]].reshape(8, 32)
    codes = np.stack([packed & 15, packed >> 4], axis=-1).reshape(8, 64)
    assert np.allclose(quantize.dequantize(codes, inits[node.input[2]].reshape(8, 2), 4), quantize.round_trip(w.T.copy(), 4))
    assert any(o.domain == "com.microsoft" for o in m.opset_import)


def test_a_coarser_block_has_one_scale_per_block_values_and_leaves_narrower_products_float(tmp_path):
    # --block 128: one scale per 128 values along K (MatMulNBits block_size 128); K = 64 is less than a block, stays float
    rng = np.random.default_rng(2)
    w = rng.standard_normal((256, 8)).astype(np.float32)
    v = rng.standard_normal((8, 64)).astype(np.float32)
    u = rng.standard_normal((64, 3)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("MatMul", ["h", "v"], ["k"]),
         helper.make_node("MatMul", ["k", "u"], ["y"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 256])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(v, "v"), numpy_helper.from_array(u, "u")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    counts = quantize.rewrite(path, "q4", "text", 1 << 30, None, 128)
    assert counts["matrices"] == 1 and counts["quantized_params"] == 256 * 8 and counts["kernel"] == "MatMulNBits"
    m = onnx.load(str(path))
    assert [n.op_type for n in m.graph.node] == ["MatMulNBits", "MatMul", "MatMul"]
    node = m.graph.node[0]
    assert {a.name: helper.get_attribute_value(a) for a in node.attribute}["block_size"] == 128
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    assert inits[node.input[1]].shape == (8, 2, 64) and inits[node.input[2]].shape == (16,)
    packed = inits[node.input[1]].reshape(8, 128)
    codes = np.stack([packed & 15, packed >> 4], axis=-1).reshape(8, 256)
    rt = quantize.dequantize(codes, inits[node.input[2]].reshape(8, 2), 4, 128)
    assert np.allclose(rt, quantize.round_trip(w.T.copy(), 4, 128))
    # one scale for 128 values: coarser than blocks of 32, and each value still within a step of its block's scale
    step = np.repeat(np.abs(inits[node.input[2]].reshape(8, 2)), 128, axis=1)
    assert np.all(np.abs(rt - w.T) <= step + 1e-6)
    assert np.abs(rt - w.T).mean() > np.abs(quantize.round_trip(w.T.copy(), 4) - w.T).mean()
    assert quantize.describe("q4", {"m.onnx": counts}, 128)["block"] == 128


def test_channel_int8_rounds_each_column_to_63_steps_of_its_own_scale():
    # 7-bit codes: an AVX2 CPU without VNNI adds two u8 x s8 products into a saturating int16 (255 x 127 x 2 overflows)
    assert quantize.CHANNEL_STEPS == 63 and 255 * quantize.CHANNEL_STEPS * 2 <= 32767
    w = np.array([[1.0, -0.02, 0.0], [-0.4, 0.008, 0.0], [0.25, 0.005, 0.0]], np.float32)  # (K=3, N=3)
    codes, scales = quantize.channel_int8(w)
    assert codes.dtype == np.int8 and np.allclose(scales, [1 / 63, 0.02 / 63, 0])
    assert codes[:, 0].tolist() == [63, -25, 16] and codes[:, 1].tolist() == [-63, 25, 16]  # 25.2 down, 15.75 up
    assert codes[:, 2].tolist() == [0, 0, 0]  # an all-zero column keeps a zero scale and zero codes
    rng = np.random.default_rng(1)
    big = rng.standard_normal((256, 40)).astype(np.float32)
    c, d = quantize.channel_int8(big)
    assert np.abs(c).max() == 63 and np.all(np.abs(c.astype(np.float32) * d - big) <= d / 2 + 1e-7)


def _matmul_add_graph(tmp_path, w, bias, v):
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"), helper.make_node("Add", ["bias", "h"], ["hb"], name="add"),
         helper.make_node("MatMul", ["hb", "v"], ["y"], name="small")], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [5, w.shape[0]])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [5, v.shape[1]])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "bias"), numpy_helper.from_array(v, "v")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_int8_rewrite_folds_the_bias_and_keeps_narrow_products_float(tmp_path):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((48, 6)).astype(np.float32)  # K=48: not a whole number of blocks, still one int8 product
    bias = rng.standard_normal(6).astype(np.float32)
    v = rng.standard_normal((6, 2)).astype(np.float32)   # K=6: narrower than a block, stays a MatMul
    path = _matmul_add_graph(tmp_path, w, bias, v)
    counts = quantize.rewrite(path, "q8", "vision", large_graph=1 << 30)  # the tower: int8 at q8 and q4
    assert counts == {"matrices": 1, "quantized_params": 48 * 6, "float_params": 6 + 6 * 2 + 6, "on_blocks": 0,
                      "kernel": "DynamicQuantizeMatMul"}
    m = onnx.load(str(path))
    assert [(n.op_type, n.domain) for n in m.graph.node] == [("DynamicQuantizeMatMul", "com.microsoft"), ("MatMul", "")]
    node = m.graph.node[0]
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    assert list(node.input[:1]) == ["x"] and list(node.output) == ["hb"]  # the Add is gone: its output comes from here
    codes, scales, zero, b = (inits[n] for n in node.input[1:])
    assert codes.dtype == np.int8 and codes.shape == (48, 6) and scales.shape == (6,) and not zero.any()
    assert np.array_equal(b, bias) and "w" not in inits
    assert np.allclose(codes.astype(np.float32) * scales, quantize.channel_int8(w)[0].astype(np.float32) * quantize.channel_int8(w)[1])


def test_int8_rewrite_merges_products_of_one_input_and_splits_their_outputs(tmp_path):
    rng = np.random.default_rng(3)
    ws = [rng.standard_normal((32, n)).astype(np.float32) for n in (4, 4, 6)]
    bs = [rng.standard_normal(n).astype(np.float32) for n in (4, 4, 6)]
    nodes, inits = [], []
    for i, (w, b) in enumerate(zip(ws, bs)):
        nodes += [helper.make_node("MatMul", ["x", f"w{i}"], [f"m{i}"], name=f"mm{i}"),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"y{i}"], name=f"add{i}")]
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [7, 32])],
                          [helper.make_tensor_value_info(f"y{i}", onnx.TensorProto.FLOAT, [7, w.shape[1]]) for i, w in enumerate(ws)],
                          inits)
    path = tmp_path / "qkv.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    counts = quantize.dynamic_int8(path, large_graph=1 << 30)
    assert counts["matrices"] == 3 and counts["quantized_params"] == 32 * 14
    m = onnx.load(str(path))
    assert [n.op_type for n in m.graph.node] == ["DynamicQuantizeMatMul", "Split"]
    dq, split = m.graph.node
    assert list(split.output) == ["y0", "y1", "y2"]  # the graph's outputs come straight from the split
    got = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    assert got[split.input[1]].tolist() == [4, 4, 6]
    assert np.array_equal(got[dq.input[1]], np.concatenate([quantize.channel_int8(w)[0] for w in ws], axis=1))
    assert np.array_equal(got[dq.input[4]], np.concatenate(bs))
    assert not {"w0", "w1", "w2", "b0", "b1", "b2"} & set(got)  # nothing left behind
    onnx.checker.check_model(m)


class _TwoInputs(torch.nn.Module):
    """Two products, one fed a benign input and one fed the same input with one channel 60x the rest."""
    def __init__(self):
        super().__init__()
        self.benign = torch.nn.Linear(64, 16)
        self.outlier = torch.nn.Linear(64, 16)

    def forward(self, x):
        spiked = x.clone()
        spiked[..., 3] *= 60.0
        return self.benign(x) + self.outlier(spiked)


def test_calibration_keeps_a_product_with_an_outlier_channel_on_blocks(tmp_path):
    torch.manual_seed(0)
    module = _TwoInputs()
    errors = quantize.calibrate_int8(module, [(torch.randn(2, 50, 64),), (torch.randn(2, 50, 64),)])
    assert set(errors) == {"benign", "outlier"}
    assert errors["benign"] < 0.02 < quantize.INT8_MAX_ERROR < errors["outlier"]
    plan = quantize.int8_plan(errors)
    assert plan == {"benign": "int8", "outlier": "nbits"}
    # the round trip follows the plan: per column for the int8 product, 8-bit blocks for the other
    before = {n: m.weight.detach().clone() for n, m in module.named_children()}
    assert quantize.round_trip_for(module, "q8", "vision", plan) == 2
    codes, scales = quantize.channel_int8(before["benign"].numpy().T)
    assert torch.equal(module.benign.weight, torch.from_numpy((codes.astype(np.float32) * scales).T.copy()))
    assert torch.equal(module.outlier.weight, torch.from_numpy(quantize.round_trip(before["outlier"].numpy(), 8)))
    # and so does the graph: an exported product the plan keeps on blocks is an 8-bit MatMulNBits
    rng = np.random.default_rng(4)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w0"], ["a"], name="/benign/MatMul"),
         helper.make_node("MatMul", ["x", "w1"], ["b"], name="/outlier/MatMul")], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [7, 64])],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [7, 16]) for n in ("a", "b")],
        [numpy_helper.from_array(rng.standard_normal((64, 16)).astype(np.float32), n) for n in ("w0", "w1")])
    path = tmp_path / "planned.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    counts = quantize.rewrite(path, "q8", "vision", 1 << 30, plan)
    assert counts["on_blocks"] == 1 and counts["matrices"] == 2  # the two do not merge: one is on blocks
    m = onnx.load(str(path))
    assert [(n.name, n.op_type) for n in m.graph.node] == [("/benign/MatMul_i8", "DynamicQuantizeMatMul"),
                                                          ("/outlier/MatMul_q8", "MatMulNBits")]
    assert quantize.node_module("/layers.0/mlp/fc2/MatMul") == "layers.0.mlp.fc2"


def test_the_torch_round_trip_holds_the_weights_the_int8_graph_stores(tmp_path):
    lin = torch.nn.Linear(64, 5)
    original = lin.weight.detach().clone()
    assert quantize.round_trip_for(lin, "q4", "vision") == 1  # a tower is int8 at q4 too
    codes, scales = quantize.channel_int8(original.numpy().T)
    assert torch.equal(lin.weight, torch.from_numpy((codes.astype(np.float32) * scales).T.copy()))
    block = torch.nn.Linear(64, 5)
    before = block.weight.detach().clone()
    quantize.round_trip_for(block, "q4", "text")
    assert torch.equal(block.weight, torch.from_numpy(quantize.round_trip(before.numpy(), 4)))


def test_quantize_set_copies_a_set_with_every_graph_rewritten(tmp_path):
    import json
    import subprocess
    src = TOOLS.parent / "models" / "tiny-random"
    out = tmp_path / "tiny-q4"
    import hashlib
    before = {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(src.rglob("*")) if f.is_file()}
    p = subprocess.run([sys.executable, str(TOOLS / "quantize.py"), str(src), "--out", str(out), "--quant", "q4"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["source"]["weights"] == "q4" and m["source"]["quantization"]["bits"] == 4
    graphs = sorted(out.rglob("*.onnx"))
    assert len(graphs) == m["source"]["quantization"]["graphs"] == len(sorted(src.rglob("*.onnx")))
    q = m["source"]["quantization"]
    ops = {g.relative_to(out).as_posix(): [n.op_type for n in onnx.load(str(g)).graph.node] for g in graphs}
    # q4: the tower on the int8 kernel, the text graphs in 4-bit blocks; every quantized product counted once
    tower = m["vision"]["file"]
    assert q["kernels"][tower] == "DynamicQuantizeMatMul" and "MatMulNBits" not in ops[tower]
    assert {k for g, k in q["kernels"].items() if g != tower} == {"MatMulNBits"}
    # every quantized product counted once (query, key and value merged into one int8 node count as three)
    nodes = sum(o.count("MatMulNBits") + o.count("DynamicQuantizeMatMul") + 2 * o.count("Split") for o in ops.values())
    assert nodes == q["matrices"] > 0
    assert q["block"] == 32 and q["accuracy_level"] == 4
    # the source set is untouched, and a second run over the copy is refused in one line
    # (its decoders hold GroupQueryAttention, so its bytes are compared, not its operator domains)
    assert {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(src.rglob("*")) if f.is_file()} == before
    p = subprocess.run([sys.executable, str(TOOLS / "quantize.py"), str(src), "--out", str(out), "--quant", "q8"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.startswith("error: ") and len(p.stderr.strip().splitlines()) == 1


def test_quantize_set_refuses_a_folder_that_is_not_a_set(tmp_path):
    with pytest.raises(ValueError, match="not a model set"):
        quantize.quantize_set(tmp_path, tmp_path / "out", 4)
    assert not (tmp_path / "out").exists()


# Issue 31, finding 7: a set's files are judged by their real targets before the set is copied and read.
def _linked_set(tmp_path, target: str) -> Path:
    import shutil
    src = tmp_path / "set"
    shutil.copytree(TOOLS.parent / "models" / "tiny-random", src)
    graph = sorted(src.rglob("*.onnx"))[-1]
    graph.unlink()
    graph.symlink_to(target)
    return src


@pytest.mark.parametrize("target, fragment", [("/dev/zero", "not a regular file"), ("outside", "links outside the set")])
def test_a_set_with_a_link_to_a_device_or_out_of_it_is_refused(tmp_path, target, fragment):
    import subprocess
    if target == "outside":
        target = str(tmp_path / "outside.onnx")
        Path(target).write_bytes((TOOLS.parent / "models" / "tiny-random" / "vision.onnx").read_bytes())
    src = _linked_set(tmp_path, target)
    out = tmp_path / "q"
    p = subprocess.run([sys.executable, str(TOOLS / "quantize.py"), str(src), "--out", str(out), "--quant", "q8"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and fragment in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not out.exists() and not list(tmp_path.glob(".q.partial-*"))


def test_a_link_inside_the_set_is_copied_as_a_file(tmp_path):
    import shutil
    import subprocess
    src = tmp_path / "set"
    shutil.copytree(TOOLS.parent / "models" / "tiny-random", src)
    graph = sorted(src.rglob("*.onnx"))[-1]
    (src / "kept.onnx").write_bytes(graph.read_bytes())
    graph.unlink()
    graph.symlink_to(src / "kept.onnx")  # absolute, inside the set: a kept link would let the rewrite reach the source
    before = (src / "kept.onnx").read_bytes()
    out = tmp_path / "q"
    p = subprocess.run([sys.executable, str(TOOLS / "quantize.py"), str(src), "--out", str(out), "--quant", "q8"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    copied = out / graph.relative_to(src)
    assert not copied.is_symlink() and (src / "kept.onnx").read_bytes() == before
