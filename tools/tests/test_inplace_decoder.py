"""tools/inplace_decoder.py: a world-layout set's plain decoders rebuilt from their own graphs and written again fused,
the KV cache in place; the rest of the set untouched, and a set whose golden the rebuild does not meet left as it was."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "inplace_decoder.py"


def run(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True)


def digests(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def plain_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("plain") / "set"
    subprocess.run([sys.executable, str(ROOT / "tools" / "export.py"), "--preset", "tiny", "--attention", "plain",
                    "--out", str(out)], check=True, capture_output=True)
    return out


def ops(path: Path) -> set:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_plain_decoders_are_rewritten_fused_and_nothing_else_changes(plain_set, tmp_path):
    s = tmp_path / "set"
    subprocess.run(["cp", "-r", str(plain_set), str(s)], check=True)
    before = digests(s)
    m = json.loads((s / "manifest.json").read_text())
    assert all("kv_cache" not in d for d in m["decoders"])
    assert all("GroupQueryAttention" not in ops(s / d["decoder"]["file"]) for d in m["decoders"])

    p = run(s)
    assert p.returncode == 0, p.stderr
    assert "cache in place" in p.stdout
    after = digests(s)
    m2 = json.loads((s / "manifest.json").read_text())
    decoders = {d["decoder"]["file"] for d in m2["decoders"]}
    # only the decoder graphs and the manifest changed; no partial file is left
    assert {f for f in after if before.get(f) != after[f]} == decoders | {"manifest.json"}
    assert set(after) == set(before)
    for d, old in zip(m2["decoders"], m["decoders"]):
        assert d["kv_cache"] == "in_place"
        assert d["decoder"]["inputs"] == old["decoder"]["inputs"] and d["decoder"]["outputs"] == old["decoder"]["outputs"]
        graph_ops = ops(s / d["decoder"]["file"])
        assert "GroupQueryAttention" in graph_ops and "Softmax" not in graph_ops
    assert "tools/inplace_decoder.py" in m2["created_by"]

    again = run(s)
    assert again.returncode == 0 and "already" in again.stdout
    assert digests(s) == after


def test_a_set_whose_golden_the_rebuild_does_not_meet_is_refused_and_left_alone(plain_set, tmp_path):
    s = tmp_path / "set"
    subprocess.run(["cp", "-r", str(plain_set), str(s)], check=True)
    golden = json.loads((s / "golden" / "golden.json").read_text())
    name = next(iter(golden["decoders"]))
    golden["decoders"][name]["prefill_logits"][0] += 0.01
    (s / "golden" / "golden.json").write_text(json.dumps(golden))
    before = digests(s)
    p = run(s)
    assert p.returncode == 2
    assert p.stderr.startswith("error: the rebuilt decoder does not answer as the set's golden") and p.stderr.count("\n") == 1
    assert digests(s) == before


def test_an_imported_set_and_an_unknown_decoder_are_refused(plain_set, tmp_path):
    p = run(plain_set, "--decoder", "no-such")
    assert p.returncode == 2 and "no decoder named no-such" in p.stderr
    s = tmp_path / "set"
    subprocess.run(["cp", "-r", str(plain_set), str(s)], check=True)
    m = json.loads((s / "manifest.json").read_text())
    m["source"] = {"architecture": "LlavaForConditionalGeneration"}
    (s / "manifest.json").write_text(json.dumps(m))
    p = run(s)
    assert p.returncode == 2 and "imported set" in p.stderr
