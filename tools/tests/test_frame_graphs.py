"""tools/frame_graphs.py: the graphs committed in Shaders/graphs are the ones it writes (tests/Engine.Tests holds
them to the C# kernels)."""
import sys
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import frame_graphs  # noqa: E402


def test_the_committed_graphs_are_what_the_generator_writes(tmp_path):
    assert frame_graphs.main(["--out", str(tmp_path)]) == 0
    for name in ("preprocess.onnx", "thumbnail.onnx"):
        written = onnx.load(str(tmp_path / name))
        committed = onnx.load(str(ROOT / "Shaders" / "graphs" / name))
        assert written.graph == committed.graph and written.opset_import == committed.opset_import, name


def test_the_graphs_take_8_bit_pixels():
    model = frame_graphs.preprocess_graph()
    rgb = next(i for i in model.graph.input if i.name == "rgb")
    assert rgb.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [o.name for o in model.graph.output] == ["pixel_values"]
    assert [o.name for o in frame_graphs.thumbnail_graph().graph.output] == ["thumbnail"]
