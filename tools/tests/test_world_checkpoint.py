"""tools/world_checkpoint.py: the world set's encoder rewritten as CLIP computes the same features, a short run writes a
llava-hf folder that tools/import_hf.py imports as a world set, and world.json is only a claim the importer checks."""
import json
import subprocess
import sys
from pathlib import Path

import torch

TOOLS = Path(__file__).resolve().parents[1]
REPO = TOOLS.parent
sys.path.insert(0, str(TOOLS))

import make_hf_checkpoint  # noqa: E402
import world  # noqa: E402
import world_checkpoint  # noqa: E402

DEFAULT = REPO / "models" / "default"


def test_the_encoder_rewritten_as_clip_computes_the_same_features():
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    golden = json.loads((DEFAULT / manifest["golden"]).read_text())
    enc = world_checkpoint.world_encoder(DEFAULT, manifest, golden)
    tower, tensors = world_checkpoint.clip_tower(enc)
    pixels = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, clip = enc(pixels)[0], tower(pixels)
    assert ours.shape == clip.shape == (3, 64, 64)
    assert float((ours - clip).abs().max()) < 1e-5
    assert "vision_tower.vision_model.embeddings.class_embedding" in tensors
    assert not any("patch_embedding.bias" in k for k in tensors), "CLIP's patch convolution has no bias"


def test_a_short_run_writes_a_checkpoint_the_importer_reads_as_a_world_set(tmp_path):
    out = tmp_path / "world-hf"
    p = subprocess.run([sys.executable, str(TOOLS / "world_checkpoint.py"), "--out", str(out), "--align-steps", "3",
                        "--tune-steps", "3", "--relational-steps", "2", "--scenes", "64", "--batch", "16", "--val-scenes", "20", "--val-every", "3",
                        "--log-every", "1", "--workers", "1"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "stage align" in p.stdout and "stage tune" in p.stdout and "stage relational" in p.stdout and "name_loss" in p.stdout
    names = {f.name for f in out.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
            "generation_config.json", "world.json", "README.md"} <= names
    assert not (tmp_path / "world-hf.work" / "files").exists(), "the folder is moved into place whole"
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlavaForConditionalGeneration"] and config["vision_config"]["model_type"] == "clip_vision_model"
    assert "/usr/bin/python3 tools/world_checkpoint.py --out" in (out / "README.md").read_text()
    training = json.loads((out / "training.json").read_text())
    assert [h["stage"] for h in training["history"]] == ["align", "tune", "relational"]

    set_dir = tmp_path / "set"
    p = subprocess.run([sys.executable, str(TOOLS / "import_hf.py"), str(out), "--out", str(set_dir)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    manifest = json.loads((set_dir / "manifest.json").read_text())
    assert manifest["world"]["definition"] == "tools/world.py"
    assert manifest["world"]["answers"] == world.ANSWERS and manifest["world"]["image_size"] == 64
    assert manifest["default"]["compressor"] == "full" and manifest["default"]["tokens"] == 64


def test_init_continues_an_earlier_checkpoint_with_the_relational_stage_alone(tmp_path):
    """--init starts the projector and language model from a folder this tool wrote; with no align or tune steps only
    the relational stage runs, and at a vanishing learning rate the weights written are the earlier ones."""
    earlier = REPO / "models" / "world-llava-hf"
    out = tmp_path / "continued"
    p = subprocess.run([sys.executable, str(TOOLS / "world_checkpoint.py"), "--out", str(out), "--init", str(earlier),
                        "--align-steps", "0", "--tune-steps", "0", "--relational-steps", "2", "--tune-lr", "1e-12",
                        "--scenes", "64", "--batch", "16", "--val-scenes", "20", "--val-every", "2", "--log-every", "1",
                        "--workers", "1"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "stage relational" in p.stdout and "stage align" not in p.stdout and "stage tune" not in p.stdout
    import safetensors_io
    a, b = safetensors_io.SafetensorsFile(earlier / "model.safetensors"), safetensors_io.SafetensorsFile(out / "model.safetensors")
    assert sorted(a.names) == sorted(b.names)
    trained = [n for n in a.names if n.startswith(("multi_modal_projector.", "language_model."))]
    assert len(trained) > 20
    for n in trained:
        assert torch.allclose(a.read(n), b.read(n), atol=1e-6), n
    assert "--init" in (out / "README.md").read_text()
    missing = subprocess.run([sys.executable, str(TOOLS / "world_checkpoint.py"), "--out", str(tmp_path / "x"), "--init", str(tmp_path),
                              "--align-steps", "0", "--tune-steps", "0", "--relational-steps", "1", "--scenes", "16"],
                             capture_output=True, text=True, timeout=600)
    assert missing.returncode != 0 and "no model.safetensors" in missing.stderr


def refused(hf: Path, tmp_path, fragment: str):
    out = tmp_path / "set"
    p = subprocess.run([sys.executable, str(TOOLS / "import_hf.py"), str(hf), "--out", str(out)], capture_output=True, text=True)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], p.stderr
    assert not out.exists()


def test_world_json_is_a_claim_the_importer_checks(tmp_path):
    hf = tmp_path / "hf"
    assert make_hf_checkpoint.main(["--out", str(hf)]) == 0
    (hf / "world.json").write_text(json.dumps({"definition": "/etc/passwd"}))
    refused(hf, tmp_path, "the only world this importer knows is tools/world.py's")
    (hf / "world.json").write_text("[1, 2")
    refused(hf, tmp_path, "is not valid JSON")
    (hf / "world.json").write_text(json.dumps({"definition": "tools/world.py", "pad": "x" * 70_000}))
    refused(hf, tmp_path, "world.json is not a regular file of at most 64 KB")
    # The random test checkpoint's tokenizer was not trained on the world: its answers are several tokens each.
    (hf / "world.json").write_text(json.dumps({"definition": "tools/world.py"}))
    refused(hf, tmp_path, "answers more than one token")
