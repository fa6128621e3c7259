"""tools/gpu: the pieces a build travels to the GPU machine in, the CUDA library search, and the GPU side's whole
sequence in a dry run against the CPU build (no GPU needed)."""
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GPU = ROOT / "tools" / "gpu"
sys.path.insert(0, str(GPU))

import cuda_libs  # noqa: E402
import pieces  # noqa: E402


def run(*args, **kw):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, **kw)


def one_error_line(proc):
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def make_build(root: Path, seed: int = 0) -> Path:
    """A stand-in build: nested folders, an executable, incompressible bytes (so it cuts into several pieces)."""
    rng = random.Random(seed)
    app = root / "app"
    (app / "sub" / "deeper").mkdir(parents=True)
    (app / "assistant").write_bytes(b"#!/bin/sh\necho hi\n")
    (app / "assistant").chmod(0o755)
    (app / "sub" / "blob.bin").write_bytes(rng.randbytes(300_000))
    (app / "sub" / "deeper" / "text.json").write_text(json.dumps({"a": list(range(1000))}))
    (app / "empty").write_bytes(b"")
    return app


def tree(folder: Path) -> dict:
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.name == pieces.ASSEMBLED:
            continue
        out[rel] = ("dir", None) if p.is_dir() else (hashlib.sha256(p.read_bytes()).hexdigest(), os.access(p, os.X_OK))
    return out


@pytest.fixture()
def packed(tmp_path):
    app = make_build(tmp_path)
    out = tmp_path / "pieces"
    manifest = pieces.pack(app, out, piece_mib=0.1, preset=0)
    return app, out, manifest


def test_pack_cuts_the_archive_into_checksummed_pieces_of_at_most_the_size(packed):
    app, out, manifest = packed
    assert len(manifest["pieces"]) >= 3
    limit = int(0.1 * (1 << 20))
    joined = b""
    for i, p in enumerate(manifest["pieces"], 1):
        data = (out / p["name"]).read_bytes()
        assert p["name"] == pieces.piece_name(i, len(manifest["pieces"]))
        assert len(data) == p["bytes"] <= limit
        assert hashlib.sha256(data).hexdigest() == p["sha256"]
        joined += data
    assert len(joined) == manifest["archive_bytes"]
    assert hashlib.sha256(joined).hexdigest() == manifest["archive_sha256"]
    assert json.loads((out / pieces.MANIFEST).read_text()) == manifest


def test_pack_refuses_a_folder_holding_other_pieces(packed, tmp_path):
    app, out, _ = packed
    assert "not empty" in one_error_line(run(GPU / "pieces.py", "pack", app, "--out", out))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pieces_arriving_in_any_order_assemble_into_the_same_build(packed, tmp_path, seed):
    app, out, manifest = packed
    store, into = tmp_path / "store", tmp_path / "unpacked"
    order = list(manifest["pieces"])
    random.Random(seed).shuffle(order)
    for k, p in enumerate(order):
        incoming = tmp_path / f"call{k}"  # one device call: the manifest and one piece
        incoming.mkdir()
        shutil.copy(out / pieces.MANIFEST, incoming)
        shutil.copy(out / p["name"], incoming)
        proc = run(GPU / "pieces.py", "receive", incoming, "--store", store, "--assemble-into", into)
        assert proc.returncode == 0, proc.stderr
        assert f"have {k + 1} of {len(order)} pieces" in proc.stderr
        assert (incoming / p["name"]).is_file()  # copied, not taken from the sender
        assert into.exists() == (k == len(order) - 1)
    assert tree(into) == tree(app)
    # The same build again is not unpacked twice.
    again = run(GPU / "pieces.py", "receive", incoming, "--store", store, "--assemble-into", into)
    assert again.returncode == 0 and "holds this build already" in again.stderr


