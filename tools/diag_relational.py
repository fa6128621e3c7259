"""Can a decoder learn the world's relational families when the objects are handed to it perfectly?

A diagnostic for issue 3 (spatial questions stay at chance): the vision encoder and QueCC are replaced by
one ground-truth token per object (one-hot colour, shape and size, and its exact x, y, through a learned
linear map), placed where the visual tokens go in the same prompt ([query][vision_start objects
vision_end] -> answer), and the same decoder is trained on the chosen question families only. If it learns
them, the bottleneck is what the visual tokens carry; if it does not, it is the decoder or its training.

  /usr/bin/python3 tools/diag_relational.py --decoder small --families spatial --steps 3000
"""
import argparse
import sys
import time
from dataclasses import asdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import bpe_tokenizer
import world
import world_data
from decoder import Decoder, DecoderConfig
from train import DECODERS, encode_questions, lr_at, named_mse, world_tokenizer

FEATURES = len(world.COLORS) + len(world.SHAPES) + len(world.SIZES) + 2


def object_rows(objs) -> np.ndarray:
    """(MAX_OBJECTS, FEATURES) one row per object, zero rows after the last."""
    rows = np.zeros((world.MAX_OBJECTS, FEATURES), dtype=np.float32)
    for i, o in enumerate(objs):
        rows[i, world.COLORS.index(o.color)] = 1
        rows[i, len(world.COLORS) + world.SHAPES.index(o.shape)] = 1
        rows[i, len(world.COLORS) + len(world.SHAPES) + world.SIZES.index(o.size)] = 1
        rows[i, -2:] = (o.x, o.y)
    return rows


def patch_rows(objs, grid: int = 8) -> np.ndarray:
    """(G*G, FEATURES) one row per patch, as the encoder's stage-1 targets describe a scene: the colour of the
    object a patch reaches, that object's shape and size only at the patch holding its centre, and the object's
    exact centre at every patch it reaches (world_data.object_centres)."""
    centres, has = world_data.object_centres(objs, grid)
    rows = np.zeros((grid, grid, FEATURES), dtype=np.float32)
    for o in objs:
        reached = has & (centres[..., 0] == np.float32(o.x)) & (centres[..., 1] == np.float32(o.y))
        rows[reached, world.COLORS.index(o.color)] = 1
        rows[reached, -2:] = (o.x, o.y)
        col, row = min(int(o.x * grid), grid - 1), min(int(o.y * grid), grid - 1)
        rows[row, col, len(world.COLORS) + world.SHAPES.index(o.shape)] = 1
        rows[row, col, len(world.COLORS) + len(world.SHAPES) + world.SIZES.index(o.size)] = 1
    return rows.reshape(grid * grid, FEATURES)


def dataset(lo: int, count: int, families: list, tok, dev, patches: bool = False):
    objects, present, qs, named = [], [], [], []
    seed = lo
    while len(qs) < count:
        objs = world.scene(seed)
        for fam in families:
            got = world.questions(seed, 1, fam)
            if got:
                q, t, a = got[0]
                objects.append(patch_rows(objs) if patches else object_rows(objs))
                named.append(world_data.named_positions(objs, q))
                present.append([True] * 64 if patches else [i < len(objs) for i in range(world.MAX_OBJECTS)])
                qs.append([(t, a, fam)])
        seed += 1
    ids, mask, ans, fams = encode_questions(tok, qs, dev)
    return (torch.tensor(np.stack(objects), device=dev), torch.tensor(present, device=dev), ids, mask, ans,
            torch.tensor(named, device=dev))


class ObjectVLM(nn.Module):
    def __init__(self, dcfg: DecoderConfig, special: dict):
        super().__init__()
        self.decoder, self.special = Decoder(dcfg), special
        self.project = nn.Sequential(nn.Linear(FEATURES, dcfg.dim), nn.GELU(), nn.Linear(dcfg.dim, dcfg.dim))
        self.name_head = nn.Linear(dcfg.dim, 4)

    def forward(self, objects, present, ids, mask, ans, named, name_weight: float = 0.0):
        dec, B, Tq = self.decoder, ids.shape[0], ids.shape[1]
        vis = self.project(objects)  # (B, O, D)
        O = vis.shape[1]
        sp = lambda name: dec.embed_tokens(torch.full((B, 1), self.special[name], device=ids.device))
        x = torch.cat([dec.embed_tokens(ids), sp("<|vision_start|>"), vis, sp("<|vision_end|>")], 1)
        m = torch.cat([mask, torch.ones(B, 1, dtype=mask.dtype, device=ids.device), present.long(),
                       torch.ones(B, 1, dtype=mask.dtype, device=ids.device)], 1)
        past = [p.to(ids.device) for p in dec.empty_past(B)]
        out = dec(x, m, (m.cumsum(1) - 1).clamp(min=0), *past)
        logits, hidden = out[0][:, Tq + O + 1], out[1][:, Tq + O + 1]  # (B, vocab), (B, D)
        loss = F.cross_entropy(logits, ans)
        if name_weight > 0:  # the answer position must also say where the named objects are
            loss = loss + name_weight * named_mse(self.name_head(hidden), named)
        return loss, logits.argmax(-1) == ans


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decoder", choices=sorted(DECODERS), default="small")
    ap.add_argument("--families", nargs="+", default=["spatial"], choices=world.FAMILIES)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--train", type=int, default=30000, help="training questions (pre-generated)")
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--log-every", type=int, default=250)
    ap.add_argument("--patches", action="store_true", help="one token per patch (8 x 8) instead of one per object")
    ap.add_argument("--name-loss", type=float, default=0.0, help="weight of the loss asking where the named objects are")
    a = ap.parse_args()
    torch.manual_seed(0)
    dev = torch.device("cpu")
    vocab, merges = world_tokenizer()
    tok = bpe_tokenizer.BpeTokenizer(vocab, merges)
    dcfg = DecoderConfig(**{**asdict(DECODERS[a.decoder]), "vocab_size": len(vocab) + len(bpe_tokenizer.SPECIAL_TOKENS)})
    train = dataset(world.SPLITS["train"][0], a.train, a.families, tok, dev, a.patches)
    val = dataset(world.SPLITS["val"][0], a.val, a.families, tok, dev, a.patches)
    model = ObjectVLM(dcfg, tok.special)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    t0 = time.time()
    for step in range(1, a.steps + 1):
        idx = torch.randint(0, len(train[0]), (a.batch,))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, step / a.steps, a.lr)
        loss, ok = model(*(t[idx] for t in train), name_weight=a.name_loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % a.log_every == 0 or step == a.steps:
            with torch.no_grad():
                model.eval()
                val_ok = model(*val)[1].float().mean().item()
                model.train()
            print(f"step {step} loss {loss.item():.3f} train_acc {ok.float().mean().item():.3f} val_acc {val_ok:.3f} "
                  f"({time.time() - t0:.0f}s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
