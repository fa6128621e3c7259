"""How much of a full-token model's answers V visual tokens can carry to its frozen decoder, whatever the compressor:
an upper bound for any compressor that does not read the question, measured before (or instead of) distilling one.

  /usr/bin/python3 tools/token_ceiling.py SET --checkpoint HF_DIR [--tokens 1,4,16] [--scenes 40] [--steps 200]
  /usr/bin/python3 tools/token_ceiling.py SET --checkpoint HF_DIR --data DIR --questions FILE --tokens 4

For each V the tokens themselves are trained, not a compressor: one free (V, D) set per picture in front of the same
frozen decoder, started from the `pool` compressor's (every patch through the projector, averaged over each region
of the grid), trained with tools/distill.py's loss against the set's `full` answers (the teacher's alone: true
answers are not used) on most of the questions asked of that picture, and scored on the others (--held-out, by
question text, so a question asked twice is on one side). A compressor that does not read the question (pool,
tokenpacker) gives one set of tokens a picture too, but must also make it from the pixels of pictures it has not
seen; so it cannot be expected to do better than this bound, and a goal above it cannot be met without changing the
decoder. Held-out questions keep the bound honest: V x D numbers a picture can simply memorise the answers to the
few questions they are fitted to (the fitted questions' score is printed too, to show it).

Prints, per V, the whole-answer agreement with the teacher and the first-token accuracy against true answers (where
the data has them: the world's do), overall and per question family, for pool and the bound on the held-out
questions, and the bound on the fitted ones; --json FILE also writes one JSON line per V and row. Errors are one
line and exit 2; nothing is written but --json's file.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import distill  # noqa: E402
from hf_llava import pool_matrix  # noqa: E402



def pooled_tokens(ck: dict, features: torch.Tensor, side: int) -> torch.Tensor:
    """The pool compressor's tokens (N, V, D): every patch through the projector, averaged over each region."""
    with torch.no_grad():
        return pool_matrix(ck["c"]["tower"].grid, side) @ ck["projector"](features)


def score(ck: dict, prompts, data: dict, rows: torch.Tensor, tokens: torch.Tensor, batch: int) -> dict:
    """Agreement with the teacher's whole answer, the KL divergence to its answers, first-token accuracy against the truth, overall and per family,
    of `tokens` (len(rows), V, D) in front of the frozen decoder."""
    agree, right, kl = [], [], 0.0
    with torch.no_grad():
        for s in range(0, len(rows), batch):
            idx = rows[s:s + batch]
            ids, mask = distill.batch_sequences(prompts, [data["after"][i] for i in idx.tolist()], data["teacher"][idx],
                                                tokens.shape[1])
            logits = distill.answer_logits(ck["decoder"], ids, mask, tokens[s:s + batch], prompts.slot, data["teacher"].shape[1])
            pred = logits.argmax(-1)
            kl += distill.distil_loss(logits, data["teacher"][idx], data["valid"][idx], data["top_v"][idx], data["top_i"][idx],
                                      torch.full_like(data["truth"][idx], -1))[1] * len(idx)
            agree += ((pred == data["teacher"][idx]) | ~data["valid"][idx]).all(1).tolist()
            t = data["truth"][idx]
            right += [None if ti < 0 else bool(pi == ti) for pi, ti in zip(pred[:, 0].tolist(), t.tolist())]
    out = {"n": len(agree), "agreement": sum(agree) / len(agree), "kl": kl / len(agree)}
    known = [r for r in right if r is not None]
    if known:
        out["accuracy"] = sum(known) / len(known)
    families = {}
    for i, a, r in zip(rows.tolist(), agree, right):
        f = data["family"][i]
        if f:
            families.setdefault(f, []).append(a if r is None else r)
    if families:
        out["families"] = {f: round(sum(v) / len(v), 4) for f, v in sorted(families.items())}
    return out


