"""tools/token_ceiling.py: free tokens fitted to a random checkpoint's own answers come closer to them than the pooled
ones they start from, each picture has one set of tokens for all its questions, the bound is scored on questions
held out by text, the JSON lines record each row, and bad input is one line and exit 2."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

import distill  # noqa: E402
import make_hf_checkpoint  # noqa: E402
import token_ceiling  # noqa: E402


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("ceiling")
    hf = root / "hf"
    assert make_hf_checkpoint.main(["--out", str(hf)]) == 0
    set_dir = root / "set"
    p = subprocess.run([sys.executable, str(TOOLS / "import_hf.py"), str(hf), "--out", str(set_dir)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    pictures = root / "pictures"
    pictures.mkdir()
    from PIL import Image
    rng = np.random.default_rng(1)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(pictures / f"p{i}.png")
    questions = root / "questions.txt"
    questions.write_text("what is in this picture?\nwhat colour is it?\nwhere is it?\nhow many are there?\n")
    return {"root": root, "hf": hf, "set": set_dir, "pictures": pictures, "questions": questions}


def run(args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOLS / "token_ceiling.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def test_fitted_tokens_beat_the_pooled_ones_and_the_bound_is_scored_on_held_out_questions(imported, tmp_path):
    out = tmp_path / "ceiling.jsonl"
    p = run([imported["set"], "--checkpoint", imported["hf"], "--data", imported["pictures"], "--questions", imported["questions"],
             "--tokens", "1,4", "--steps", "60", "--answer-tokens", "2", "--held-out", "0.25", "--json", out])
    assert p.returncode == 0, p.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    by = {(r["tokens"], r["bound"], r["questions"]): r for r in records}
    assert set(by) == {(16, "full", "held_out"), *((v, b, q) for v in (1, 4) for b, q in
                                                   (("pool", "held_out"), ("picture", "held_out"), ("picture", "fitted")))}
    assert by[(16, "full", "held_out")]["agreement"] == 1.0, "the teacher agrees with itself"
    held = by[(16, "full", "held_out")]["n"]
    assert 4 <= held <= 5, "one of each picture's 4 questions held out (5 pictures, less distill's held-out pair)"
    for v in (1, 4):
        assert by[(v, "pool", "held_out")]["n"] == by[(v, "picture", "held_out")]["n"] == held
        assert by[(v, "picture", "fitted")]["n"] >= 3 * held - 1
        # the fitted questions come closer to the teacher than the pooled tokens they started from
        assert by[(v, "picture", "fitted")]["kl"] < pooled_kl(imported, v), by
    assert "V = 4   picture  held-out  agreement" in p.stdout


def pooled_kl(imported, v: int) -> float:
    """The pooled tokens' KL on every question (tokens of the same start as the tool's)."""
    p = run([imported["set"], "--checkpoint", imported["hf"], "--data", imported["pictures"], "--questions", imported["questions"],
             "--tokens", str(v), "--steps", "1", "--lr", "1e-12", "--answer-tokens", "2", "--held-out", "0.25", "--json",
             imported["root"] / f"pooled{v}.jsonl"])
    assert p.returncode == 0, p.stderr
    records = [json.loads(line) for line in (imported["root"] / f"pooled{v}.jsonl").read_text().splitlines()]
    return next(r["kl"] for r in records if r["bound"] == "picture" and r["questions"] == "fitted")


def test_a_pictures_questions_split_by_text_and_every_picture_keeps_one_to_fit():
    rows = torch.arange(7)
    data = {"picture": torch.tensor([0, 0, 0, 0, 1, 1, 2]), "own": [[1], [2], [1], [3], [4], [5], [6]]}
    fitted, scored = token_ceiling.split_questions(data, rows, 0.5, 0)
    assert sorted(fitted.tolist() + scored.tolist()) == list(range(7))
    texts = lambda sel: {(int(data["picture"][i]), tuple(data["own"][i])) for i in sel.tolist()}  # noqa: E731
    assert not texts(fitted) & texts(scored), "a question asked twice of a picture is on one side"
    assert (0 in scored.tolist()) == (2 in scored.tolist())
    assert 6 in fitted.tolist(), "a picture with one question is only fitted"
    assert sum(int(data["picture"][i]) == 1 for i in scored.tolist()) == 1


def test_the_bound_shares_one_set_of_tokens_among_a_pictures_questions(imported):
    manifest = json.loads((imported["set"] / "manifest.json").read_text())
    ck = distill.open_checkpoint(imported["hf"], manifest)
    prompts = distill.Prompts(ck)
    grid, dv = ck["c"]["tower"].grid, ck["c"]["tower"].feature_dim
    torch.manual_seed(0)
    afters = [prompts.after(q)[0] for q in ("what is it?", "where is it?", "what colour?", "how many?")]
    features = torch.randn(2, grid * grid, dv)
    picture = torch.tensor([0, 0, 1, 1])
    teacher = distill.teacher_answers(ck, prompts, features[picture], afters, 2, 4, "teacher")
    data = {"after": afters, "picture": picture, "teacher": teacher[0], "valid": teacher[1], "top_v": teacher[2],
            "top_i": teacher[3], "truth": torch.full((4,), -1)}
    start = token_ceiling.pooled_tokens(ck, features, 2)
    assert torch.allclose(start, ck["projector"](features).reshape(2, 2, grid // 2, 2, grid // 2, -1).mean((2, 4)).reshape(2, 4, -1).detach(),
                          atol=1e-5), "the pool compressor's tokens: each quadrant's projected patches, averaged"
    a = type("A", (), {"lr": 0.05, "steps": 5, "batch": 3})()
    fitted = token_ceiling.fit(ck, prompts, data, torch.arange(4), start, picture, a, "test")
    assert fitted.shape == start.shape and not torch.allclose(fitted, start), "one trained set of tokens a picture"
    only_first = token_ceiling.fit(ck, prompts, data, torch.arange(2), start, picture[:2], a, "test")
    assert torch.equal(only_first[1], start[1]), "a picture none of whose questions is fitted keeps its start"


def test_bad_input_is_one_line_and_exit_2(imported, tmp_path):
    s, hf = imported["set"], imported["hf"]
    (imported["root"] / "one.txt").write_text("what is it?\n")
    for args, fragment in (([s, "--checkpoint", hf], "was not trained on the world"),
                           ([s, "--checkpoint", hf, "--data", imported["pictures"]], "needs --questions FILE"),
                           ([s, "--checkpoint", hf, "--data", imported["pictures"], "--questions", imported["questions"], "--tokens", "3"],
                            "V = 3 is not one"),
                           ([s, "--checkpoint", hf, "--steps", "0"], "--steps 0: at least 1"),
                           ([s, "--checkpoint", hf, "--held-out", "1"], "--held-out 1: a share between 0 and 1"),
                           ([s, "--checkpoint", hf, "--data", imported["pictures"], "--questions", imported["root"] / "one.txt"],
                            "none is left to score"),
                           ([tmp_path / "nothing", "--checkpoint", hf], "model set not found"),
                           ([s, "--checkpoint", tmp_path], "is not a llava-hf checkpoint folder")):
        p = run(args)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], (args, p.stderr)
    assert not list(tmp_path.glob("*.jsonl"))
