"""Trains the embedded default on the synthetic world (tools/world.py), on CPU or, if asked, CUDA.

  stage 1  /usr/bin/python3 tools/train.py vision --out ckpt/vision.pt --steps 3000
           the vision encoder learns per-patch targets on all patch tokens (our stand-in for CLIP):
           colour under each patch centre, and for the patch holding an object's centre that object's
           colour, shape, size and sub-patch offset, plus the patch's row and column.
  stage 2  /usr/bin/python3 tools/train.py vlm --vision ckpt/vision.pt --decoder small --out ckpt/small.pt
           the vision encoder is frozen; QueCC (every V at once: each step draws one V) and a Qwen2-style
           decoder learn to answer world questions. Prompt: [query][vision_start V tokens vision_end][answer].

Fixed seeds; a checkpoint is written every --save-every steps and at the end, and a run resumes from
--out when it exists. --max-minutes stops a stage early (checkpointed) so a run fits a time budget.
"""
import argparse
import contextlib
import json
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import bpe_tokenizer
import world
import world_data
from decoder import Decoder, DecoderConfig
from quecc import QueCC, QueCCConfig
from vision_encoder import VisionConfig, VisionEncoder

VISION = VisionConfig(image_size=64, patch_size=8, dim=64, layers=4, heads=4, multi_layers=[2, 3, 4])
DECODERS = {
    "tiny": DecoderConfig(dim=32, layers=2, heads=2, kv_heads=1, intermediate=64),  # the scaling grid's smallest
    "small": DecoderConfig(dim=64, layers=2, heads=4, kv_heads=2, intermediate=176),
    "medium": DecoderConfig(dim=128, layers=3, heads=4, kv_heads=2, intermediate=344),
    "large": DecoderConfig(dim=192, layers=5, heads=6, kv_heads=2, intermediate=512),
}


def world_tokenizer() -> tuple:
    """The world's BPE: trained on world questions, with every answer seen often enough to be one token."""
    vocab, merges = bpe_tokenizer.train(world.corpus() + world.ANSWERS * 200, 1024)
    return vocab, merges


class Progress:
    """One line per report: step, rate, ETA and the given metrics; says how long the stage took at the end."""

    def __init__(self, total: int, start: int, every: int):
        self.total, self.start, self.every, self.t0 = total, start, every, time.time()

    def report(self, step: int, force: bool = False, **metrics) -> None:
        if step % self.every and step != self.total and not force:
            return
        done = step - self.start
        rate = done / max(time.time() - self.t0, 1e-9)
        eta = (self.total - step) / max(rate, 1e-9)
        bar = "#" * int(30 * step / self.total)
        text = " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
        print(f"[{bar:<30}] {step}/{self.total} {rate:.1f} it/s eta {eta / 60:.1f} min  {text}", flush=True)


