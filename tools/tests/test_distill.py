"""tools/distill.py: the regions cover the grid (as the depthwise convolution does where V divides it, as the pool
compressor's bins do where it does not), a short run on a random checkpoint learns and writes a set whose manifest
and golden record it, a stopped run resumes, and bad input is one line, exit 2, the set unchanged."""
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

import distill  # noqa: E402
import make_hf_checkpoint  # noqa: E402
from hf_llava import Projector, pool_matrix  # noqa: E402


def test_regions_are_the_pool_compressors_bins_and_the_filter_is_the_depthwise_convolution_where_v_divides_the_grid():
    for grid, side in ((8, 2), (8, 4), (27, 2), (27, 4), (5, 5), (7, 1)):
        index, mask = distill.regions(grid, side)
        m = torch.zeros(side * side, grid * grid)
        for v in range(side * side):
            m[v, index[v][mask[v]]] = 1.0
        assert torch.equal(m > 0, pool_matrix(grid, side) > 0), (grid, side)
    # V dividing the grid: the learned filter of each region is the paper's depthwise kernel = stride convolution.
    torch.manual_seed(0)
    C, grid, side = 6, 8, 2
    k = grid // side
    s = distill.RegionQueCC(C, 10, grid, side, 2, False, Projector(C, 10, "gelu"), "gelu")
    with torch.no_grad():
        s.down.copy_(torch.randn(C, k * k))
        s.down_bias.copy_(torch.randn(C))
        s.query_mlp[3].weight.zero_(), s.query_mlp[3].bias.zero_()
    x = torch.randn(2, grid * grid, C)
    xr = torch.cat([x, torch.zeros(2, 1, C)], 1)[:, s.index]
    ours = (xr * s.down.t()[None, None]).sum(2) + s.down_bias
    conv = F.conv2d(x.transpose(1, 2).reshape(2, C, grid, grid), s.down.reshape(C, 1, k, k), s.down_bias, stride=k, groups=C)
    assert torch.allclose(ours, conv.flatten(2).transpose(1, 2), atol=1e-5)