def test_a_missing_piece_is_one_line_naming_it(packed, tmp_path):
    _, out, manifest = packed
    (out / manifest["pieces"][1]["name"]).unlink()
    store = tmp_path / "store"
    assert run(GPU / "pieces.py", "receive", out, "--store", store).returncode == 0
    line = one_error_line(run(GPU / "pieces.py", "assemble", "--store", store, "--into", tmp_path / "x"))
    assert "missing 2" in line and not (tmp_path / "x").exists()


def test_a_corrupt_piece_is_refused_in_one_line(packed, tmp_path):
    _, out, manifest = packed
    name = manifest["pieces"][2]["name"]
    data = bytearray((out / name).read_bytes())
    data[len(data) // 2] ^= 0x40
    (out / name).write_bytes(bytes(data))
    line = one_error_line(run(GPU / "pieces.py", "receive", out, "--store", tmp_path / "store"))
    assert f"piece 3 of {len(manifest['pieces'])}" in line and "corrupt" in line
    assert not (tmp_path / "store" / name).exists()


def test_a_piece_changed_in_the_store_is_caught_when_assembling(packed, tmp_path):
    _, out, manifest = packed
    store = tmp_path / "store"
    assert run(GPU / "pieces.py", "receive", out, "--store", store).returncode == 0
    kept = store / manifest["pieces"][0]["name"]
    kept.write_bytes(kept.read_bytes()[:-1] + b"\0")
    assert "changed in the store" in one_error_line(run(GPU / "pieces.py", "assemble", "--store", store, "--into", tmp_path / "x"))


def test_another_builds_pieces_in_the_store_are_dropped(packed, tmp_path):
    _, out, manifest = packed
    store = tmp_path / "store"
    assert run(GPU / "pieces.py", "receive", out, "--store", store).returncode == 0
    other = tmp_path / "other"
    pieces.pack(make_build(tmp_path / "b", seed=9), other, piece_mib=0.1, preset=0)
    first = sorted(p.name for p in other.iterdir() if p.name != pieces.MANIFEST)[0]
    incoming = tmp_path / "one"
    incoming.mkdir()
    shutil.copy(other / pieces.MANIFEST, incoming)
    shutil.copy(other / first, incoming)
    proc = run(GPU / "pieces.py", "receive", incoming, "--store", store)
    assert proc.returncode == 0 and "another build's pieces" in proc.stderr
    assert sorted(p.name for p in store.iterdir()) == sorted([pieces.MANIFEST, first])


def test_an_archive_member_outside_the_build_is_refused(tmp_path):
    # A hand-made archive naming ../escaped: the manifest's sums are right, the archive is hostile.
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:xz") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    data = raw.getvalue()
    store = tmp_path / "store"
    store.mkdir()
    name = pieces.piece_name(1, 1)
    (store / name).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (store / pieces.MANIFEST).write_text(json.dumps({"format": "assistant-gpu-pieces/1", "archive": "build.tar.xz",
        "archive_bytes": len(data), "archive_sha256": digest, "pieces": [{"name": name, "bytes": len(data), "sha256": digest}]}))
    line = one_error_line(run(GPU / "pieces.py", "assemble", "--store", store, "--into", tmp_path / "app"))
    assert "escaped" in line or "outside" in line or "unpack" in line
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "app").exists()


def test_a_manifest_naming_a_path_is_refused(packed, tmp_path):
    _, out, manifest = packed
    manifest["pieces"][0]["name"] = "../../etc/passwd"
    (out / pieces.MANIFEST).write_text(json.dumps(manifest))
    assert "not a pieces manifest" in one_error_line(run(GPU / "pieces.py", "receive", out, "--store", tmp_path / "s"))


def fake_libs(root: Path, layout: dict) -> None:
    for rel in layout:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"\x7fELF")


def test_the_library_search_finds_pytorchs_cuda_13_layout(tmp_path):
    site = tmp_path / "site-packages"
    fake_libs(site, {f"nvidia/cu13/lib/{n}": 1 for n in ["libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10"]})
    fake_libs(site, {"nvidia/cudnn/lib/libcudnn.so.9": 1, "torch/lib/libcudart.so.13": 1})
    fake_libs(tmp_path, {"driver/libcuda.so.1": 1})
    proc = run(GPU / "cuda_libs.py", "--roots", site / "nvidia", site / "torch" / "lib", tmp_path / "driver", "--report")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().split(":") == [str(site / "nvidia/cu13/lib"), str(site / "nvidia/cudnn/lib"), str(tmp_path / "driver")]
    assert "libcudnn.so.9: " + str(site / "nvidia/cudnn/lib") in proc.stderr


