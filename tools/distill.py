"""Distils the paper's query-aware compressor (QueCC) for an imported set from the set's own full-token answers.

  /usr/bin/python3 tools/distill.py SET --checkpoint HF_DIR [--data world|DIR] [--questions FILE] [--tokens 1,4,16]
  ./assistant models distill SET --checkpoint HF_DIR ...      # the same, with the engine's check before the set changes

The teacher is the set at `full` (every patch through the checkpoint's projector); each student is a compressor of V
visual tokens in front of the same frozen decoder. The loss is the cross-entropy of the student's next-token
distribution against the teacher's (its top-k probabilities, renormalised: the KL divergence up to the teacher's own
entropy) at every position of the teacher's greedy answer, teacher-forced, plus cross-entropy on the true answer's
first token where the data has answers (the world's do).

The compressor (docs/REAL_MODELS.md, "Compressing a real checkpoint"), following the paper's QueCC: the question's
embedding (--question-embedding pass, the default and the paper's: the frozen decoder run on the question's own tokens
alone, its final hidden state at the last one, which the engine computes once per question as question_hidden_state;
or mean: the mean of the question's token embeddings, question_embedding_mean) is projected to the tower's width and
added to every patch feature; each region of the patch grid is downsampled by a
learned depthwise filter (the paper's convolution with kernel = stride, generalised to the adaptive bins the `pool`
compressor uses, so 27 x 27 grids give 2 x 2 regions too); that downsampled query attends to its own region's patch
features (keys and values from the tower's feature layer: an imported set's tower hands on no other layer); the
result goes through an MLP projector initialised from the checkpoint's. The residual paths start at zero, so
training starts from the pooled picture. `tokenpacker` is the same module without the question (--baseline).

Data: the world generator (`--data world`, true answers known), or a folder of pictures with a questions file: one
question a line, asked of every picture, or JSON lines {"question": ..., "image": NAME, "answer": ...}, where a line
with "image" is asked of that picture of the folder only, and "answer" (its true answer, optional) needs "image". The frozen
tower's features and the teacher's answers are computed once and kept in the work folder (--work, default
.SET.distill beside the set), with checkpoints every --save-every steps; a stopped run resumes from there, and a larger --steps continues a run. The new
set is written as a copy beside the old one (files hard-linked where the file system allows) and put in its place
whole at the end; errors are one line, exit 2, the set unchanged.
"""
import argparse
import fcntl
import hashlib
import json
import math
import os
import secrets
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checkpoint  # noqa: E402
import scratch  # noqa: E402
from export import export_graph, io, n_params  # noqa: E402
from hf_llava import Projector  # noqa: E402

KINDS = {"quecc": True, "tokenpacker": False}  # kind -> query-aware
QUESTION_EMBEDDINGS = {"pass": "question_hidden_state", "mean": "question_embedding_mean"}  # --question-embedding -> manifest
PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif"}
MAX_QUESTIONS_BYTES = 4 << 20
MAX_QUESTION_CHARS = 1000
TOP_K = 64
SAVE_EVERY = 50


class DistillError(Exception):
    """Refused input: one line for the user, exit 2, nothing changed."""


def fail(message: str):
    raise DistillError(message)


# ---------------------------------------------------------------- the compressor