def test_a_new_student_starts_from_the_pooled_picture_and_only_the_query_aware_one_reads_the_question():
    torch.manual_seed(1)
    proj = Projector(8, 12, "gelu")
    x = torch.randn(3, 16, 8)
    q = torch.randn(3, 12)
    quecc = distill.RegionQueCC(8, 12, 4, 2, 2, True, proj, "gelu")
    with torch.no_grad():
        start = quecc(x, q)
        assert torch.allclose(start, proj(pool_matrix(4, 2) @ x), atol=1e-5), "residual paths start at zero"
        quecc.inject[1].weight.fill_(1.0)
        assert not torch.allclose(quecc(x, q), quecc(x, -q))
        packer = distill.RegionQueCC(8, 12, 4, 2, 2, False, proj, "gelu")
        assert torch.allclose(packer(x, q), packer(x, -q))


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """A tiny random checkpoint, imported; pictures and questions for it."""
    root = tmp_path_factory.mktemp("distill")
    hf = root / "hf"
    assert make_hf_checkpoint.main(["--out", str(hf)]) == 0
    set_dir = root / "set"
    p = subprocess.run([sys.executable, str(TOOLS / "import_hf.py"), str(hf), "--out", str(set_dir)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    pictures = root / "pictures"
    pictures.mkdir()
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(pictures / f"p{i}.png")
    (pictures / "notes.txt").write_text("not a picture")
    questions = root / "questions.txt"
    questions.write_text("what is in this picture?\n{\"question\": \"what colour is it?\", \"image\": \"p1.png\", \"answer\": \"red\"}\nwhere is it?\n")
    return {"root": root, "hf": hf, "set": set_dir, "pictures": pictures, "questions": questions}


def test_the_cached_teacher_equals_a_teacher_forced_pass_over_the_whole_sequences(imported):
    """The teacher decodes greedily with a KV cache over left-padded rows of different lengths; each step's top-k must
    be what one uncached pass over prompt + answer gives at that position, and each answer token its argmax."""
    manifest = json.loads((imported["set"] / "manifest.json").read_text())
    ck = distill.open_checkpoint(imported["hf"], manifest)
    prompts = distill.Prompts(ck)
    questions = ["what is in this picture?", "what colour is the big square on the left?", "where?", "is it red?", "how many?"]
    afters = [prompts.after(q)[0] for q in questions]
    assert len({len(a) for a in afters}) > 2, "rows of different lengths, so the padding is exercised"
    torch.manual_seed(0)
    grid = ck["c"]["tower"].grid
    features = torch.randn(len(questions), grid * grid, ck["c"]["tower"].feature_dim)
    ids, valid, top_v, top_i = distill.teacher_answers(ck, prompts, features, afters, 6, 3, "teacher")
    assert ids.shape[1] >= 2 and valid[:, 0].all()
    with torch.no_grad():
        seq, mask = distill.batch_sequences(prompts, afters, ids, grid * grid)
        lp = distill.answer_logits(ck["decoder"], seq, mask, ck["projector"](features), prompts.slot, ids.shape[1]).log_softmax(-1)
    forced_v, _ = lp.topk(top_v.shape[-1], dim=-1)
    assert torch.allclose(forced_v[valid], top_v[valid], atol=1e-4), (forced_v[valid] - top_v[valid]).abs().max()
    assert (lp.argmax(-1)[valid] == ids[valid]).all()


def test_the_question_pass_is_the_decoder_on_the_question_alone_whatever_the_batch(imported):
    """question_hidden_state: the final hidden state at the question's last own token, the decoder given nothing
    else; left-padded batches of questions of different lengths give each one what it gets alone."""
    manifest = json.loads((imported["set"] / "manifest.json").read_text())
    ck = distill.open_checkpoint(imported["hf"], manifest)
    prompts = distill.Prompts(ck)
    dec = ck["decoder"]
    owns = [prompts.after(q)[1] for q in ["what is in this picture?", "where?", "what is in this picture?", "is the big one red or blue?"]]
    assert len({len(o) for o in owns}) > 2
    batched = distill.query_embeddings(dec, owns + [[]], "pass", batch=3)
    with torch.no_grad():
        for o, row in zip(owns, batched):
            ids = torch.tensor([o])
            alone, _ = dec.hidden(dec.embed_tokens(ids), torch.ones_like(ids), torch.arange(len(o))[None], *dec.empty_past(1))
            assert torch.allclose(row, alone[0, -1], atol=1e-5), (row - alone[0, -1]).abs().max()
    assert torch.equal(batched[-1], torch.zeros(dec.cfg.dim)), "a question of no tokens: zeros, as in the engine"
    mean = distill.query_embeddings(dec, owns, "mean")
    assert torch.allclose(mean[1], dec.embed_tokens(torch.tensor(owns[1])).mean(0))
    assert not torch.allclose(mean[0], batched[0], atol=1e-3)


def run(args, timeout=600):
    return subprocess.run([sys.executable, str(TOOLS / "distill.py"), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(f.relative_to(folder).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def test_a_short_run_learns_and_writes_the_set_whole_and_a_stopped_run_resumes(imported, tmp_path):
    set_dir = tmp_path / "set"
    os.system(f"cp -r {imported['set']} {set_dir}")
    work = tmp_path / "work"
    # Questions without answers: a known answer adds its cross-entropy to the loss, and a random teacher disagrees with
    # it, so the distillation KL alone need not fall where one is given.
    plain = tmp_path / "plain.txt"
    plain.write_text("what is in this picture?\nwhat colour is it?\nwhere is it?\n")
    common = [set_dir, "--checkpoint", imported["hf"], "--data", imported["pictures"], "--questions", plain,
              "--tokens", "1,4", "--batch", "8", "--work", work, "--baseline", "--log-every", "1", "--val-every", "5", "--lr", "3e-3"]
    # Stopped after its first step (the clock), handing over its set: the run's checkpoint stays in the work folder.
    hand = tmp_path / "hand.json"
    p = run([*common, "--steps", "40", "--max-minutes", "1e-9", "--hand-over", hand])
    assert p.returncode == 0, p.stderr
    assert "stopping at step 1" in p.stdout
    partial = Path(json.loads(hand.read_text())["partial"])
    assert partial.name.startswith(".set.partial-") and partial.parent == tmp_path
    import shutil
    shutil.rmtree(partial)
    assert (work / "train.pt").exists() and (work / "data.pt").exists()

    # Other settings are refused with the checkpoint kept; a larger --steps alone continues the run.
    p = run([*common[:-2], "--lr", "1e-3", "--steps", "40"])
    assert p.returncode == 2 and "holds a run with other settings" in p.stderr and (work / "train.pt").exists()
    p = run([*common, "--steps", "60"])
    assert p.returncode == 0, p.stderr
    assert "continuing" in p.stdout and "from step 1 to 60 (it was a run of 40)" in p.stdout
    assert not work.exists(), "a finished run removes its own work files"
    assert not list(tmp_path.glob(".set.*")), "no scratch or replaced folder stays"
    manifest = json.loads((set_dir / "manifest.json").read_text())
    comps = {c["kind"]: c for c in manifest["decoders"][0]["compressors"]}
    assert {"full", "pool", "query", "quecc", "tokenpacker"} <= set(comps)
    assert comps["quecc"]["query_aware"] and not comps["tokenpacker"]["query_aware"]
    assert sorted(comps["quecc"]["graphs"]) == ["1", "4"]
    d = comps["quecc"]["distilled"]
    assert d["steps"] == 60 and d["teacher"] == "full" and d["data"]["pictures"] == 4 and d["data"]["questions"] == 3
    for v in ("1", "4"):
        assert 0.0 <= d["held_out"][v]["agreement"] <= 1.0
    # the distillation loss on the same training questions, before the first step and after the last
    for v in ("1", "4"):
        assert d["train_kl"][v]["end"] < d["train_kl"][v]["start"], d["train_kl"]
    for c in comps.values():
        for g in c["graphs"].values():
            assert (set_dir / g["file"]).is_file()
    golden = json.loads((set_dir / manifest["golden"]).read_text())
    assert sorted((e["kind"], e["tokens"]) for e in golden["distilled"]) == [("quecc", 1), ("quecc", 4), ("tokenpacker", 1), ("tokenpacker", 4)]
    # the paper's query by default: the question's own pass, named in the manifest and recorded with the golden
    assert comps["quecc"]["query_embedding"] == "question_hidden_state" and "query_embedding" not in comps["tokenpacker"]
    assert "query_embedding" not in comps["query"], "the training-free query compressor keeps the prompt's mean"
    ck = distill.open_checkpoint(imported["hf"], manifest)
    own = distill.Prompts(ck).after(golden["query"])[1]
    expected = distill.query_embeddings(ck["decoder"], [own], "pass")[0]
    for e in golden["distilled"]:
        assert ("query_embedding" in e) == (e["kind"] == "quecc")
        if e["kind"] == "quecc":
            assert torch.allclose(torch.tensor(e["query_embedding"]), expected, atol=1e-5)
    # distilling again at fewer Vs would drop the graphs this run made: refused unless --replace says so
    refused([set_dir, "--checkpoint", imported["hf"], "--data", imported["pictures"], "--questions", plain, "--tokens", "1",
             "--work", tmp_path / "work2"], set_dir, "would drop")
    refused([set_dir, "--checkpoint", imported["hf"], "--data", imported["pictures"], "--questions", plain, "--tokens", "1",
             "--keep", "--replace", "--work", tmp_path / "work2"], set_dir, "give one")
    refused([set_dir, "--checkpoint", imported["hf"], "--data", imported["pictures"], "--questions", plain, "--tokens", "4",
             "--keep", "--question-embedding", "mean", "--work", tmp_path / "work2"], set_dir, "question_hidden_state")

    # --keep: V = 4 trained again (fewer steps, so its record differs), V = 1's graphs, golden and record kept as they were
    v1 = {k: (set_dir / comps[k]["graphs"]["1"]["file"]).read_bytes() for k in ("quecc", "tokenpacker")}
    v4 = (set_dir / comps["quecc"]["graphs"]["4"]["file"]).read_bytes()
    golden_v1 = [e for e in golden["distilled"] if e["tokens"] == 1]
    p = run([set_dir, "--checkpoint", imported["hf"], "--data", imported["pictures"], "--questions", plain, "--tokens", "4",
             "--batch", "8", "--baseline", "--keep", "--steps", "3", "--work", tmp_path / "work3"])
    assert p.returncode == 0, p.stderr
    manifest = json.loads((set_dir / "manifest.json").read_text())
    kept = {c["kind"]: c for c in manifest["decoders"][0]["compressors"]}
    for k in ("quecc", "tokenpacker"):
        assert list(kept[k]["graphs"]) == ["1", "4"]
        assert kept[k]["graphs"]["1"] == comps[k]["graphs"]["1"]
        assert (set_dir / kept[k]["graphs"]["1"]["file"]).read_bytes() == v1[k]
        d2 = kept[k]["distilled"]
        assert d2["tokens"] == [4] and d2["steps"] == 3 and sorted(d2["held_out"]) == ["4"]
        [e] = d2["earlier"]
        assert e["tokens"] == [1] and e["steps"] == 60 and sorted(e["held_out"]) == ["1"]
        assert e["held_out"]["1"] == comps[k]["distilled"]["held_out"]["1"]
    assert (set_dir / kept["quecc"]["graphs"]["4"]["file"]).read_bytes() != v4
    golden = json.loads((set_dir / manifest["golden"]).read_text())
    assert sorted((e["kind"], e["tokens"]) for e in golden["distilled"]) == [("quecc", 1), ("quecc", 4), ("tokenpacker", 1), ("tokenpacker", 4)]
    assert [e for e in golden["distilled"] if e["tokens"] == 1] == golden_v1
    assert not list(tmp_path.glob(".set.*"))


def refused(args, set_dir: Path, fragment: str):
    before = digest(set_dir)
    p = run(args)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], p.stderr
    assert digest(set_dir) == before
    assert not list(set_dir.parent.glob(f".{set_dir.name}.partial-*"))


def test_questions_are_plain_lines_or_json_lines_with_an_optional_answer(tmp_path):
    f = tmp_path / "q.txt"
    f.write_text('what is it?\n\n  {"question": " what colour? ", "image": "a.png", "answer": " red "}\n{"question": "where?", "answer": ""}\n'
                 '{"question": "how many?", "image": "b.png"}\n')
    assert distill.read_questions(f) == [("what is it?", None, None), ("what colour?", "red", "a.png"), ("where?", None, None),
                                         ("how many?", None, "b.png")]
    f.write_text('{"question": "what colour?", "answer": "red"}\n')  # an answer without its picture
    with pytest.raises(distill.DistillError, match=":1: an answer is about one picture"):
        distill.read_questions(f)
    f.write_text('{"question": "what?", "answer": 3}\n')
    with pytest.raises(distill.DistillError, match=":1: a JSON line is"):
        distill.read_questions(f)
    f.write_text('{"question": "what?"\n')
    with pytest.raises(distill.DistillError, match=":1 is not valid JSON"):
        distill.read_questions(f)


def test_bad_input_is_one_line_and_leaves_the_set_unchanged(imported, tmp_path):
    s, hf = imported["set"], imported["hf"]
    base = [s, "--checkpoint", hf, "--work", tmp_path / "w"]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    refused([*base, "--data", empty, "--questions", imported["questions"]], s, "holds no readable picture")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n")
    refused([*base, "--data", imported["pictures"], "--questions", blank], s, "holds no question")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"what\0is this\n")
    refused([*base, "--data", imported["pictures"], "--questions", binary], s, "is binary")
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text('{"question": "what is it?", "image": "../secret.png"}\n')
    refused([*base, "--data", imported["pictures"], "--questions", elsewhere], s, "is not a readable picture in")
    refused([*base, "--data", imported["pictures"], "--questions", imported["questions"], "--tokens", "3"], s, "V = 3 is not one")
    refused([*base, "--data", imported["pictures"], "--questions", imported["questions"], "--tokens", "64"], s, "V = 64 is not one")
    refused([*base], s, "was not trained on the world")
    other = tmp_path / "other-hf"
    assert make_hf_checkpoint.main(["--out", str(other), "--vision", "siglip"]) == 0
    refused([s, "--checkpoint", other, "--data", imported["pictures"], "--questions", imported["questions"]], s,
            "is not the configuration")
    # the same configuration (config.json's hash) with other weights: a retrained checkpoint the set was not made from
    import safetensors_io
    retrained = tmp_path / "retrained-hf"
    shutil.copytree(hf, retrained)
    changed = 0
    for shard in sorted(retrained.glob("*.safetensors")):  # the fixture's checkpoint is sharded
        weights = safetensors_io.SafetensorsFile(shard)
        tensors = {n: weights.read(n) for n in weights.names}
        weights.close()
        for n in tensors:
            if n.startswith("language_model.") and n.endswith("mlp.down_proj.weight"):
                tensors[n] = tensors[n] * 1.5  # the tower and projector as they were
                changed += 1
        safetensors_io.write(shard, tensors, "BF16", {"format": "pt"})
    assert changed > 0
    refused([s, "--checkpoint", retrained, "--data", imported["pictures"], "--questions", imported["questions"]], s,
            "is not the checkpoint")
    # a set without a full path to teach from
    nofull = tmp_path / "nofull"
    os.system(f"cp -r {s} {nofull}")
    m = json.loads((nofull / "manifest.json").read_text())
    m["decoders"][0]["compressors"] = [c for c in m["decoders"][0]["compressors"] if c["kind"] != "full"]
    (nofull / "manifest.json").write_text(json.dumps(m))
    refused([nofull, "--checkpoint", hf, "--data", imported["pictures"], "--questions", imported["questions"]], nofull,
            "no `full` compressor")
    # a second distillation into a set one is running into
    fd = os.open(s, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused([*base, "--data", imported["pictures"], "--questions", imported["questions"]], s, "another distillation is running")
    finally:
        os.close(fd)
    # the world set is not an imported one
    refused([TOOLS.parent / "models" / "default", "--checkpoint", hf], TOOLS.parent / "models" / "default", "is not an imported set")
