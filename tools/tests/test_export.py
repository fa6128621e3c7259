"""The exporter: one command writes a complete, checked set, and reproduces the committed default set."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "models" / "tiny-random"


def export(tmp_path: Path) -> Path:
    out = tmp_path / "set"
    subprocess.run([sys.executable, str(ROOT / "tools" / "export.py"), "--preset", "tiny", "--out", str(out)],
                   check=True, capture_output=True)
    return out


def graphs(manifest: dict):
    yield manifest["vision"]
    for d in manifest["decoders"]:
        yield d["decoder"]
        yield d["embed"]
        for c in d["compressors"]:
            yield from c["graphs"].values()


def test_export_writes_every_file_the_manifest_names(tmp_path):
    out = export(tmp_path)
    m = json.loads((out / "manifest.json").read_text())
    assert m["format"] == "quecc-assistant-models/1"
    files = [g["file"] for g in graphs(m)]
    assert len(files) == 1 + 2 + 2 * 4
    for f in files:
        model = onnx.load(str(out / f))
        onnx.checker.check_model(model, full_check=True)
        assert model.opset_import[0].version == 17
    for f in ("vocab.json", "merges.txt", "golden/golden.json", "golden/image.png"):
        assert (out / f).is_file()


def test_manifest_tensors_match_the_graphs(tmp_path):
    out = export(tmp_path)
    m = json.loads((out / "manifest.json").read_text())
    for g in graphs(m):
        model = onnx.load(str(out / g["file"]))
        for side, values in (("inputs", model.graph.input), ("outputs", model.graph.output)):
            actual = {v.name: [d.dim_value if d.HasField("dim_value") else d.dim_param
                               for d in v.type.tensor_type.shape.dim] for v in values}
            assert set(actual) == set(g[side]), g["file"]
            for name, spec in g[side].items():
                assert actual[name] == spec["shape"], (g["file"], name)


def test_one_command_reproduces_the_committed_tiny_set(tmp_path):
    m = json.loads((TINY / "manifest.json").read_text())
    assert m["created_by"] == "tools/export.py --preset tiny --out models/tiny-random"
    out = export(tmp_path)
    fresh = json.loads((out / "golden" / "golden.json").read_text())
    committed = json.loads((TINY / "golden" / "golden.json").read_text())
    for key in ("pixel_values", "features", "features_multi"):
        assert np.abs(np.array(fresh[key]) - np.array(committed[key])).max() < 1e-5, key
    for name, dec in committed["decoders"].items():
        assert fresh["decoders"][name]["greedy_tokens"] == dec["greedy_tokens"]
        assert np.abs(np.array(fresh["decoders"][name]["prefill_logits"]) - np.array(dec["prefill_logits"])).max() < 1e-5