def regions(grid: int, side: int) -> tuple:
    """The side x side regions of a grid x grid patch grid, with the adaptive bins [floor(i g / s), ceil((i+1) g / s))
    per axis (hf_llava.pool_matrix's): (V, K) patch indices of each region, row-major within a K = kmax^2 window,
    padding pointing at index P (a zero row), and the (V, K) mask of real patches."""
    bins = [(i * grid // side, -(-(i + 1) * grid // side)) for i in range(side)]
    kmax = max(b - a for a, b in bins)
    index = torch.full((side * side, kmax * kmax), grid * grid, dtype=torch.long)
    for i, (r0, r1) in enumerate(bins):
        for j, (c0, c1) in enumerate(bins):
            for r in range(r0, r1):
                for c in range(c0, c1):
                    index[i * side + j, (r - r0) * kmax + (c - c0)] = r * grid + c
    return index, index < grid * grid


def mlp_ln(d_in: int, d: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d), nn.GELU(), nn.Linear(d, d), nn.LayerNorm(d))


class RegionQueCC(nn.Module):
    """features (B, P, Dv) [and query_embedding (B, D)] -> visual_tokens (B, V, D), V = side^2."""

    def __init__(self, dv: int, d: int, grid: int, side: int, heads: int, query_aware: bool, projector: Projector, act: str):
        super().__init__()
        self.query_aware, self.heads = query_aware, heads
        index, mask = regions(grid, side)
        self.register_buffer("index", index, persistent=False)
        self.register_buffer("outside", (~mask).float() * -1e4, persistent=False)  # (V, K)
        if query_aware:
            self.inject = nn.Sequential(nn.Linear(d, dv), nn.LayerNorm(dv))
            nn.init.zeros_(self.inject[1].weight)  # the question's effect starts at zero and is learned
        self.query_mlp = mlp_ln(dv, dv)
        nn.init.zeros_(self.query_mlp[3].weight)  # residual: starts as the identity
        # The depthwise filter of each region (the paper's kernel = stride convolution), starting as its mean.
        self.down = nn.Parameter((mask.float() / mask.float().sum(1, keepdim=True))[0].repeat(dv, 1).contiguous())  # (Dv, K)
        self.down_bias = nn.Parameter(torch.zeros(dv))
        self.kv_mlp = mlp_ln(dv, dv)
        self.q, self.k, self.v, self.o = (nn.Linear(dv, dv) for _ in range(4))
        nn.init.zeros_(self.o.weight), nn.init.zeros_(self.o.bias)  # residual: the region's attention starts at zero
        self.proj = Projector(dv, d, act)
        self.proj.load_state_dict(projector.state_dict())

    def forward(self, features, query_embedding=None):
        B, P, C = features.shape
        x = features
        if self.query_aware:
            x = x + self.inject(query_embedding)[:, None, :]  # (B, P, C)
        x = x + self.query_mlp(x)
        pad = torch.zeros(B, 1, C, dtype=x.dtype)
        xr = torch.cat([x, pad], dim=1)[:, self.index]  # (B, V, K, C)
        # Padding gathers the zero row, so the filter's taps there add nothing; a region's weights need not sum to one.
        q = (xr * self.down.t()[None, None]).sum(dim=2) + self.down_bias  # (B, V, C)
        kv = torch.cat([self.kv_mlp(features), pad], dim=1)[:, self.index]  # (B, V, K, C); padding masked below
        V, K = self.index.shape
        H, Dh = self.heads, C // self.heads
        qh = self.q(q).reshape(B, V, H, 1, Dh)
        kh = self.k(kv).reshape(B, V, K, H, Dh).transpose(2, 3)  # (B, V, H, K, Dh)
        vh = self.v(kv).reshape(B, V, K, H, Dh).transpose(2, 3)
        scores = (qh * Dh ** -0.5) @ kh.transpose(-1, -2) + self.outside[None, :, None, None, :]  # (B, V, H, 1, K)
        att = (scores.softmax(dim=-1) @ vh).reshape(B, V, C)
        return self.proj(q + self.o(att))  # (B, V, D)


def attention_heads(dv: int) -> int:
    for h in (16, 8, 4, 2, 1):
        if dv % h == 0 and dv // h >= 8:
            return h
    return 1


# ---------------------------------------------------------------- the set and the checkpoint

def read_set(set_dir: Path) -> dict:
    path = set_dir / "manifest.json"
    if not path.is_file():
        fail(f"{set_dir} is not a model set: it has no manifest.json")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(f"{path} is not valid JSON: {e}")
    source = m.get("source") if isinstance(m, dict) else None
    if not isinstance(source, dict) or source.get("importer") != "tools/import_hf.py":
        fail(f"{set_dir} is not an imported set (its manifest names no importer): distillation teaches a compressor from "
             "an imported checkpoint's full-token answers; a world set's compressors are trained with it (tools/train.py)")
    if source.get("architecture") != "LlavaForConditionalGeneration":
        fail(f"{set_dir} was imported from {source.get('architecture')}: distillation reads LLaVA sets (an MLP projector) only so far")
    decoders = m.get("decoders") or []
    if len(decoders) != 1:
        fail(f"{set_dir} has {len(decoders)} decoders; an imported set has one")
    kinds = {c.get("kind") for c in decoders[0].get("compressors", [])}
    if "full" not in kinds:
        fail(f"{set_dir} has no `full` compressor to teach from (every patch through the projector is the teacher)")
    return m


def open_checkpoint(hf: Path, manifest: dict) -> dict:
    """The checkpoint the set was imported from, its modules in float32 for training; refused when it is not that one."""
    if not (hf / "config.json").is_file():
        fail(f"{hf} is not a llava-hf checkpoint folder: it has no config.json")
    digest = hashlib.sha256((hf / "config.json").read_bytes()).hexdigest()
    if digest != manifest["source"].get("config_sha256"):
        fail(f"{hf}/config.json is not the configuration {manifest['name']} was imported from (its SHA-256 differs): "
             "give --checkpoint the folder the set was imported from")
    try:
        c = checkpoint.parse_config(hf)
        c["text"].fused_attention = False  # the plain attention takes a padded batch's mask
        c["text"].last_logits = False
        parts = checkpoint.load_llava(hf, c)
        tok = checkpoint.read_tokenizer(hf)
        by_id = {i: t for t, i in tok.added.items()}
        prompt = checkpoint.chat_prompt(hf, tok, by_id[c["image_token"]])
        stops = checkpoint.stop_tokens(hf, tok, c["config"])
        pre = checkpoint.image_preprocessing(hf)
    except checkpoint.CheckpointError as e:
        fail(f"the checkpoint could not be read: {e}")
    for module in parts.values():
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
    stop_ids = [tok.added[s] if s in tok.added else s for s in stops]
    return {"c": c, **parts, "tok": tok, "prompt": prompt, "stops": [s for s in stop_ids if isinstance(s, int)], "pre": pre,
            "image_token": c["image_token"]}


def check_golden(set_dir: Path, manifest: dict, ck: dict) -> dict:
    """The set's golden picture through the checkpoint's tower and projector agrees with what the importer recorded."""
    g = json.loads((set_dir / manifest["golden"]).read_text())
    pixels = torch.tensor(g["pixel_values"]).reshape(1, 3, ck["c"]["tower"].image_size, ck["c"]["tower"].image_size)
    with torch.no_grad():
        features = ck["tower"](pixels)
    recorded = torch.tensor(g["features"]).reshape(features.shape)
    cos = F.cosine_similarity(features.flatten(), recorded.flatten(), dim=0).item()
    if not cos > 0.99:
        fail(f"the checkpoint's tower does not give the set's golden features (cosine {cos:.4f}): "
             "give --checkpoint the folder the set was imported from")
    # The projector and language model too: a checkpoint retrained with the same config.json (its hash is the same)
    # and the same tower would otherwise teach a compressor for a decoder the set does not hold. A set imported in
    # float32, float16 or bfloat16 holds the checkpoint's own values; a q8/q4 set's golden is PyTorch on its rounded
    # weights, which no float32 load reproduces, so there the tower is all that is checked.
    if manifest["source"].get("weights") not in ("q8", "q4") and "full" in g.get("answers", {}):
        dec, proj = ck["decoder"], ck["projector"]
        with torch.no_grad():
            x = torch.cat([dec.embed_tokens(torch.tensor([g["prefix_ids"]])), proj(features),
                           dec.embed_tokens(torch.tensor([g["question_ids"]]))], dim=1)
            T = x.shape[1]
            hidden, _ = dec.hidden(x, torch.ones(1, T, dtype=torch.long), torch.arange(T)[None], *dec.empty_past(1))
            logits = dec.lm_head(hidden[:, -1])[0]
        want = torch.tensor(g["answers"]["full"]["prefill_logits"])
        diff = (logits - want).abs().max().item() if logits.shape == want.shape else float("inf")
        if not diff <= 1e-3 * max(1.0, want.abs().max().item()):
            fail(f"the checkpoint's projector and language model do not give the set's golden answer (logits differ by "
                 f"{diff:.3g}): it is not the checkpoint {manifest['name']} was imported from; give --checkpoint that "
                 "folder, or import this one again")
    return g


# ---------------------------------------------------------------- data

def world_samples(n_scenes: int, questions: int, split: str, seed: int, size: int):
    import world
    lo, hi = world.SPLITS[split]
    seeds = np.random.default_rng(seed).choice(np.arange(lo, hi), size=n_scenes, replace=False)
    pictures, rows = [], []
    for i, s in enumerate(seeds):
        pictures.append(world.render(world.scene(int(s)), size))
        for q, text, answer in world.questions(int(s), questions):
            rows.append((i, text, answer, q["family"]))
    return np.stack(pictures), rows


def read_questions(path: Path) -> list:
    """(question, answer or None, picture name or None) per line: plain lines, or JSON lines
    {"question": ..., "image": ..., "answer": ...}; an answer belongs to one picture, so it needs "image"."""
    if not path.is_file():
        fail(f"questions file not found: {path}")
    data = path.read_bytes()
    if len(data) > MAX_QUESTIONS_BYTES:
        fail(f"{path} is {len(data):,} bytes; a questions file is at most {MAX_QUESTIONS_BYTES >> 20} MB")
    if b"\0" in data:
        fail(f"{path} is binary, not a questions file (one question a line, or JSON lines)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{path} is not UTF-8 text (one question a line, or JSON lines)")
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as e:
                fail(f"{path}:{n} is not valid JSON ({e.msg})")
            if not isinstance(doc, dict):
                fail(f"{path}:{n}: a JSON line is {{\"question\": text, \"image\": name, \"answer\": text}} (image and answer optional)")
            q, a, im = doc.get("question"), doc.get("answer"), doc.get("image")
            if (not isinstance(q, str) or not q.strip() or (a is not None and not isinstance(a, str))
                    or (im is not None and (not isinstance(im, str) or not im.strip()))):
                fail(f"{path}:{n}: a JSON line is {{\"question\": text, \"image\": name, \"answer\": text}} (image and answer optional)")
            line, answer, image = q.strip(), (a.strip() or None) if a else None, im.strip() if im else None
            if answer is not None and image is None:
                fail(f"{path}:{n}: an answer is about one picture: give the picture's file name as \"image\" with it")
        else:
            answer, image = None, None
        if len(line) > MAX_QUESTION_CHARS:
            fail(f"{path}:{n} is {len(line):,} characters; a question is at most {MAX_QUESTION_CHARS:,}")
        out.append((line, answer, image))
    if not out:
        fail(f"{path} holds no question (one question a line, or JSON lines)")
    return out


def folder_pictures(folder: Path, size: int, center_crop: bool) -> tuple:
    """Every readable picture of the folder (not its subfolders), at the tower's size; the names skipped."""
    from PIL import Image, UnidentifiedImageError
    Image.MAX_IMAGE_PIXELS = 64_000_000
    pictures, names, skipped = [], [], []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.suffix.lower() not in PICTURE_SUFFIXES:
            continue
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                if center_crop:
                    s = min(im.size)
                    left, top = (im.width - s) // 2, (im.height - s) // 2
                    im = im.crop((left, top, left + s, top + s))
                pictures.append(np.asarray(im.resize((size, size), Image.BICUBIC)))
                names.append(p.name)
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
            skipped.append(p.name)
    if not pictures:
        fail(f"{folder} holds no readable picture ({', '.join(sorted(PICTURE_SUFFIXES))})"
             + (f"; {len(skipped)} could not be read" if skipped else ""))
    return np.stack(pictures), names, skipped


# ---------------------------------------------------------------- prompts, teacher

class Prompts:
    """A chat set's prompt around V visual slots: [before image][slot x V][before question, question, after]."""

    def __init__(self, ck: dict):
        self.tok, self.prompt, self.slot = ck["tok"], ck["prompt"], ck["image_token"]
        self.prefix, _ = checkpoint.encode_pieces(self.tok, [("text", self.prompt["before_image"])])
        self.pad = ck["stops"][0] if ck["stops"] else 0

    def after(self, question: str) -> tuple:
        ids, own = checkpoint.encode_pieces(self.tok, [("text", self.prompt["before_question"]), ("question", question),
                                                       ("text", self.prompt["after_question"])])
        return ids, own

    def answer_ids(self, answer: str | None) -> int:
        if answer is None:
            return -1
        ids = self.tok.encode(answer, True)
        return ids[0] if ids else -1


def batch_sequences(prompts: Prompts, afters: list, answers: torch.Tensor, visual: int):
    """Left-padded ids (B, T) with `visual` slots, the mask, and the positions: [prefix][slots][after][answer A]."""
    rows = [prompts.prefix + [prompts.slot] * visual + a for a in afters]
    A = answers.shape[1]
    T = max(len(r) for r in rows) + A
    ids = torch.full((len(rows), T), prompts.pad, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, T - A - len(r):T - A] = torch.tensor(r)
        mask[i, T - A - len(r):] = 1
    ids[:, T - A:] = answers
    return ids, mask


def answer_logits(dec, ids, mask, visual_tokens, slot: int, A: int):
    """Logits (B, A, vocab) predicting each of the A answer positions, the visual tokens in the slots."""
    x = dec.embed_tokens(ids)
    slots = ids == slot
    slots[:, ids.shape[1] - A:] = False  # a teacher's answer may hold the image token itself; it stays a token
    x = x.masked_scatter(slots[..., None], visual_tokens.to(x.dtype))
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    hidden, _ = dec.hidden(x, mask, positions, *dec.empty_past(ids.shape[0]))
    return dec.lm_head(hidden[:, -A - 1:-1])


@torch.no_grad()
def teacher_answers(ck: dict, prompts: Prompts, features, afters, answer_tokens: int, batch: int, label: str):
    """The teacher's greedy answers (N, A) with their valid-position mask, and its top-k log-probabilities at each:
    one prefill of the prompt, then one cached step a token (left padding keeps every row's next position last)."""
    dec, proj = ck["decoder"], ck["projector"]
    stops = set(ck["stops"])
    N, P = features.shape[0], features.shape[1]
    k = min(TOP_K, dec.cfg.vocab_size)
    out_ids = torch.full((N, answer_tokens), prompts.pad, dtype=torch.long)
    valid = torch.zeros(N, answer_tokens, dtype=torch.bool)
    top_v = torch.zeros(N, answer_tokens, k)
    top_i = torch.zeros(N, answer_tokens, k, dtype=torch.long)
    for s in range(0, N, batch):
        e = min(N, s + batch)
        done = torch.zeros(e - s, dtype=torch.bool)
        ids, mask = batch_sequences(prompts, afters[s:e], torch.zeros(e - s, 0, dtype=torch.long), P)
        x = dec.embed_tokens(ids).masked_scatter((ids == prompts.slot)[..., None], proj(features[s:e]))
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        hidden, past = dec.hidden(x, mask, positions, *dec.empty_past(e - s))
        for t in range(answer_tokens):
            lp = dec.lm_head(hidden[:, -1]).log_softmax(-1)
            top_v[s:e, t], top_i[s:e, t] = lp.topk(k, dim=-1)
            nxt = top_i[s:e, t, 0]
            valid[s:e, t] = ~done
            out_ids[s:e, t] = torch.where(done, torch.full_like(nxt, prompts.pad), nxt)
            done |= torch.tensor([int(i) in stops for i in nxt])
            if done.all() or t == answer_tokens - 1:
                break
            mask = torch.cat([mask, torch.ones(e - s, 1, dtype=mask.dtype)], dim=1)
            positions = positions[:, -1:] + 1
            hidden, past = dec.hidden(dec.embed_tokens(out_ids[s:e, t:t + 1]), mask, positions, *past)
        checkpoint.progress(label, e, N)
    A = int(valid.sum(1).max())
    return out_ids[:, :A], valid[:, :A], top_v[:, :A], top_i[:, :A]


def query_embeddings(dec, owns: list, kind: str, batch: int = 64) -> torch.Tensor:
    """Each question's query embedding (N, D) from its own ids: `mean`, the mean of their token embeddings (the
    engine's question_embedding_mean); `pass`, the decoder run on them alone from position 0, its final hidden state at
    the last one (question_hidden_state). Zeros for a question of no tokens, as in the engine."""
    D = dec.cfg.dim
    with torch.no_grad():
        if kind == "mean":
            return torch.stack([dec.embed_tokens(torch.tensor(o)).mean(0) if o else torch.zeros(D) for o in owns])
        keys = [tuple(o) for o in owns]
        distinct = [k for k in dict.fromkeys(keys) if k]  # the world asks the same question of many pictures
        hidden = {}
        for s in range(0, len(distinct), batch):
            rows = distinct[s:s + batch]
            T = max(len(r) for r in rows)
            ids = torch.zeros(len(rows), T, dtype=torch.long)
            mask = torch.zeros(len(rows), T, dtype=torch.long)
            for i, r in enumerate(rows):  # left-padded, so every row's last token is the last column
                ids[i, T - len(r):] = torch.tensor(r)
                mask[i, T - len(r):] = 1
            out, _ = dec.hidden(dec.embed_tokens(ids), mask, (mask.cumsum(1) - 1).clamp(min=0), *dec.empty_past(len(rows)))
            hidden.update({r: out[i, -1] for i, r in enumerate(rows)})
        return torch.stack([hidden[k] if k else torch.zeros(D) for k in keys])


# ---------------------------------------------------------------- training

def distil_loss(logits, teacher_ids, valid, top_v, top_i, truth):
    """Soft cross-entropy against the teacher's renormalised top-k at every valid answer position, plus the true first
    token's cross-entropy where known (truth >= 0). Returns the loss, the KL part and the teacher agreement."""
    lp = logits.log_softmax(-1)
    p = top_v.softmax(-1)  # the teacher's top-k, renormalised
    soft = -(p * lp.gather(-1, top_i)).sum(-1)  # (B, A)
    entropy = -(p * p.clamp_min(1e-12).log()).sum(-1)
    w = valid.float()
    kl = ((soft - entropy) * w).sum() / w.sum()
    loss = (soft * w).sum() / w.sum()
    known = truth >= 0
    if known.any():
        loss = loss + F.cross_entropy(logits[known, 0], truth[known])
    agree = ((lp.argmax(-1) == teacher_ids) | ~valid).all(1).float().mean()
    return loss, kl.item(), agree.item()


def evaluate(students: dict, ck: dict, prompts: Prompts, data: dict, sel, batch: int) -> dict:
    """Per student on the questions `sel`: whole-answer agreement with the teacher, the KL divergence to it, and
    first-token accuracy where answers are known."""
    out = {}
    with torch.no_grad():
        for key, s in students.items():
            agree, kl_sum, right, known = 0.0, 0.0, 0, 0
            for b in range(0, len(sel), batch):
                idx = sel[b:b + batch]
                V = s.index.shape[0]
                vis = s(data["features"][data["picture"][idx]], data["query"][idx])
                ids, mask = batch_sequences(prompts, [data["after"][i] for i in idx.tolist()], data["teacher"][idx], V)
                logits = answer_logits(ck["decoder"], ids, mask, vis, prompts.slot, data["teacher"].shape[1])
                _, kl, a = distil_loss(logits, data["teacher"][idx], data["valid"][idx], data["top_v"][idx], data["top_i"][idx],
                                       torch.full_like(data["truth"][idx], -1))
                agree += a * len(idx)
                kl_sum += kl * len(idx)
                t = data["truth"][idx]
                right += ((logits[:, 0].argmax(-1) == t) & (t >= 0)).sum().item()
                known += (t >= 0).sum().item()
            n = max(len(sel), 1)
            out[key] = {"agreement": agree / n, "kl": kl_sum / n, **({"accuracy": right / known} if known else {})}
    return out


def student_key(kind: str, v: int) -> str:
    return f"{kind}_V{v}"


def parse_tokens(text: str, grid: int) -> list:
    try:
        vs = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        fail(f"--tokens {text!r}: give visual-token counts separated by commas, e.g. 1,4,16")
    if not vs:
        fail("--tokens names no visual-token count")
    for v in vs:
        side = math.isqrt(v) if v > 0 else 0
        if v <= 0 or side * side != v or side > grid:
            fail(f"V = {v} is not one the {grid} x {grid} patch grid can give: V is a square of a side from 1 to {grid} "
                 f"(1, 4, 9, 16, ...), each token one region of the grid")
    return vs


def prepare_data(a, ck: dict, prompts: Prompts, work: Path) -> dict:
    """Pictures, questions, the tower's features, the query embeddings and the teacher's answers, made once and kept."""
    path = work / "data.pt"
    if path.exists():
        data = torch.load(path, weights_only=False)
        if data.get("question_embedding") != a.question_embedding:  # only the query embeddings depend on it
            if "own" not in data:
                fail(f"{path} was made by an older tools/distill.py; remove {work} to start afresh")
            data["query"] = query_embeddings(ck["decoder"], data["own"], a.question_embedding)
            data["question_embedding"] = a.question_embedding
            scratch_save(path, data)
        return data
    tower = ck["tower"]
    S = tower.cfg.image_size
    if a.data == "world":
        pictures, rows = world_samples(a.scenes, a.questions_per_scene, "train", a.seed, S)
        vp, vrows = world_samples(a.val_scenes, 1, "val", a.seed, S)
        rows = [(i, t, ans, fam) for i, t, ans, fam in rows] + [(len(pictures) + i, t, ans, fam) for i, t, ans, fam in vrows]
        n_train = len(rows) - len(vrows)
        pictures = np.concatenate([pictures, vp])
        source = {"data": "world", "scenes": a.scenes, "questions_per_scene": a.questions_per_scene, "val_scenes": a.val_scenes}
    else:
        folder = Path(a.data)
        if not folder.is_dir():
            fail(f"--data {a.data}: not 'world' and not a folder of pictures")
        if a.questions is None:
            fail("--data DIR needs --questions FILE (one question a line, or JSON lines with optional answers)")
        qs = read_questions(Path(a.questions))
        pictures, names, skipped = folder_pictures(folder, S, ck["pre"].get("center_crop", False))
        if skipped:
            checkpoint.stage(f"skipped {len(skipped)} unreadable pictures: {', '.join(skipped[:3])}")
        index = {name: i for i, name in enumerate(names)}
        pairs = []
        for q, ans, image in qs:
            if image is None:
                pairs += [(i, q, None, "") for i in range(len(pictures))]
            elif image in index:
                pairs.append((index[image], q, ans, ""))
            else:
                fail(f"{a.questions}: \"image\": {json.dumps(image)[:80]} is not a readable picture in {folder}")
        order = np.random.default_rng(a.seed).permutation(len(pairs))
        n_val = max(1, min(a.val_scenes, len(pairs) // 10))
        rows = [pairs[j] for j in order[n_val:]] + [pairs[j] for j in order[:n_val]]
        n_train = len(rows) - n_val
        if n_train < 1:
            fail(f"{len(pairs)} picture-question pairs leave none to train on; give more pictures or questions")
        source = {"data": str(folder), "pictures": len(pictures), "questions": len(qs), "skipped": len(skipped)}
    mean, std = ck["pre"]["mean"], ck["pre"]["std"]
    features = []
    with torch.no_grad():
        for s in range(0, len(pictures), 64):
            x = torch.from_numpy(pictures[s:s + 64]).permute(0, 3, 1, 2).float() / 255.0
            x = (x - torch.tensor(mean)[None, :, None, None]) / torch.tensor(std)[None, :, None, None]
            features.append(tower(x))
            checkpoint.progress("the frozen tower's features", min(s + 64, len(pictures)), len(pictures))
    features = torch.cat(features)
    enc = [prompts.after(t) for _, t, _, _ in rows]
    owns = [e[1] for e in enc]
    data = {"features": features, "picture": torch.tensor([r[0] for r in rows]), "after": [e[0] for e in enc],
            "own": owns, "query": query_embeddings(ck["decoder"], owns, a.question_embedding), "question_embedding": a.question_embedding,
            "truth": torch.tensor([prompts.answer_ids(r[2]) for r in rows]), "family": [r[3] for r in rows],
            "n_train": n_train, "source": source}
    t0 = time.time()
    data["teacher"], data["valid"], data["top_v"], data["top_i"] = teacher_answers(
        ck, prompts, features[data["picture"]], data["after"], a.answer_tokens, a.batch, "the teacher's answers")
    source["teacher_seconds"] = round(time.time() - t0, 1)
    known = data["truth"] >= 0
    if known.any():
        source["teacher_accuracy"] = round((data["teacher"][known, 0] == data["truth"][known]).float().mean().item(), 4)
    scratch_save(path, data)
    return data


def scratch_save(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(a, ck: dict, prompts: Prompts, data: dict, students: dict, work: Path) -> dict:
    path = work / "train.pt"
    opts = {k: torch.optim.AdamW([p for p in s.parameters() if p.requires_grad], lr=a.lr, weight_decay=0.01)
            for k, s in students.items()}
    state = {"step": 0, "elapsed": 0.0, "history": []}
    if path.exists():
        ck_state = torch.load(path, weights_only=False)
        earlier = ck_state["config"]
        longer = {**earlier, "steps": a.steps} == run_config(a) and a.steps > earlier["steps"]
        if earlier != run_config(a) and not longer:
            fail(f"{work} holds a run with other settings ({describe_config(earlier)}); "
                 "remove it or give another --work to start afresh (a larger --steps alone continues it)")
        for k, s in students.items():
            s.load_state_dict(ck_state["students"][k])
            opts[k].load_state_dict(ck_state["opts"][k])
        state = ck_state["state"]
        if longer:
            # the cosine schedule is stretched to the new length, so the rate rises once from its floor and decays again
            print(f"continuing {path} from step {state['step']} to {a.steps} (it was a run of {earlier['steps']})", flush=True)
        else:
            print(f"resuming {path} at step {state['step']} of {a.steps}", flush=True)
    gen = torch.Generator().manual_seed(a.seed + state["step"])
    n = data["n_train"]
    val = torch.arange(n, len(data["picture"]))
    if "train_kl_start" not in state:  # a fixed sample of the training questions, before the first step
        state["train_kl_start"] = {k: r["kl"] for k, r in evaluate(students, ck, prompts, data, fixed_sample(n), a.batch).items()}
    t0 = time.time()

    def snapshot():
        return {"config": run_config(a), "students": {k: s.state_dict() for k, s in students.items()},
                "opts": {k: o.state_dict() for k, o in opts.items()},
                "state": {**state, "elapsed": state["elapsed"] + time.time() - t0}}

    try:
        while state["step"] < a.steps:
            idx = torch.randint(0, n, (a.batch,), generator=gen)
            feats = data["features"][data["picture"][idx]]
            afters = [data["after"][i] for i in idx.tolist()]
            # the schedule follows the clock where --max-minutes is the tighter budget, so a capped run still decays
            frac = state["step"] / a.steps
            if a.max_minutes:
                frac = max(frac, (state["elapsed"] + time.time() - t0) / 60 / a.max_minutes)
            lr = a.lr * min(1.0, (state["step"] + 1) / 20) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
            metrics = {}
            for k, s in students.items():
                for g in opts[k].param_groups:
                    g["lr"] = lr
                vis = s(feats, data["query"][idx])
                ids, mask = batch_sequences(prompts, afters, data["teacher"][idx], s.index.shape[0])
                logits = answer_logits(ck["decoder"], ids, mask, vis, prompts.slot, data["teacher"].shape[1])
                loss, kl, agree = distil_loss(logits, data["teacher"][idx], data["valid"][idx], data["top_v"][idx],
                                              data["top_i"][idx], data["truth"][idx])
                opts[k].zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(s.parameters(), 1.0)
                opts[k].step()
                metrics[k] = (kl, agree)
            state["step"] += 1
            done = state["step"]
            if done % a.log_every == 0 or done == a.steps:
                spent = state["elapsed"] + time.time() - t0
                rate = spent / done
                bar = "#" * int(30 * done / a.steps)
                text = "  ".join(f"{k} kl {kl:.3f} agree {ag:.2f}" for k, (kl, ag) in metrics.items())
                print(f"[{bar:<30}] {done}/{a.steps} {rate:.2f} s/step, {rate * (a.steps - done) / 60:.1f} min left  {text}", flush=True)
            if done % a.val_every == 0 or done == a.steps:
                v = evaluate(students, ck, prompts, data, val, a.batch)
                state["history"].append({"step": done, **{k: {m: round(x, 4) for m, x in r.items()} for k, r in v.items()}})
                print("  held out: " + "  ".join(f"{k} agreement {r['agreement']:.3f}" + (f" accuracy {r['accuracy']:.3f}" if "accuracy" in r else "")
                                                 for k, r in v.items()), flush=True)
            if done % a.save_every == 0:
                scratch_save(path, snapshot())
            if a.max_minutes and (state["elapsed"] + time.time() - t0) / 60 >= a.max_minutes:
                print(f"stopping at step {done}: --max-minutes {a.max_minutes:g} reached", flush=True)
                break
    except BaseException:
        scratch_save(path, snapshot())  # Ctrl+C, SIGTERM or an error: the run resumes from here
        print(f"saved the run at step {state['step']} to {path}; the same command resumes it", file=sys.stderr, flush=True)
        raise
    scratch_save(path, snapshot())
    state["elapsed"] += time.time() - t0
    return state


def fixed_sample(n: int, most: int = 512) -> torch.Tensor:
    """The training questions the loss is measured on before and after: the same ones every time."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(12345))[:most]


def run_config(a) -> dict:
    return {"data": a.data, "questions": a.questions, "tokens": a.tokens, "kinds": a.kinds, "batch": a.batch, "seed": a.seed,
            "scenes": a.scenes, "questions_per_scene": a.questions_per_scene, "val_scenes": a.val_scenes,
            "answer_tokens": a.answer_tokens, "lr": a.lr, "steps": a.steps, "question_embedding": a.question_embedding}


def describe_config(c: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.items() if v is not None)


# ---------------------------------------------------------------- writing the set

def link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_set(set_dir: Path, partial: Path, manifest: dict, golden: dict, students: dict, ck: dict, state: dict,
              data: dict, a, final: dict) -> str:
    """The set with the distilled compressors, whole in `partial`: every old file linked (or copied) except the graphs
    this run replaces (a trained kind's graphs; with --keep only those at the Vs it trained), the new graphs, the
    golden's visual tokens of each, and the manifest."""
    dec = manifest["decoders"][0]
    folder = Path(dec["decoder"]["file"]).parent.as_posix()
    old = {c["kind"]: c for c in dec["compressors"] if c["kind"] in a.kinds}
    kept = {k: {v: g for v, g in c["graphs"].items() if int(v) not in a.tokens} if a.keep else {} for k, c in old.items()}
    replaced = {g["file"] for k, c in old.items() for v, g in c["graphs"].items() if v not in kept[k]}
    replaced |= {f + ".data" for f in replaced}
    for src in set_dir.rglob("*"):
        rel = src.relative_to(set_dir).as_posix()
        if src.is_file() and not src.is_symlink() and rel not in replaced and rel not in ("manifest.json", manifest["golden"]):
            link_or_copy(src, partial / rel)
    P, Dv, D = ck["c"]["tower"].patches, ck["c"]["tower"].feature_dim, ck["c"]["text"].dim
    f, q = torch.randn(1, P, Dv), torch.randn(1, D)
    features = torch.tensor(golden["features"]).reshape(1, P, Dv)
    # the golden question's query embedding as this run's students were given it (the engine checks its own against it)
    query = query_embeddings(ck["decoder"], [Prompts(ck).after(golden["query"])[1]], a.question_embedding)
    golden = {**golden, "distilled": [e for e in golden.get("distilled", [])
                                      if e["kind"] not in a.kinds or str(e["tokens"]) in kept.get(e["kind"], {})]}
    entries = [c for c in dec["compressors"] if c["kind"] not in a.kinds]
    for kind in a.kinds:
        graphs, params = dict(kept.get(kind, {})), old[kind].get("params", 0) if kept.get(kind) else 0
        for v in a.tokens:
            s = students[student_key(kind, v)].eval()
            file = f"{folder}/{kind}_V{v}.onnx"
            ins = {**io(features=("batch", P, Dv)), **(io(query_embedding=("batch", D)) if KINDS[kind] else {})}

            class Bound(nn.Module):  # the graph's inputs: a query-agnostic one takes no query
                def __init__(self, m):
                    super().__init__()
                    self.m = m

                def forward(self, features, query_embedding=None):
                    return self.m(features, query_embedding)

            spec = export_graph(Bound(s), (f, q) if KINDS[kind] else (f,), partial / file,
                                {"inputs": ins, "outputs": io(visual_tokens=("batch", v, D))})
            graphs[str(v)] = {"file": file, **spec}
            params = max(params, n_params(s))
            with torch.no_grad():
                tokens = s(features, query if KINDS[kind] else None)
            golden["distilled"].append({"kind": kind, "tokens": v, "visual_tokens": tokens.flatten().tolist(),
                                        **({"query_embedding": query[0].tolist()} if KINDS[kind] else {})})
        run = {"teacher": "full", "data": data["source"], "tokens": list(a.tokens), "steps": state["step"],
               "batch": a.batch, "seconds": round(state["elapsed"], 1),
               "held_out": {str(v): final[student_key(kind, v)] for v in a.tokens},
               "train_kl": {str(v): {"start": round(state["train_kl_start"][student_key(kind, v)], 5),
                                     "end": round(state["train_kl_end"][student_key(kind, v)], 5)} for v in a.tokens},
               "tool": "tools/distill.py"}
        if kept.get(kind):  # the runs that trained the graphs kept, each cut to the Vs it still accounts for
            run["earlier"] = [r for r in (earlier_run(r, kept[kind]) for r in earlier_runs(old[kind])) if r is not None]
        entries.append({"kind": kind, "query_aware": KINDS[kind], "heads": students[student_key(kind, a.tokens[0])].heads,
                        "params": params, "graphs": dict(sorted(graphs.items(), key=lambda g: int(g[0]))),
                        **({"query_embedding": QUESTION_EMBEDDINGS[a.question_embedding]} if KINDS[kind] else {}),
                        "distilled": run})
    manifest = json.loads(json.dumps(manifest))
    manifest["decoders"][0]["compressors"] = entries
    (partial / manifest["golden"]).parent.mkdir(parents=True, exist_ok=True)
    (partial / manifest["golden"]).write_text(json.dumps(golden))
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return "; ".join(f"{k.replace('_V', ' V=')}: agreement {r['agreement']:.3f}, KL {r['kl']:.3f}" + (f", accuracy {r['accuracy']:.3f}" if "accuracy" in r else "")
                     for k, r in final.items())


def earlier_runs(entry: dict) -> list:
    """A distilled kind's runs, newest first: its `distilled` record and the `earlier` ones it carries (--keep)."""
    d = entry.get("distilled")
    if d is None:
        return []
    return [{k: x for k, x in d.items() if k != "earlier"}, *d.get("earlier", [])]


def earlier_run(run: dict, kept: dict):
    """`run` cut to the kept Vs it trained (a record without "tokens", from before --keep, trained all it lists)."""
    vs = [v for v in (run.get("tokens") or [int(v) for v in run.get("held_out", {})]) if str(v) in kept]
    if not vs:
        return None
    return {**run, "tokens": vs, **{f: {str(v): run[f][str(v)] for v in vs if str(v) in run[f]}
                                     for f in ("held_out", "train_kl") if f in run}}


def swap_in(partial: Path, set_dir: Path) -> None:
    """The new set in place of the old: the old moved aside, the new renamed in, the old removed."""
    aside = set_dir.parent / f".{set_dir.name}.replaced-{secrets.token_hex(4)}"
    os.rename(set_dir, aside)
    try:
        os.rename(partial, set_dir)
    except OSError:
        os.rename(aside, set_dir)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def remove_work(work: Path) -> None:
    """The run's own files, and the folder when nothing else is in it (it may be one the user named)."""
    for name in ("data.pt", "train.pt"):
        (work / name).unlink(missing_ok=True)
    try:
        work.rmdir()
    except OSError:
        pass


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    import warnings
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser(prog="distill.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set_dir", type=Path, help="an imported model set (assistant models import)")
    ap.add_argument("--checkpoint", type=Path, required=True, help="the llava-hf checkpoint folder the set was imported from")
    ap.add_argument("--data", default="world", help="'world' (the synthetic world's scenes and questions) or a folder of pictures")
    ap.add_argument("--questions", help="with --data DIR: one question a line (asked of every picture), or JSON lines "
                    "{\"question\": ..., \"image\": NAME, \"answer\": ...} (asked of that picture; an answer needs its image)")
    ap.add_argument("--tokens", default="1,4,16", help="the V to distil, comma-separated (default 1,4,16)")
    ap.add_argument("--question-embedding", choices=list(QUESTION_EMBEDDINGS), default="pass",
                    help="what the compressor is given of the question: pass (the decoder on the question alone, its last "
                         "hidden state: the paper's; one short prefill per question) or mean (its token embeddings' mean)")
    ap.add_argument("--baseline", action="store_true", help="also distil the same compressor without the question (tokenpacker)")
    ap.add_argument("--replace", action="store_true",
                    help="let this run drop graphs of the kinds it trains at a V not in --tokens (a kind is replaced whole)")
    ap.add_argument("--keep", action="store_true",
                    help="keep graphs an earlier distillation made at a V not in --tokens as they are (the manifest "
                         "records each V's run): train one V longer without training the others again")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--scenes", type=int, default=3000, help="world scenes to train on")
    ap.add_argument("--questions-per-scene", type=int, default=3)
    ap.add_argument("--val-scenes", type=int, default=300, help="held-out world scenes (or picture-question pairs) for agreement")
    ap.add_argument("--answer-tokens", type=int, default=8, help="longest teacher answer distilled")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (default: PyTorch's)")
    ap.add_argument("--work", type=Path, help="data cache and checkpoints (default: .SET.distill beside the set); resumed when present")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop training after this long (the set is still written)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--val-every", type=int, default=100)
    ap.add_argument("--save-every", type=int, default=SAVE_EVERY)
    ap.add_argument("--hand-over", type=Path, metavar="FILE",
                    help="leave the finished set in its scratch folder beside SET and write {partial, summary} to FILE, for "
                         "a caller that checks it and puts it in place (`assistant models distill` does)")
    a = ap.parse_args(argv)
    a.kinds = ["quecc"] + (["tokenpacker"] if a.baseline else [])
    scratch.stop_on_signals()
    set_dir = a.set_dir.resolve() if a.set_dir.exists() else a.set_dir
    partial = None
    lock = None
    try:
        if a.device == "cuda":
            fail("--device cuda: distillation runs on the CPU in this build (the tower's features are cached, so the "
                 "per-step work is the frozen decoder's); see docs/REAL_MODELS.md for the measured cost")
        for name, value, lo in (("--steps", a.steps, 1), ("--batch", a.batch, 1), ("--scenes", a.scenes, 1),
                                ("--answer-tokens", a.answer_tokens, 1), ("--val-scenes", a.val_scenes, 1), ("--threads", a.threads, 0)):
            if value < lo:
                fail(f"{name} {value}: at least {lo}")
        if not set_dir.is_dir():
            fail(f"model set not found: {set_dir}")
        manifest = read_set(set_dir)
        lock = os.open(set_dir, os.O_RDONLY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fail(f"another distillation is running into {set_dir}; wait for it to finish")
        if a.threads:
            torch.set_num_threads(a.threads)
        torch.manual_seed(a.seed)
        if a.keep and a.replace:
            fail("--keep and --replace: give one (keep the graphs at other Vs, or drop them)")
        # Without --keep a kind is replaced whole: graphs an earlier run trained at other Vs would go.
        for c in manifest["decoders"][0]["compressors"]:
            if c["kind"] in a.kinds and "distilled" in c and a.keep and KINDS[c["kind"]] \
                    and c.get("query_embedding") != QUESTION_EMBEDDINGS[a.question_embedding]:
                fail(f"--keep: {set_dir}'s {c['kind']} graphs take {c.get('query_embedding')}, this run's "
                     f"{QUESTION_EMBEDDINGS[a.question_embedding]}; give the --question-embedding they were trained with")
            if c["kind"] in a.kinds and "distilled" in c and not a.replace and not a.keep:
                try:
                    wanted = {int(t) for t in a.tokens.split(",") if t.strip()}
                except ValueError:
                    wanted = set()
                dropped = sorted(int(v) for v in c["graphs"] if int(v) not in wanted)
                if dropped:
                    fail(f"{set_dir} has {c['kind']} at V = {', '.join(map(str, dropped))} from an earlier distillation, which "
                         f"--tokens {a.tokens} would drop: give every V to train again, --keep to keep them as they are, or --replace "
                         "to drop them")
        ck = open_checkpoint(a.checkpoint, manifest)
        tower = ck["c"]["tower"]
        a.tokens = parse_tokens(a.tokens, tower.grid)
        if a.data != "world" and not Path(a.data).is_dir():
            fail(f"--data {a.data}: not 'world' and not a folder of pictures")
        if a.data == "world" and manifest.get("world") is None:
            fail(f"{set_dir} was not trained on the world (its manifest records none): give --data DIR --questions FILE")
        if a.data != "world":
            qs = read_questions(Path(a.questions)) if a.questions else fail("--data DIR needs --questions FILE")
            _, names, _ = folder_pictures(Path(a.data), 8, False)  # refuses a folder without a readable picture before any work
            for _, _, image in qs:
                if image is not None and image not in names:
                    fail(f"{a.questions}: \"image\": {json.dumps(image)[:80]} is not a readable picture in {a.data}")
        golden = check_golden(set_dir, manifest, ck)
        work = a.work or set_dir.parent / f".{set_dir.name}.distill"
        work.mkdir(parents=True, exist_ok=True)
        prompts = Prompts(ck)
        checkpoint.stage(f"distilling {', '.join(a.kinds)} at V = {', '.join(map(str, a.tokens))} for {manifest['name']} "
                         f"(stages: the tower's features and the teacher's answers, cached in {work}; training; the graphs)")
        t0 = time.time()
        data = prepare_data(a, ck, prompts, work)
        src = data["source"]
        print(f"{data['n_train']} training and {len(data['picture']) - data['n_train']} held-out questions; teacher answers "
              f"up to {data['teacher'].shape[1]} tokens" + (f", teacher accuracy {src['teacher_accuracy']:.3f}" if "teacher_accuracy" in src else "")
              + f" ({time.time() - t0:.1f} s)", flush=True)
        Dv, D = tower.feature_dim, ck["c"]["text"].dim
        heads = attention_heads(Dv)
        torch.manual_seed(a.seed)
        students = {student_key(k, v): RegionQueCC(Dv, D, tower.grid, math.isqrt(v), heads, KINDS[k], ck["projector"],
                                                   ck["c"]["projector_act"])
                    for k in a.kinds for v in a.tokens}
        state = train(a, ck, prompts, data, students, work)
        final = evaluate(students, ck, prompts, data, torch.arange(data["n_train"], len(data["picture"])), a.batch)
        state["train_kl_end"] = {k: r["kl"] for k, r in evaluate(students, ck, prompts, data, fixed_sample(data["n_train"]), a.batch).items()}
        partial = set_dir.parent / f".{set_dir.name}.partial-{secrets.token_hex(4)}"
        partial.mkdir()
        summary = write_set(set_dir, partial, manifest, golden, students, ck, state, data, a, final)
        summary = f"distilled into {set_dir} in {state['elapsed'] / 60:.1f} min of training, {state['step']} steps: {summary}"
        if a.hand_over is not None:
            a.hand_over.write_text(json.dumps({"partial": str(partial), "summary": summary, "work": str(work)}))
            partial = None
        else:
            swap_in(partial, set_dir)
            partial = None
            remove_work(work)
            print(summary)
        return 0
    except DistillError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory while distilling; try a smaller --batch or fewer --scenes", file=sys.stderr)
        return 2
    except BaseException as e:
        if (code := scratch.signal_exit(e)) is not None:
            return code
        if not isinstance(e, Exception) or os.environ.get("ASSISTANT_DEBUG") == "1":
            raise
        print(f"error: the distillation failed ({type(e).__name__}: {checkpoint.first_line(e)}); the set is unchanged "
              "(ASSISTANT_DEBUG=1 shows where)", file=sys.stderr)
        return 2
    finally:
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)
        if lock is not None:
            os.close(lock)


if __name__ == "__main__":
    sys.exit(main())
