"""Writes the frame kernels as ONNX graphs (Shaders/graphs/), so that a frame can go to an execution provider once as
8-bit pixels and be prepared where the vision tower runs. The C# kernels in Shaders/ (Preprocess.ResizeNormalize,
SceneChange.Thumbnail) stay the reference: tests/Shaders.Tests hold each graph to its kernel within one 8-bit step.

  /usr/bin/python3 tools/frame_graphs.py [--out Shaders/graphs]

preprocess.onnx
  rgb      uint8 [H, W, 3]    the frame as captured (R, G, B)
  region   int64 [4]          top, left, height, width of the part resized (the whole frame, or its centred square)
  sizes    int64 [4]          1, 3, S, S: the tower's input size
  scale    float [3]          per channel: 1 / (255 std)
  shift    float [3]          per channel: -mean / std
  -> pixel_values float [1, 3, S, S]: bilinear resize with half-pixel centres and no antialiasing (PyTorch's
     interpolate(mode="bilinear", align_corners=False), what the kernel does), then v * scale + shift.

thumbnail.onnx
  rgb      uint8 [H, W, 3]
  rows     float [T, H]       row r's weights: 1 / (rows in bin r) on the rows of bin r (bin of y = floor(y T / H))
  columns  float [W, T]       the same for columns
  -> thumbnail float [T, T, 3]: each bin's mean, as SceneChange.Thumbnail's box average (the weights depend only on
     the frame's size, so the caller makes them once per size).
"""
import argparse
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

OPSET = 17


def preprocess_graph() -> onnx.ModelProto:
    n = helper.make_node
    nodes = [
        n("Constant", [], ["zero2"], value=helper.make_tensor("z", TensorProto.INT64, [2], [0, 1])),
        n("Constant", [], ["idx_start"], value=helper.make_tensor("s", TensorProto.INT64, [2], [0, 1])),
        n("Constant", [], ["idx_size"], value=helper.make_tensor("e", TensorProto.INT64, [2], [2, 3])),
        n("Gather", ["region", "idx_start"], ["starts"], axis=0),
        n("Gather", ["region", "idx_size"], ["extent"], axis=0),
        n("Add", ["starts", "extent"], ["ends"]),
        n("Slice", ["rgb", "starts", "ends", "zero2"], ["crop"]),
        n("Cast", ["crop"], ["crop_f"], to=TensorProto.FLOAT),
        n("Transpose", ["crop_f"], ["chw"], perm=[2, 0, 1]),
        n("Constant", [], ["axis0"], value=helper.make_tensor("a", TensorProto.INT64, [1], [0])),
        n("Unsqueeze", ["chw", "axis0"], ["nchw"]),
        # Opset 17's Resize has no antialiasing (the attribute came in 18), as the kernel has none.
        n("Resize", ["nchw", "", "", "sizes"], ["resized"], mode="linear", coordinate_transformation_mode="half_pixel"),
        n("Constant", [], ["channel_shape"], value=helper.make_tensor("c", TensorProto.INT64, [4], [1, 3, 1, 1])),
        n("Reshape", ["scale", "channel_shape"], ["scale4"]),
        n("Reshape", ["shift", "channel_shape"], ["shift4"]),
        n("Mul", ["resized", "scale4"], ["scaled"]),
        n("Add", ["scaled", "shift4"], ["pixel_values"]),
    ]
    graph = helper.make_graph(
        nodes, "frame_preprocess",
        [helper.make_tensor_value_info("rgb", TensorProto.UINT8, ["height", "width", 3]),
         helper.make_tensor_value_info("region", TensorProto.INT64, [4]),
         helper.make_tensor_value_info("sizes", TensorProto.INT64, [4]),
         helper.make_tensor_value_info("scale", TensorProto.FLOAT, [3]),
         helper.make_tensor_value_info("shift", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [1, 3, "size", "size"])])
    return finish(graph)


def thumbnail_graph() -> onnx.ModelProto:
    n = helper.make_node
    nodes = [
        n("Cast", ["rgb"], ["rgb_f"], to=TensorProto.FLOAT),
        n("Transpose", ["rgb_f"], ["chw"], perm=[2, 0, 1]),          # [3, H, W]
        n("MatMul", ["rows", "chw"], ["row_means"]),                  # [T, H] x [3, H, W] -> [3, T, W]
        n("MatMul", ["row_means", "columns"], ["means"]),             # [3, T, W] x [W, T] -> [3, T, T]
        n("Transpose", ["means"], ["thumbnail"], perm=[1, 2, 0]),    # [T, T, 3]
    ]
    graph = helper.make_graph(
        nodes, "frame_thumbnail",
        [helper.make_tensor_value_info("rgb", TensorProto.UINT8, ["height", "width", 3]),
         helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["side", "height"]),
         helper.make_tensor_value_info("columns", TensorProto.FLOAT, ["width", "side"])],
        [helper.make_tensor_value_info("thumbnail", TensorProto.FLOAT, ["side", "side", 3])])
    return finish(graph)


def finish(graph) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tools/frame_graphs.py")
    model.ir_version = 8  # what ONNX Runtime 1.31 and onnx 1.12 both read
    onnx.checker.check_model(model, full_check=True)
    return model


def main(argv) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "Shaders" / "graphs")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, model in [("preprocess.onnx", preprocess_graph()), ("thumbnail.onnx", thumbnail_graph())]:
        onnx.save(model, str(args.out / name))
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