def fit(ck: dict, prompts, data: dict, rows: torch.Tensor, start: torch.Tensor, owner: torch.Tensor, a, label: str) -> torch.Tensor:
    """Free tokens, one (V, D) set per owner (start: (owners, V, D)), trained on `rows` (row i belongs to owner[i]) for
    a.steps full passes against the teacher alone; returns the owners' tokens."""
    tokens = torch.nn.Parameter(start.clone())
    opt = torch.optim.Adam([tokens], lr=a.lr)
    A = data["teacher"].shape[1]
    for step in range(a.steps):
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for s in range(0, len(rows), a.batch):
            idx = rows[s:s + a.batch]
            ids, mask = distill.batch_sequences(prompts, [data["after"][i] for i in idx.tolist()], data["teacher"][idx],
                                                start.shape[1])
            logits = distill.answer_logits(ck["decoder"], ids, mask, tokens[owner[s:s + a.batch]], prompts.slot, A)
            loss, _, _ = distill.distil_loss(logits, data["teacher"][idx], data["valid"][idx], data["top_v"][idx],
                                             data["top_i"][idx], torch.full_like(data["truth"][idx], -1))
            (loss * len(idx) / len(rows)).backward()
            total += loss.item() * len(idx) / len(rows)
        opt.step()
        distill.checkpoint.progress(f"{label} (loss {total:.3f})", step + 1, a.steps)
    return tokens.detach()


