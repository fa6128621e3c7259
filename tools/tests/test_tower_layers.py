"""tools/tower_layers.py: every layer's hidden state exposed as an output, and its one-line refusals."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

TOOLS = Path(__file__).resolve().parents[1]


def _two_layer_graph(path: Path, names=("/layers.0/Add_1", "/layers.1/Add_1")) -> None:
    one = numpy_helper.from_array(np.ones(4, np.float32), "one")
    nodes = [helper.make_node("Add", ["x", "one"], ["h0"], name=names[0]),
             helper.make_node("Add", ["h0", "one"], ["h1"], name=names[1]),
             helper.make_node("Identity", ["h1"], ["features"], name="/out")]
    g = helper.make_graph(nodes, "tower", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 4])],
                          [helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, [1, 2, 4])], [one])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _run(*args):
    return subprocess.run([sys.executable, str(TOOLS / "tower_layers.py"), *map(str, args)], capture_output=True, text=True, timeout=60)


def test_each_layer_becomes_an_output_beside_the_features(tmp_path):
    src, out = tmp_path / "vision.onnx", tmp_path / "layers" / "vision.onnx"
    _two_layer_graph(src)
    p = _run(src, out)
    assert p.returncode == 0, p.stderr
    m = onnx.load(str(out))
    assert [o.name for o in m.graph.output] == ["features", "layer.0", "layer.1"]
    exposed = {n.output[0]: n.input[0] for n in m.graph.node if n.op_type == "Identity" and n.output[0].startswith("layer.")}
    assert exposed == {"layer.0": "h0", "layer.1": "h1"}
    onnx.checker.check_model(m)


def test_a_graph_without_layers_or_an_existing_output_is_refused_in_one_line(tmp_path):
    src = tmp_path / "plain.onnx"
    _two_layer_graph(src, names=("/a", "/b"))
    p = _run(src, tmp_path / "out.onnx")
    assert p.returncode == 2 and "no /layers.N/Add_1" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.onnx").exists()
    p = _run(src, src)
    assert p.returncode == 2 and "exists" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    p = _run(tmp_path / "junk.onnx", tmp_path / "o.onnx")
    assert p.returncode == 2 and p.stderr.startswith("error: ") and len(p.stderr.strip().splitlines()) == 1
