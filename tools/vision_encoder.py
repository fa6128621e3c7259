"""A small ViT vision encoder, the project's stand-in for CLIP ViT-L/14.

It returns what QueCC consumes from CLIP (shared/design/QUECC.md):
  features       the feature layer's patch tokens, CLS dropped       (B, P, Dv)
  features_multi several layers' patch tokens concatenated on dim -1 (B, P, Dv * len(multi_layers))
CLIP's encoder has one layer past the feature (penultimate) layer; LLaVA-style models never use it,
so this encoder simply stops at the feature layer: `layers` counts the blocks that are run.
"""
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from hf_llava import CLIP_MEAN, CLIP_STD


@dataclass
class VisionConfig:
    image_size: int = 64
    patch_size: int = 8
    dim: int = 48
    layers: int = 3
    heads: int = 4
    mlp_ratio: int = 4
    multi_layers: list = field(default_factory=lambda: [1, 2, 3])  # 1-based block outputs
    # CLIP's normalisation constants; the C# preprocessor reads them from the manifest.
    mean: tuple = CLIP_MEAN
    std: tuple = CLIP_STD

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def patches(self) -> int:
        return self.grid * self.grid

    @property
    def multi_dim(self) -> int:
        return self.dim * len(self.multi_layers)


class SelfAttention(nn.Module):
    """Plain multi-head self-attention, written out (nn.MultiheadAttention's fast path does not export)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        assert dim % heads == 0, "dim must divide into heads"
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        B, T, C = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, H, T, Dh)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(q @ k.transpose(-1, -2) / self.head_dim ** 0.5, dim=-1)  # (B, H, T, T)
        return self.out((att @ v).transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    """Pre-LN transformer block (CLIP's layout): x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1+P, Dv)
        h = self.ln1(x)
        x = x + self.attn(h)
        return x + self.mlp(self.ln2(x))


class VisionEncoder(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        assert cfg.image_size % cfg.patch_size == 0, "image_size must be a multiple of patch_size"
        assert all(1 <= i <= cfg.layers for i in cfg.multi_layers), "multi_layers are 1-based block indices"
        self.cfg = cfg
        self.patch = nn.Conv2d(3, cfg.dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.cls = nn.Parameter(torch.randn(1, 1, cfg.dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, 1 + cfg.patches, cfg.dim) * 0.02)
        self.ln_pre = nn.LayerNorm(cfg.dim)
        self.blocks = nn.ModuleList([Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.layers)])

    def forward(self, pixel_values: torch.Tensor):  # (B, 3, H, W), normalised
        cfg = self.cfg
        x = self.patch(pixel_values)  # (B, Dv, G, G)
        x = x.flatten(2).transpose(1, 2)  # (B, P, Dv)
        cls = self.cls.expand(x.shape[0], -1, -1)  # (B, 1, Dv)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.pos)  # (B, 1+P, Dv)
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x[:, 1:])  # drop CLS: (B, P, Dv)
        features = outs[-1]  # (B, P, Dv)
        features_multi = torch.cat([outs[i - 1] for i in cfg.multi_layers], dim=-1)  # (B, P, Dm)
        return features, features_multi
