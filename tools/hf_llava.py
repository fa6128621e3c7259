"""PyTorch modules of the LLaVA family as Hugging Face's llava-hf checkpoints lay them out, written from the
model cards and configuration docs (CLIP, SigLIP, LlavaForConditionalGeneration, Qwen2, Llama):

- VisionTower: CLIP (class token, pre-layernorm, quick_gelu) or SigLIP (no class token, biased patch
  convolution, tanh gelu), run only up to the deepest feature layer the LLaVA config selects.
  hidden_states[0] is the embedding output (after CLIP's pre-layernorm), hidden_states[i] the output of
  layer i; the selected layers are concatenated on the last axis, CLIP's class token dropped.
- Projector: linear_1, activation, linear_2 (LlavaMultiModalProjector).
- Connector: Idefics3's (SmolVLM's): the patch grid's pixel shuffle by `scale_factor` (each s x s block of patches
  becomes one token of s^2 times the width), then one linear map without bias (Idefics3SimpleMLP). Its tower is
  SigLIP's, run to its last layer and its post-layernorm.
- The text model is tools/decoder.py's Decoder (Qwen2 with q/k/v bias, or Llama without).

The compressors are training-free and act on the projected patch tokens (already in the decoder's input
space): `full` keeps every patch; `pool` averages the patch grid to s x s regions (adaptive-pooling bins, so
grids such as 27 x 27 pool to 2 x 2); `query` weights the patches of each region by their cosine similarity
to the question's mean token embedding (softmax at temperature QUERY_TEMPERATURE) before merging them.
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

QUERY_TEMPERATURE = 0.1
# CLIP's (OpenAI's) per-channel normalisation, written once: a checkpoint's default when its preprocessor_config.json
# names none (tools/checkpoint.py), the test checkpoints' (make_hf_checkpoint.py) and the world tower's (vision_encoder.py).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def activation(name: str):
    """The activations the family's configs name; anything else is refused by the importer first."""
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name in ("gelu_pytorch_tanh", "gelu_new", "gelu_fast"):
        return lambda x: 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))
    if name == "gelu":
        return lambda x: 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if name == "silu":
        return F.silu
    if name == "relu":
        return F.relu
    raise ValueError(f"activation {name}")


ACTIVATIONS = ("quick_gelu", "gelu_pytorch_tanh", "gelu_new", "gelu_fast", "gelu", "silu", "relu")


@dataclass
class TowerConfig:
    kind: str  # "clip" or "siglip"
    image_size: int
    patch_size: int
    hidden: int
    intermediate: int
    heads: int
    layers: int  # layers run: the deepest selected feature layer
    feature_layers: list = field(default_factory=list)  # indices into hidden_states, 0..layers
    act: str = "quick_gelu"
    eps: float = 1e-5
    post_norm: bool = False  # the last layer's output through post_layernorm (Idefics3's tower; LLaVA's skips it)

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def patches(self) -> int:
        return self.grid * self.grid

    @property
    def feature_dim(self) -> int:
        return self.hidden * len(self.feature_layers)


class TowerAttention(nn.Module):
    def __init__(self, c: TowerConfig):
        super().__init__()
        self.heads = c.heads
        self.q_proj = nn.Linear(c.hidden, c.hidden)
        self.k_proj = nn.Linear(c.hidden, c.hidden)
        self.v_proj = nn.Linear(c.hidden, c.hidden)
        self.out_proj = nn.Linear(c.hidden, c.hidden)

    def forward(self, x):  # (B, T, C)
        B, T, C = x.shape
        H, Dh = self.heads, C // self.heads
        # The scale goes on the queries (T x C values) rather than on the scores (H x T x T: 9x as many at CLIP-336),
        # as CLIP's own code once did; the exported tower spent 5% of its int8 time on that Mul.
        q = (self.q_proj(x) * Dh ** -0.5).reshape(B, T, H, Dh).transpose(1, 2)
        k = self.k_proj(x).reshape(B, T, H, Dh).transpose(1, 2)
        v = self.v_proj(x).reshape(B, T, H, Dh).transpose(1, 2)
        att = (q @ k.transpose(-1, -2)).softmax(dim=-1)
        return self.out_proj((att @ v).transpose(1, 2).reshape(B, T, C))


class TowerMLP(nn.Module):
    def __init__(self, c: TowerConfig):
        super().__init__()
        self.fc1 = nn.Linear(c.hidden, c.intermediate)
        self.fc2 = nn.Linear(c.intermediate, c.hidden)
        self.act = activation(c.act)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class TowerLayer(nn.Module):
    def __init__(self, c: TowerConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(c.hidden, eps=c.eps)
        self.self_attn = TowerAttention(c)
        self.layer_norm2 = nn.LayerNorm(c.hidden, eps=c.eps)
        self.mlp = TowerMLP(c)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class Embeddings(nn.Module):
    def __init__(self, c: TowerConfig):
        super().__init__()
        self.clip = c.kind == "clip"
        self.patch_embedding = nn.Conv2d(3, c.hidden, c.patch_size, stride=c.patch_size, bias=not self.clip)
        if self.clip:
            self.class_embedding = nn.Parameter(torch.zeros(c.hidden))
        self.position_embedding = nn.Embedding(c.patches + (1 if self.clip else 0), c.hidden)

    def forward(self, pixel_values):  # (B, 3, S, S)
        x = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)  # (B, P, C)
        if self.clip:
            cls = self.class_embedding[None, None].expand(x.shape[0], 1, -1)
            x = torch.cat([cls, x], dim=1)
        return x + self.position_embedding.weight[None]


