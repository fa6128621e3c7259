"""QueCC: the query-based convolutional cross-attention compressor (shared/design/QUECC.md), scaled down.

With `query_aware=False` the same module is the query-agnostic baseline (TokenPacker-style local
cross-attention without query injection); tokenpacker.py names that variant.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class QueCCConfig:
    vision_dim: int = 48  # Dv: the compressor works at the vision width, as the paper's 1024
    multi_dim: int = 144  # Dm: features_multi width
    llm_dim: int = 64  # D: the decoder's hidden size
    grid: int = 8  # G: the vision encoder's patch grid is G x G
    heads: int = 4

    def kernels(self) -> list:
        """Every k that divides the grid; V = (G / k)^2, largest k (fewest tokens) first."""
        return [k for k in range(self.grid, 0, -1) if self.grid % k == 0]

    def tokens_for(self, k: int) -> int:
        return (self.grid // k) ** 2


def mlp_ln(d_in: int, d: int) -> nn.Sequential:
    """LN(Linear(GELU(Linear(x)))): the shape QUECC.md gives both query and key/value paths."""
    return nn.Sequential(nn.Linear(d_in, d), nn.GELU(), nn.Linear(d, d), nn.LayerNorm(d))


class LocalCrossAttention(nn.Module):
    """Each downsampled query attends only to the k x k patch region it was pooled from."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        assert dim % heads == 0, "dim must divide into heads"
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:  # q (B, V, C), kv (B, V, k*k, C)
        B, V, C = q.shape
        H, Dh = self.heads, self.head_dim
        qh = self.q(q).reshape(B, V, H, 1, Dh)  # (B, V, H, 1, Dh)
        kh = self.k(kv).reshape(B, V, -1, H, Dh).transpose(2, 3)  # (B, V, H, k*k, Dh)
        vh = self.v(kv).reshape(B, V, -1, H, Dh).transpose(2, 3)  # (B, V, H, k*k, Dh)
        att = torch.softmax(qh @ kh.transpose(-1, -2) / Dh ** 0.5, dim=-1)  # (B, V, H, 1, k*k)
        out = (att @ vh).reshape(B, V, C)  # (B, V, C)
        return self.o(out)


class QueCC(nn.Module):
    def __init__(self, cfg: QueCCConfig, query_aware: bool = True):
        super().__init__()
        self.cfg, self.query_aware = cfg, query_aware
        C = cfg.vision_dim
        if query_aware:
            self.inject = nn.Sequential(nn.Linear(cfg.llm_dim, C), nn.LayerNorm(C))
        self.query_mlp = mlp_ln(C, C)
        self.kv_mlp = mlp_ln(cfg.multi_dim, C)
        self.attn = LocalCrossAttention(C, cfg.heads)
        self.proj = nn.Sequential(nn.Linear(C, cfg.llm_dim), nn.GELU(), nn.Linear(cfg.llm_dim, cfg.llm_dim))
        # One depthwise downsampling conv per supported k; an exported graph keeps only its own.
        self.down = nn.ModuleDict({str(k): nn.Conv2d(C, C, k, stride=k, groups=C) for k in cfg.kernels()})

    def forward(self, features, features_multi, query_embedding, k: int):
        # features (B, P, C), features_multi (B, P, Dm), query_embedding (B, D)
        G, C = self.cfg.grid, self.cfg.vision_dim
        g = G // k
        assert G % k == 0, f"k={k} does not divide the {G}x{G} grid"
        x = features
        if self.query_aware:
            x = x + self.inject(query_embedding)[:, None, :]  # (B, P, C): query injected into every patch
        x = self.query_mlp(x)  # (B, P, C)
        x = x.transpose(1, 2).reshape(-1, C, G, G)  # (B, C, G, G)
        q = self.down[str(k)](x).flatten(2).transpose(1, 2)  # (B, V, C), V = g*g
        kv = self.kv_mlp(features_multi)  # (B, P, C), no query injection
        kv = kv.reshape(-1, g, k, g, k, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, g * g, k * k, C)  # (B, V, k*k, C)
        return self.proj(self.attn(q, kv))  # (B, V, D)


class QueCCAtK(nn.Module):
    """Binds one k so a graph can be exported per supported V."""

    def __init__(self, compressor: QueCC, k: int):
        super().__init__()
        self.compressor, self.k = compressor, k

    def forward(self, features, features_multi, query_embedding=None):
        return self.compressor(features, features_multi, query_embedding, self.k)
