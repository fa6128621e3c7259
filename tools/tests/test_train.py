"""Training shortcuts that must not change what is learned: the cached encoder features (--cache-features)."""
import numpy as np
import torch

import train
import world_data
from decoder import DecoderConfig
from quecc import QueCCConfig
from vision_encoder import VisionConfig, VisionEncoder

SPECIAL = {"<|vision_start|>": 1, "<|vision_end|>": 2, "<|im_end|>": 3}


def small_vlm() -> train.VLM:
    torch.manual_seed(0)
    vcfg = VisionConfig()
    dcfg = DecoderConfig(vocab_size=40)
    qcfg = QueCCConfig(vision_dim=vcfg.dim, multi_dim=vcfg.multi_dim, llm_dim=dcfg.dim, grid=vcfg.grid)
    return train.VLM(VisionEncoder(vcfg), qcfg, dcfg, SPECIAL).eval()


def test_loss_from_cached_features_equals_loss_from_pixels():
    model = small_vlm()
    cfg = model.vision  # frozen, eval mode
    pixels = torch.randn(6, 3, 64, 64)
    ids = torch.randint(4, 40, (6, 7))
    mask = torch.ones(6, 7, dtype=torch.long)
    mask[0, :3] = 0  # left padding, as batches have
    ans = torch.randint(4, 40, (6,))
    with torch.no_grad():
        features = cfg(pixels)
    for k in (1, 2, 8):
        loss_pixels, ok_pixels = model(pixels, ids, mask, ans, k)
        loss_cached, ok_cached = model(features, ids, mask, ans, k)
        assert torch.allclose(loss_pixels, loss_cached, atol=1e-6)
        assert torch.equal(ok_pixels, ok_cached)


def test_pregenerated_batches_carry_the_cached_features_of_their_scenes():
    model = small_vlm()
    vcfg = VisionConfig()
    encode = lambda qs: (torch.zeros(sum(len(q) for q in qs), 5, dtype=torch.long),) * 2 + (
        torch.zeros(sum(len(q) for q in qs), dtype=torch.long), [f for q in qs for _, _, f in q])
    data = world_data.Pregenerated(24, 2, vcfg.image_size, vcfg.grid, 1, 0, encode, "cpu", 8, 1.0)
    with torch.no_grad():
        data.cache_features(lambda images: model.vision(world_data.to_pixels(images, vcfg.mean, vcfg.std, "cpu")))
        (f, fm), *_ = next(iter(data))
        scene = data.scene_of[torch.multinomial(data.weights, 8, replacement=True, generator=torch.Generator().manual_seed(0))]
        direct = model.vision(world_data.to_pixels(data.images[scene], vcfg.mean, vcfg.std, "cpu"))
    assert f.shape == (8, vcfg.patches, vcfg.dim) and fm.shape == (8, vcfg.patches, vcfg.multi_dim)
    assert np.allclose(f.numpy(), direct[0].numpy(), atol=1e-5) and np.allclose(fm.numpy(), direct[1].numpy(), atol=1e-5)