def split_questions(data: dict, rows: torch.Tensor, held_out: float, seed: int) -> tuple:
    """(fitted rows, held-out rows): per picture, its distinct question texts shuffled, about `held_out` of them (at
    least one where it has two or more) scored only."""
    by_picture = {}
    for i in rows.tolist():
        by_picture.setdefault(int(data["picture"][i]), {}).setdefault(tuple(data["own"][i]), []).append(i)
    g = torch.Generator().manual_seed(seed)
    fitted, scored = [], []
    for texts in by_picture.values():
        groups = [texts[k] for k in sorted(texts)]
        order = torch.randperm(len(groups), generator=g).tolist()
        n_out = 0 if len(groups) < 2 else max(1, round(held_out * len(groups)))
        for j, k in enumerate(order):
            (scored if j < n_out else fitted).extend(groups[k])
    return torch.tensor(sorted(fitted)), torch.tensor(sorted(scored))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Example: /usr/bin/python3 tools/token_ceiling.py models/world-llava --checkpoint models/world-llava-hf --tokens 4")
    ap.add_argument("set_dir", type=Path, help="an imported model set (assistant models import)")
    ap.add_argument("--checkpoint", type=Path, required=True, help="the llava-hf checkpoint folder the set was imported from")
    ap.add_argument("--data", default="world", help="'world' (the synthetic world's scenes and questions) or a folder of pictures")
    ap.add_argument("--questions", help="with --data DIR: the questions file tools/distill.py reads")
    ap.add_argument("--tokens", default="1,4,16", help="the V to measure, comma-separated squares (default 1,4,16)")
    ap.add_argument("--scenes", type=int, default=40, help="world scenes (default 40)")
    ap.add_argument("--questions-per-scene", type=int, default=30, help="world questions a scene (default 30)")
    ap.add_argument("--held-out", type=float, default=0.2, help="share of each picture's questions scored, not fitted (default 0.2)")
    ap.add_argument("--steps", type=int, default=200, help="full passes over the fitted questions (default 200)")
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--answer-tokens", type=int, default=8, help="longest teacher answer scored")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write one JSON line per V and bound to FILE")
    a = ap.parse_args(argv)
    try:
        for name, value in (("--steps", a.steps), ("--batch", a.batch), ("--scenes", a.scenes),
                            ("--questions-per-scene", a.questions_per_scene), ("--answer-tokens", a.answer_tokens)):
            if value < 1:
                distill.fail(f"{name} {value}: at least 1")
        if not 0 < a.held_out < 1:
            distill.fail(f"--held-out {a.held_out:g}: a share between 0 and 1")
        if not a.set_dir.is_dir():
            distill.fail(f"model set not found: {a.set_dir}")
        manifest = distill.read_set(a.set_dir)
        ck = distill.open_checkpoint(a.checkpoint, manifest)
        tokens = distill.parse_tokens(a.tokens, ck["c"]["tower"].grid)
        if a.data == "world" and manifest.get("world") is None:
            distill.fail(f"{a.set_dir} was not trained on the world (its manifest records none): give --data DIR --questions FILE")
        if a.data != "world" and a.questions is None:
            distill.fail("--data DIR needs --questions FILE (one question a line, or JSON lines with optional answers)")
        distill.check_golden(a.set_dir, manifest, ck)
        torch.manual_seed(a.seed)
        prompts = distill.Prompts(ck)
        # tools/distill.py's data: its held-out rows are the few it needs (one a scene); the bounds use its training rows
        opts = argparse.Namespace(data=a.data, questions=a.questions, scenes=a.scenes, questions_per_scene=a.questions_per_scene,
                                  val_scenes=1, seed=a.seed, answer_tokens=a.answer_tokens, batch=a.batch, question_embedding="mean")
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix="token-ceiling-") as work:
            data = distill.prepare_data(opts, ck, prompts, Path(work))
        rows = torch.arange(data["n_train"])
        fitted, scored = split_questions(data, rows, a.held_out, a.seed)
        if len(scored) == 0:
            distill.fail("no picture has two different questions, so none is left to score the bound on: give more questions")
        pictures, owner = torch.unique(data["picture"][fitted], return_inverse=True)
        keep = torch.isin(data["picture"][scored], pictures)  # a picture's held-out questions need its fitted tokens
        scored = scored[keep]
        owner_scored = torch.searchsorted(pictures, data["picture"][scored])
        features = data["features"][pictures]
        teacher = score(ck, prompts, data, scored, ck["projector"](data["features"][data["picture"][scored]]).detach(), a.batch)
        print(f"{len(pictures)} pictures: {len(fitted)} questions fitted, {len(scored)} held out; the teacher (full, "
              f"{features.shape[1]} tokens)" + (f" answers {teacher['accuracy']:.1%} of the held-out ones right" if "accuracy" in teacher else "")
              + f" ({time.time() - t0:.1f} s)", flush=True)
        records = [{"tokens": features.shape[1], "bound": "full", "questions": "held_out", **teacher}]
        for v in tokens:
            start = pooled_tokens(ck, features, int(v ** 0.5))
            tokens_v = fit(ck, prompts, data, fitted, start, owner, a, f"V = {v}, one set of tokens a picture")
            results = {("pool", "held_out"): score(ck, prompts, data, scored, start[owner_scored], a.batch),
                       ("picture", "held_out"): score(ck, prompts, data, scored, tokens_v[owner_scored], a.batch),
                       ("picture", "fitted"): score(ck, prompts, data, fitted, tokens_v[owner], a.batch)}
            for (bound, which), r in results.items():
                records.append({"tokens": v, "bound": bound, "questions": which, **r})
                fam = "  ".join(f"{f} {x:.0%}" for f, x in r.get("families", {}).items())
                acc = f", accuracy {r['accuracy']:.1%}" if "accuracy" in r else ""
                print(f"V = {v:<3} {bound:<8} {which.replace('_', '-'):<9} agreement {r['agreement']:.1%}{acc}  {fam}", flush=True)
        if a.json is not None:
            config = {"set": manifest["name"], "data": a.data, "scenes": a.scenes, "questions_per_scene": a.questions_per_scene,
                      "held_out": a.held_out, "steps": a.steps, "lr": a.lr, "seed": a.seed, "tool": "tools/token_ceiling.py"}
            a.json.write_text("".join(json.dumps({**config, **r}) + "\n" for r in records))
        return 0
    except distill.DistillError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
