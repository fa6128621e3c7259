"""Diagnostic: is an object's position linearly readable from what the decoder sees?

For objects in train scenes, fits a linear map from (a) the encoder's features_multi at the object's centre
patch and (b) the QueCC visual token for that patch (V = 64, one token per patch) to the object's (x, y),
and prints the held-out R^2 of each. High (a) and low (b) means the compressor throws position away.
  /usr/bin/python3 tools/probe_positions.py .cache/run2/large.weights.pt
"""
import sys

import numpy as np
import torch

import checkpoints
import world
import world_data


def r2(x: list, y: list) -> np.ndarray:
    x = np.c_[np.array(x), np.ones(len(x))]
    y = np.array(y)
    half = len(x) // 2
    w, *_ = np.linalg.lstsq(x[:half], y[:half], rcond=None)
    pred = x[half:] @ w
    return 1 - ((pred - y[half:]) ** 2).sum(0) / ((y[half:] - y[half:].mean(0)) ** 2).sum(0)


@torch.no_grad()
def main() -> int:
    m = checkpoints.load_vlm(sys.argv[1])
    vcfg, enc, qcfg, comp = m.vision_config, m.vision, m.quecc_config, m.compressor
    feats, toks, pos = [], [], []
    for seed in range(1500):
        objs = world.scene(seed)
        f, fm = enc(world_data.to_pixels(world.render(objs, vcfg.image_size)[None], vcfg.mean, vcfg.std, "cpu"))
        tokens = comp(f, fm, torch.zeros(1, qcfg.llm_dim), 1)[0]  # k = 1: one token per patch, query-independent
        for o in objs:
            p = min(int(o.y * vcfg.grid), vcfg.grid - 1) * vcfg.grid + min(int(o.x * vcfg.grid), vcfg.grid - 1)
            feats.append(fm[0, p].numpy())
            toks.append(tokens[p].numpy())
            pos.append([o.x, o.y])
    print(f"{len(pos)} objects; held-out R^2 of (x, y):")
    print(f"  from features_multi at the object's patch: {np.round(r2(feats, pos), 3)}")
    print(f"  from the V=64 visual token for that patch: {np.round(r2(toks, pos), 3)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