def test_a_missing_library_is_one_line_naming_it(tmp_path):
    fake_libs(tmp_path, {f"lib/{n}": 1 for n in ["libcudart.so.13", "libcublas.so.13", "libcurand.so.10", "libcudnn.so.9"]})
    line = one_error_line(run(GPU / "cuda_libs.py", "--roots", tmp_path / "lib", tmp_path / "absent"))
    assert "libcublasLt.so.13" in line and "libcudart" not in line


def test_the_search_prefers_earlier_roots_and_does_not_follow_links_out(tmp_path):
    names = cuda_libs.REQUIRED
    fake_libs(tmp_path, {f"a/x/{n}": 1 for n in names} | {f"b/{n}": 1 for n in names})
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "loop").symlink_to(tmp_path / "c")  # a link cycle must not hang the walk
    found = cuda_libs.find([tmp_path / "c", tmp_path / "b", tmp_path / "a"], names)
    assert set(found.values()) == {tmp_path / "b"}


@pytest.mark.skipif(shutil.which("dotnet") is None, reason="the dry run publishes the CPU build with the .NET SDK")
def test_the_gpu_side_sequence_runs_dry_against_the_cpu_build(tmp_path):
    # What a GPU run does, on this machine's CPU: the CPU build packed into pieces, the first call (keeps a piece,
    # makes a tiny checkpoint in the background), the checks (assemble, ask on both providers, bench, the set's
    # greedy tokens against the importer's, frame latency, decode profile).
    env = dict(os.environ, FLAVOR="cpu", PRESET="0", OUT=str(tmp_path / "build"), PIECE_MIB="40")
    proc = subprocess.run(["bash", GPU / "pack.sh"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    incoming = tmp_path / "build" / "pieces"
    count = len(json.loads((incoming / pieces.MANIFEST).read_text())["pieces"])
    assert count >= 2  # the CPU build is over 100 MB: several pieces, reassembled
    store, out = tmp_path / "store", tmp_path / "out"
    env = dict(os.environ, STORE=str(store), PYTHON=sys.executable, SHAPE="tiny", INCOMING=str(incoming))
    first = subprocess.run(["bash", GPU / "first_call.sh"], capture_output=True, text=True, env=env, timeout=120)
    assert f"have {count} of {count} pieces" in first.stderr, first.stderr
    env |= {"EP": "cpu", "REFERENCE": "0", "REPS": "1", "CPU_REPS": "0", "OUT": str(out), "PREPARE_WAIT_S": "120"}
    checks = subprocess.run(["bash", GPU / "gpu_checks.sh"], capture_output=True, text=True, env=env, timeout=600)
    report = (out / "gpu_report.txt").read_text()
    assert checks.returncode == 0, report + checks.stderr[-2000:]
    assert "default set: greedy tokens on cpu equal the CPU's" in report
    assert "0.5b full: greedy tokens on cpu and cpu equal the importer's PyTorch" in report
    assert "0.5b pool V=4: greedy tokens on cpu and cpu equal the importer's PyTorch" in report
    rows = json.loads((out / "frame_ttft_cpu.json").read_text())["rows"]
    assert [(r["compressor"], r["v"]) for r in rows][:2] == [("full", 16), ("pool", 1)] and all(r["ttft_ms"] > 0 for r in rows)
    assert "CPUExecutionProvider" in (out / "decode_profile_cpu.txt").read_text()
    assert "checks: all passed" in report
    assert "kernel_ms" in (out / "preprocess_cpu.json").read_text()
    assert len(list(out.iterdir())) <= 8  # what the device tool brings back
