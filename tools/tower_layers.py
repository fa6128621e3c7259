"""A copy of a set's vision graph that also outputs every encoder layer's hidden state, for measuring a quantized
tower layer by layer against its float one (bench/Peers --tower-ab A B gives the cosine of every shared output):

  /usr/bin/python3 tools/tower_layers.py /tmp/set/vision.onnx /tmp/layers/f32.onnx
  /usr/bin/python3 tools/tower_layers.py /tmp/set-q8/vision.onnx /tmp/layers/q8.onnx

A layer's hidden state is the output of its second residual Add (`/layers.N/Add_1` in the importer's exports of
CLIP and SigLIP towers, float or quantized); each becomes an output `layer.N`. The copy keeps its weights inline
(a tower over 2 GB is refused), and is written beside nothing of the set: OUT names a new file.
"""
import argparse
import re
import sys
from pathlib import Path

import onnx

LAYER_OUTPUT = re.compile(r"^/layers\.(\d+)/Add_1$")


def expose_layers(model: onnx.ModelProto) -> list:
    """Adds every layer's hidden state to the graph's outputs as `layer.N` (an Identity of it); returns the names."""
    g = model.graph
    found = sorted((int(m.group(1)), n.output[0]) for n in g.node if (m := LAYER_OUTPUT.match(n.name)))
    names = []
    for index, value in found:
        name = f"layer.{index}"
        g.node.append(onnx.helper.make_node("Identity", [value], [name], name=f"/expose/{name}"))
        g.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["batch", "tokens", "width"]))
        names.append(name)
    return names


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("graph", type=Path, help="a vision tower's ONNX file (its external data beside it is read too)")
    p.add_argument("out", type=Path, help="the copy to write (must not exist)")
    a = p.parse_args(argv)
    if a.out.exists():
        print(f"error: {a.out} exists; name a new file", file=sys.stderr)
        return 2
    try:
        model = onnx.load(str(a.graph))
    except Exception as e:  # a missing file, or a protobuf parse error (which has no public type)
        print(f"error: {a.graph} is not a readable ONNX graph: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    names = expose_layers(model)
    if not names:
        print(f"error: {a.graph} has no /layers.N/Add_1 node: not a tower exported by tools/import_hf.py", file=sys.stderr)
        return 2
    if sum(len(i.raw_data) for i in model.graph.initializer) > 2_000_000_000:
        print(f"error: {a.graph}'s weights are over 2 GB; expose the layers of a smaller or quantized tower", file=sys.stderr)
        return 2
    a.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(a.out))
    print(f"wrote {a.out}: {len(names)} layer outputs ({names[0]} .. {names[-1]}) beside its own")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