class VisionTower(nn.Module):
    """pixel_values (B, 3, S, S), normalised -> features (B, P, hidden x len(feature_layers))."""

    def __init__(self, c: TowerConfig):
        super().__init__()
        self.cfg = c
        self.embeddings = Embeddings(c)
        if c.kind == "clip":
            self.pre_layrnorm = nn.LayerNorm(c.hidden, eps=c.eps)
        self.layers = nn.ModuleList([TowerLayer(c) for _ in range(c.layers)])
        if c.post_norm:
            self.post_layernorm = nn.LayerNorm(c.hidden, eps=c.eps)

    def forward(self, pixel_values):
        x = self.embeddings(pixel_values)
        if self.cfg.kind == "clip":
            x = self.pre_layrnorm(x)
        states = [x]
        for layer in self.layers:
            x = layer(x)
            states.append(x)
        if self.cfg.post_norm:
            states[-1] = self.post_layernorm(x)
        start = 1 if self.cfg.kind == "clip" else 0  # the class token is not a patch
        return torch.cat([states[i][:, start:] for i in self.cfg.feature_layers], dim=-1)


class Projector(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, act: str):
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, out_dim)
        self.linear_2 = nn.Linear(out_dim, out_dim)
        self.act = activation(act)

    def forward(self, x):
        return self.linear_2(self.act(self.linear_1(x)))


class Connector(nn.Module):
    """Idefics3's connector: (B, g*g, C) patches -> (B, (g/s)^2, D) tokens. Each s x s block of the patch grid becomes
    one token whose features are the block's patches side by side (row by row within the block, as the published
    pixel_shuffle's reshapes order them), then `proj` (no bias) maps s*s*C to the decoder's width."""

    def __init__(self, in_dim: int, out_dim: int, scale: int):
        super().__init__()
        self.scale = scale
        self.proj = nn.Linear(in_dim * scale * scale, out_dim, bias=False)

    def forward(self, x):
        B, P, C = x.shape
        g, s = math.isqrt(P), self.scale
        # (B, row, col, C) -> (B, block row, row in block, block col, col in block, C) -> blocks, each row-major
        x = x.reshape(B, g // s, s, g // s, s, C).permute(0, 1, 3, 2, 4, 5).reshape(B, (g // s) ** 2, s * s * C)
        return self.proj(x)


def pool_matrix(grid: int, side: int) -> torch.Tensor:
    """(side^2, grid^2): row v averages the patches of region v, with adaptive-pooling bins
    [floor(i g / s), ceil((i + 1) g / s)) per axis, so any side <= grid works."""
    bins = [(i * grid // side, -(-(i + 1) * grid // side)) for i in range(side)]
    m = torch.zeros(side * side, grid * grid)
    for i, (r0, r1) in enumerate(bins):
        for j, (c0, c1) in enumerate(bins):
            for r in range(r0, r1):
                m[i * side + j, r * grid + c0:r * grid + c1] = 1.0
    return m / m.sum(dim=1, keepdim=True)


class FullCompressor(nn.Module):
    """Every patch through the projector: the checkpoint as trained."""

    def __init__(self, projector: Projector):
        super().__init__()
        self.projector = projector

    def forward(self, features):  # (B, P, Dv) -> (B, P, D)
        return self.projector(features)


class PoolCompressor(nn.Module):
    """Projected patches averaged over side x side regions of the grid."""

    def __init__(self, projector: Projector, grid: int, side: int):
        super().__init__()
        self.projector = projector
        self.register_buffer("pool", pool_matrix(grid, side), persistent=False)

    def forward(self, features):
        return self.pool @ self.projector(features)


class QueryCompressor(nn.Module):
    """Projected patches merged per region, each weighted by softmax(cos(patch, query) / T) within its region."""

    def __init__(self, projector: Projector, grid: int, side: int):
        super().__init__()
        self.projector = projector
        inside = pool_matrix(grid, side) > 0
        self.register_buffer("outside", (~inside).float() * -1e4, persistent=False)  # (V, P)

    def forward(self, features, query_embedding):  # (B, P, Dv), (B, D)
        tokens = self.projector(features)  # (B, P, D)
        score = F.normalize(tokens, dim=-1) @ F.normalize(query_embedding, dim=-1)[:, :, None]  # (B, P, 1)
        weights = (score.transpose(1, 2) / QUERY_TEMPERATURE + self.outside[None]).softmax(dim=-1)  # (B, V, P)
        return weights @ tokens


def pool_sides(grid: int) -> list:
    """The region sides offered: 1, 2, 4, ... up to half the grid (V = 1, 4, 16, ...)."""
    sides, s = [], 1
    while s <= max(1, grid // 2):
        sides.append(s)
        s *= 2
    return sides