def lr_at(step: int, frac: float, peak: float, warmup: int = 200) -> float:
    """Linear warm-up, then cosine decay to 10% over the run's progress `frac` in [0, 1]."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def progress(step: int, steps: int, minutes: float, max_minutes: float) -> float:
    """How far a run is: by steps, or by time when --max-minutes is the tighter budget (the schedule then
    follows the clock, so a time-budgeted run still ends with a decayed learning rate)."""
    return max(step / steps, minutes / max_minutes)


def save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a killed run never leaves a half-written checkpoint


# ---------------- stage 1 ----------------

class PatchHeads(nn.Module):
    def __init__(self, dim: int, grid: int):
        super().__init__()
        n_col = len(world.COLORS) + 1
        self.colour, self.obj_colour = nn.Linear(dim, n_col), nn.Linear(dim, n_col)
        self.obj_shape, self.obj_size = nn.Linear(dim, len(world.SHAPES) + 1), nn.Linear(dim, len(world.SIZES) + 1)
        self.offset, self.row, self.col = nn.Linear(dim, 2), nn.Linear(dim, grid), nn.Linear(dim, grid)

    def loss(self, f: torch.Tensor, t: dict, grid: int):  # f (B, P, Dv)
        B, P, _ = f.shape
        idx = torch.arange(P, device=f.device)
        row, col = (idx // grid).expand(B, P), (idx % grid).expand(B, P)
        ce = lambda head, y: F.cross_entropy(head(f).flatten(0, 1), y.flatten())
        has = t["obj_colour"] > 0
        off = F.mse_loss(self.offset(f)[has], t["offset"][has]) if has.any() else f.sum() * 0
        loss = (ce(self.colour, t["colour"]) + ce(self.obj_colour, t["obj_colour"]) + ce(self.obj_shape, t["obj_shape"])
                + ce(self.obj_size, t["obj_size"]) + off + ce(self.row, row) + ce(self.col, col))
        with torch.no_grad():
            pred = self.obj_colour(f).argmax(-1)
            obj_acc = (pred[has] == t["obj_colour"][has]).float().mean().item() if has.any() else 0.0
            shape_acc = (self.obj_shape(f).argmax(-1)[has] == t["obj_shape"][has]).float().mean().item() if has.any() else 0.0
        return loss, obj_acc, shape_acc


def setup(a) -> None:
    torch.manual_seed(a.seed)
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def train_vision(a) -> None:
    setup(a)
    dev = torch.device(a.device)
    cfg = VISION
    enc, heads = VisionEncoder(cfg).to(dev), PatchHeads(cfg.dim, cfg.grid).to(dev)
    params = list(enc.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    step, elapsed = 0, 0.0
    if a.out.exists():
        ck = torch.load(a.out, map_location=dev, weights_only=False)
        enc.load_state_dict(ck["model"]), heads.load_state_dict(ck["heads"]), opt.load_state_dict(ck["opt"])
        step, elapsed = ck["step"], ck["elapsed"]
        print(f"resuming {a.out} at step {step}")
    data_source = world_data.Batches("train", a.batch, cfg.image_size, cfg.grid, seed=a.seed + step, workers=a.workers)
    data = iter(data_source)
    prog, t0 = Progress(a.steps, step, a.log_every), time.time()

    def state():
        return {"stage": "vision", "config": asdict(cfg), "model": enc.state_dict(), "heads": heads.state_dict(),
                "opt": opt.state_dict(), "step": step, "elapsed": elapsed + time.time() - t0,
                "args": {k: str(v) for k, v in vars(a).items()}}

    minutes = lambda: (elapsed + time.time() - t0) / 60
    while progress(step, a.steps, minutes(), a.max_minutes) < 1:
        images, targets, _ = next(data)
        x = world_data.to_pixels(images, cfg.mean, cfg.std, dev)
        t = world_data.stack_targets(targets, dev)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, progress(step, a.steps, minutes(), a.max_minutes), a.lr)
        loss, obj_acc, shape_acc = heads.loss(enc(x)[0], t, cfg.grid)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        prog.report(step, loss=loss.item(), obj_colour_acc=obj_acc, obj_shape_acc=shape_acc)
        if step % a.save_every == 0:
            save(a.out, state())
    save(a.out, state())
    data_source.close()
    print(f"vision stage: {step} steps, {state()['elapsed'] / 60:.1f} min on {a.device}")


# ---------------- stage 2 ----------------

def named_mse(pred, named):
    """Mean squared error of predicted (x1, y1, x2, y2) over the positions a question names.
    pred (B, 4); named (B, 6) = x1, y1, x2, y2, given1, given2 (world_data.named_positions)."""
    given = named[:, 4:].repeat_interleave(2, 1)  # (B, 4)
    err = (pred - named[:, :4]) ** 2 * given
    return err.sum() / given.sum().clamp(min=1)


class VLM(nn.Module):
    """Frozen vision encoder + QueCC (all V) + decoder, trained on [query][visual][answer]."""

    def __init__(self, vision: VisionEncoder, qcfg: QueCCConfig, dcfg: DecoderConfig, special: dict, query_aware=True,
                 query_grad=False):
        super().__init__()
        # query_grad: let the compressor's loss reach the decoder through the query embedding (--query-grad),
        # a departure from the paper, which stops that gradient. Inference is the same graph either way.
        self.query_grad = query_grad
        self.vision = vision.eval().requires_grad_(False)
        self.quecc = QueCC(qcfg, query_aware=query_aware)
        self.decoder = Decoder(dcfg)
        self.special = special
        self.aux = {}
        self.position_head = nn.Linear(dcfg.dim, 2)  # training only (--position-loss); never exported
        self.name_head = nn.Linear(dcfg.dim, 4)  # training only (--name-loss); never exported

    def position_loss(self, vis, centres, has, k: int):
        """Asks each visual token to keep where the objects of its k x k region are: the mean centre of the
        objects centred in the region, for regions that hold one. vis (B, V, D); centres (B, G, G, 2)."""
        B, G = has.shape[0], has.shape[1]
        g = G // k
        has_r = has.reshape(B, g, k, g, k).permute(0, 1, 3, 2, 4).reshape(B, g * g, k * k).float()  # (B, V, k*k)
        cen_r = centres.reshape(B, g, k, g, k, 2).permute(0, 1, 3, 2, 4, 5).reshape(B, g * g, k * k, 2)
        count = has_r.sum(-1)  # (B, V)
        target = (cen_r * has_r[..., None]).sum(2) / count.clamp(min=1)[..., None]  # (B, V, 2)
        sel = count > 0
        if not sel.any():
            return vis.sum() * 0
        return F.mse_loss(self.position_head(vis)[sel], target[sel])

    def name_loss(self, hidden, named):
        """Asks the answer position to say where the objects the question names are: a stepping stone to
        relational answers, which without it stayed at chance (docs/WORLD.md). hidden (B, D)."""
        return named_mse(self.name_head(hidden), named)

    def forward(self, pixels, q_ids, q_mask, ans_ids, k: int, positions=None, position_weight: float = 0.0,
                named=None, name_weight: float = 0.0):
        # pixels (B, 3, S, S), or the frozen encoder's (features, features_multi) for them (--cache-features);
        # q_ids/q_mask (B, Tq) left-padded; ans_ids (B,)
        dec, B, Tq = self.decoder, q_ids.shape[0], q_ids.shape[1]
        if isinstance(pixels, tuple):
            f, fm = pixels
        else:
            with torch.no_grad():
                f, fm = self.vision(pixels)  # (B, P, Dv), (B, P, Dm)
        emb_q = dec.embed_tokens(q_ids)  # (B, Tq, D)
        past = [p.to(q_ids.device) for p in dec.empty_past(B)]
        pos_q = (q_mask.cumsum(1) - 1).clamp(min=0)
        # QUECC.md: no gradient flows into the language model through the query embedding (unless --query-grad)
        with contextlib.nullcontext() if self.query_grad else torch.no_grad():
            query_embedding = dec(emb_q, q_mask, pos_q, *past)[1][:, -1]  # (B, D): last query token
        vis = self.quecc(f, fm, query_embedding, k)  # (B, V, D)
        V = vis.shape[1]
        sp = lambda name: dec.embed_tokens(torch.full((B, 1), self.special[name], device=q_ids.device))
        x = torch.cat([emb_q, sp("<|vision_start|>"), vis, sp("<|vision_end|>"), dec.embed_tokens(ans_ids)[:, None]], 1)
        mask = torch.cat([q_mask, torch.ones(B, V + 3, dtype=q_mask.dtype, device=q_mask.device)], 1)
        out = dec(x, mask, (mask.cumsum(1) - 1).clamp(min=0), *past)
        logits = out[0]  # (B, Tq+V+3, vocab)
        at_answer, at_end = logits[:, Tq + V + 1], logits[:, Tq + V + 2]
        end = torch.full_like(ans_ids, self.special["<|im_end|>"])
        loss = F.cross_entropy(at_answer, ans_ids) + F.cross_entropy(at_end, end)
        self.aux = {}  # the auxiliary losses of this call, unweighted, for the log
        if position_weight > 0 and positions is not None:
            aux = self.position_loss(vis, positions[0], positions[1], k)
            loss, self.aux["pos_loss"] = loss + position_weight * aux, aux.detach()
        if name_weight > 0 and named is not None:
            aux = self.name_loss(out[1][:, Tq + V + 1], named)
            loss, self.aux["name_loss"] = loss + name_weight * aux, aux.detach()
        return loss, at_answer.argmax(-1) == ans_ids


_ENCODED = {}


def cached_encode(tok, text: str) -> list:
    if text not in _ENCODED:  # world questions repeat a lot: encode each text once
        _ENCODED[text] = tok.encode(text)
    return _ENCODED[text]


def encode_questions(tok, qs, dev):
    """Left-pads [im_start] + query ids; returns ids, mask, answer ids, families."""
    start = tok.special["<|im_start|>"]
    rows = [([start] + cached_encode(tok, t), cached_encode(tok, ans), fam) for scene_qs in qs for t, ans, fam in scene_qs]
    for _, a, _ in rows:
        assert len(a) == 1, "every answer must be one token"
    T = max(len(r[0]) for r in rows)
    ids = torch.zeros(len(rows), T, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for i, (q, _, _) in enumerate(rows):
        ids[i, T - len(q):], mask[i, T - len(q):] = torch.tensor(q), 1
    return ids.to(dev), mask.to(dev), torch.tensor([r[1][0] for r in rows], device=dev), [r[2] for r in rows]


def train_vlm(a) -> None:
    setup(a)
    dev = torch.device(a.device)
    vck = torch.load(a.vision, map_location="cpu", weights_only=False)
    vcfg = VisionConfig(**vck["config"])
    vision = VisionEncoder(vcfg)
    vision.load_state_dict(vck["model"])
    vocab, merges = world_tokenizer()
    tok = bpe_tokenizer.BpeTokenizer(vocab, merges)
    dcfg = DecoderConfig(**{**asdict(DECODERS[a.decoder]), "vocab_size": len(vocab) + len(bpe_tokenizer.SPECIAL_TOKENS)})
    qcfg = QueCCConfig(vision_dim=vcfg.dim, multi_dim=vcfg.multi_dim, llm_dim=dcfg.dim, grid=vcfg.grid)
    model = VLM(vision, qcfg, dcfg, tok.special, query_aware=a.compressor == "quecc", query_grad=a.query_grad).to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    step, elapsed = 0, 0.0

    def load_heads(ck: dict) -> None:  # the training-only heads, where the checkpoint has them
        for head in ("position_head", "name_head"):
            if head in ck:
                getattr(model, head).load_state_dict(ck[head])

    if a.out.exists():
        ck = torch.load(a.out, map_location=dev, weights_only=False)
        model.quecc.load_state_dict(ck["quecc"]), model.decoder.load_state_dict(ck["decoder"]), opt.load_state_dict(ck["opt"])
        load_heads(ck)
        step, elapsed = ck["step"], ck["elapsed"]
        print(f"resuming {a.out} at step {step}")
    elif a.init:
        ck = torch.load(a.init, map_location=dev, weights_only=False)
        assert all(torch.equal(v.cpu(), ck["vision"][k].cpu()) for k, v in vck["model"].items()), "--init was trained on another vision encoder"
        model.quecc.load_state_dict(ck["quecc"]), model.decoder.load_state_dict(ck["decoder"])
        load_heads(ck)
        print(f"starting from the weights of {a.init} (step {ck['step']}, {ck['elapsed'] / 60:.1f} min)")
    kernels = [k for k in qcfg.kernels() if a.tokens is None or qcfg.tokens_for(k) in a.tokens]
    scenes = max(a.batch // a.questions, 1)
    if a.pregen:
        data_source = world_data.Pregenerated(a.pregen, a.questions, vcfg.image_size, vcfg.grid, a.workers, a.seed + step,
                                              lambda qs: encode_questions(tok, qs, dev), dev, a.batch, a.hard_weight)
    else:
        data_source = world_data.Batches("train", scenes, vcfg.image_size, vcfg.grid, questions=a.questions,
                                         seed=a.seed + step, workers=a.workers)
    if a.pregen and a.cache_features:
        t_cache = time.time()
        with torch.no_grad():
            data_source.cache_features(lambda images: model.vision(world_data.to_pixels(images, vcfg.mean, vcfg.std, dev)))
        print(f"cached the frozen encoder's features of {a.pregen} scenes in {time.time() - t_cache:.1f}s", flush=True)
    data = iter(data_source)
    val = world_data.Batches("val", 1, vcfg.image_size, vcfg.grid, questions=1, workers=1)
    val_images, _, val_qs = val.fixed(range(world.SPLITS["val"][0], world.SPLITS["val"][0] + a.val_scenes))
    val_x = world_data.to_pixels(val_images, vcfg.mean, vcfg.std, dev)
    val_ids, val_mask, val_ans, val_fams = encode_questions(tok, val_qs, dev)
    prog, t0 = Progress(a.steps, step, a.log_every), time.time()

    def state():
        return {"stage": "vlm", "vision_config": asdict(vcfg), "vision": vck["model"], "decoder_name": a.decoder,
                "decoder_config": asdict(dcfg), "quecc_config": asdict(qcfg), "compressor": a.compressor,
                "quecc": model.quecc.state_dict(), "decoder": model.decoder.state_dict(), "opt": opt.state_dict(),
                "position_head": model.position_head.state_dict(), "name_head": model.name_head.state_dict(),
                "vocab": vocab, "merges": merges, "step": step, "elapsed": elapsed + time.time() - t0,
                "tokens": [qcfg.tokens_for(k) for k in kernels], "args": {k: str(v) for k, v in vars(a).items()}}

    family_sel = {fam: torch.tensor([f == fam for f in val_fams], device=dev) for fam in world.FAMILIES}

    def validate(per_family: bool = False) -> dict:
        model.eval()
        accs, oks = {}, []
        with torch.no_grad():
            for k in kernels:
                ok = torch.cat([model(val_x[i:i + 256], val_ids[i:i + 256], val_mask[i:i + 256], val_ans[i:i + 256], k)[1]
                                for i in range(0, len(val_ans), 256)])
                oks.append(ok)
                accs[f"val_V{qcfg.tokens_for(k)}"] = ok.float().mean().item()
                if per_family:
                    for fam, sel in family_sel.items():
                        accs[f"val_V{qcfg.tokens_for(k)}_{fam}"] = round(ok[sel].float().mean().item(), 4)
        if not per_family:  # mid-run: each family over every V, to watch the hard ones move
            ok = torch.stack(oks)  # (kernels, questions)
            for fam, sel in family_sel.items():
                accs[f"val_{fam[:4]}"] = ok[:, sel].float().mean().item()
        model.train()
        model.vision.eval()
        return accs

    model.train()
    model.vision.eval()
    minutes = lambda: (elapsed + time.time() - t0) / 60
    while progress(step, a.steps, minutes(), a.max_minutes) < 1:
        positions = named = None
        if a.pregen:
            images, ids, mask, ans, positions, named = next(data)
            x = images if isinstance(images, tuple) else world_data.to_pixels(images, vcfg.mean, vcfg.std, dev)
        else:
            images, _, qs = next(data)
            x = world_data.to_pixels(images, vcfg.mean, vcfg.std, dev).repeat_interleave(a.questions, 0)
            ids, mask, ans, _ = encode_questions(tok, qs, dev)
        k = kernels[step % len(kernels)]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, progress(step, a.steps, minutes(), a.max_minutes), a.lr)
        loss, ok = model(x, ids, mask, ans, k, positions, a.position_loss, named, a.name_loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        metrics = {"loss": loss.item(), "acc": ok.float().mean().item(), **{k: v.item() for k, v in model.aux.items()}}
        validating = step % a.val_every == 0
        if validating:
            metrics.update(validate())
        prog.report(step, force=validating, **metrics)
        if step % a.save_every == 0:
            save(a.out, state())
    data_source.close()
    final = validate(per_family=True)
    save(a.out, {**state(), "val": final})
    # Weights only (no optimiser state): what tools/export.py reads, a third of the size.
    save(a.out.with_suffix(".weights.pt"), {k: v for k, v in {**state(), "val": final}.items() if k != "opt"})
    print(f"vlm stage ({a.decoder}, {a.compressor}): {step} steps, {state()['elapsed'] / 60:.1f} min on {a.device}; "
          + json.dumps(final))


def parser() -> argparse.ArgumentParser:
    """One subcommand per stage, each with only the flags that stage reads."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    stages = ap.add_subparsers(dest="stage", required=True, metavar="{vision,vlm}")

    def common(p: argparse.ArgumentParser, steps: int, lr: float) -> None:
        p.add_argument("--out", type=Path, required=True, help="checkpoint to write (resumed if it exists)")
        p.add_argument("--steps", type=int, default=steps)
        p.add_argument("--batch", type=int, default=128)
        p.add_argument("--lr", type=float, default=lr)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="cpu")
        p.add_argument("--workers", type=int, default=2)
        p.add_argument("--max-minutes", type=float, default=1e9, help="time budget: the run ends (decayed) within it")
        p.add_argument("--save-every", type=int, default=500)
        p.add_argument("--log-every", type=int, default=50)
        p.add_argument("--val-every", type=int, default=500)
        p.add_argument("--val-scenes", type=int, default=1000)

    vision = stages.add_parser("vision", help="stage 1: the vision encoder on patch targets")
    common(vision, 3000, 2e-3)

    vlm = stages.add_parser("vlm", help="stage 2 and after: compressor and decoder on a frozen encoder")
    common(vlm, 3000, 2e-3)
    vlm.add_argument("--vision", type=Path, required=True, help="stage-1 checkpoint")
    vlm.add_argument("--decoder", choices=sorted(DECODERS), default="small")
    vlm.add_argument("--compressor", choices=["quecc", "tokenpacker"], default="quecc")
    vlm.add_argument("--tokens", type=int, nargs="*", default=None, help="train only these V (default: every V)")
    vlm.add_argument("--init", type=Path, help="start from these weights (a fresh optimiser)")
    vlm.add_argument("--questions", type=int, default=2, help="questions per scene in a batch")
    vlm.add_argument("--pregen", type=int, default=0, help="generate this many scenes up front and sample from them")
    vlm.add_argument("--cache-features", action="store_true",
                     help="with --pregen: run the frozen encoder once per scene up front and train on its features "
                          "(the same numbers, much less work per step; memory: scenes x patches x (dim + multi_dim) floats)")
    vlm.add_argument("--hard-weight", type=float, default=1.0, help="with --pregen: sampling weight of spatial and nearest questions")
    vlm.add_argument("--position-loss", type=float, default=0.0,
                     help="with --pregen: weight of an auxiliary loss asking visual tokens to keep object positions")
    vlm.add_argument("--query-grad", action="store_true",
                     help="let gradient reach the decoder through QueCC's query embedding (the paper stops it; same exported graphs)")
    vlm.add_argument("--name-loss", type=float, default=0.0,
                     help="with --pregen: weight of an auxiliary loss asking the answer position where the question's named objects are "
                          "(what makes spatial questions learnable, docs/WORLD.md)")
    return ap


# Flags that only act on pregenerated scenes, with the value that means "not asked for".
NEEDS_PREGEN = {"cache_features": False, "hard_weight": 1.0, "position_loss": 0.0, "name_loss": 0.0}


def parse(argv=None) -> argparse.Namespace:
    """The stage's flags; a flag that would do nothing in this combination is refused, not ignored."""
    ap = parser()
    a = ap.parse_args(argv)
    if a.stage == "vlm" and not a.pregen:
        idle = [f"--{k.replace('_', '-')}" for k, off in NEEDS_PREGEN.items() if getattr(a, k) != off]
        if idle:
            ap.error(f"{', '.join(idle)} {'acts' if len(idle) == 1 else 'act'} only on pregenerated scenes: add --pregen N")
    if a.stage == "vlm" and a.pregen < 0:
        ap.error(f"--pregen must be >= 0, got {a.pregen}")
    return a


def main(argv=None) -> int:
    a = parse(argv)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    (train_vision if a.stage == "vision" else train_vlm)(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
