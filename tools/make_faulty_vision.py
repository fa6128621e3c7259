"""Writes tests/data/faulty_vision.onnx: a stand-in vision graph for the tiny set that fails inside ONNX Runtime
on bright frames only (a Gather whose index is 1000 when the image's mean is positive, out of bounds of a
10-row table) and returns constant features otherwise. The frame-loop fault test swaps it into a copy of
models/tiny-random to check that one failing frame is logged and skipped while the loop goes on.
  /usr/bin/python3 tools/make_faulty_vision.py
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    m = json.loads((ROOT / "models" / "tiny-random" / "manifest.json").read_text())
    v = m["vision"]
    size, patches, dim, multi = v["image_size"], v["patches"] if "patches" in v else v["grid"] ** 2, v["dim"], v["multi_dim"]
    nodes = [
        helper.make_node("ReduceMean", ["pixel_values"], ["mean"], keepdims=0),  # scalar brightness
        helper.make_node("Greater", ["mean", "zero"], ["bright"]),
        helper.make_node("Cast", ["bright"], ["bright_i"], to=TensorProto.INT64),
        helper.make_node("Mul", ["bright_i", "thousand"], ["index"]),  # 0 or 1000
        helper.make_node("Gather", ["table", "index"], ["row"], axis=0),  # fails at run time for 1000
        helper.make_node("ReduceSum", ["row"], ["row_sum"], keepdims=0),
        helper.make_node("Mul", ["row_sum", "zero"], ["nothing"]),  # keeps the Gather in the graph
        helper.make_node("Add", ["features_const", "nothing"], ["features"]),
        helper.make_node("Add", ["multi_const", "nothing"], ["features_multi"]),
    ]
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        numpy_helper.from_array(np.array(1000, dtype=np.int64), "thousand"),
        numpy_helper.from_array(np.ones((10, 4), dtype=np.float32), "table"),
        numpy_helper.from_array(rng.standard_normal((1, patches, dim)).astype(np.float32), "features_const"),
        numpy_helper.from_array(rng.standard_normal((1, patches, multi)).astype(np.float32), "multi_const"),
    ]
    graph = helper.make_graph(nodes, "faulty_vision",
                              [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, size, size])],
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", patches, dim]),
                               helper.make_tensor_value_info("features_multi", TensorProto.FLOAT, ["batch", patches, multi])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tools/make_faulty_vision.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    out = ROOT / "tests" / "data" / "faulty_vision.onnx"
    onnx.save(model, str(out))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
