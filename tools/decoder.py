"""A Qwen2-style decoder-only language model: RMSNorm, rotary positions, grouped-query attention, SwiGLU.

Its exported graph follows the input/output names common ONNX LLM exporters use, so a real exported
Qwen decoder plugs into the same engine:
  inputs  inputs_embeds (B, T, D) float, attention_mask (B, Tp+T) int64, position_ids (B, T) int64,
          past_key_values.{i}.key|value (B, KV, Tp, Dh)
  outputs logits (B, T, vocab), or (B, 1, vocab) with last_logits, last_hidden_state (B, T, D) (after the final norm),
          present.{i}.key|value (B, KV, Tp+T, Dh)
With `fused_attention` (import_hf.py --attention fused) each layer's attention is one ONNX Runtime
GroupQueryAttention node; the interface is the same, and attention_mask must be all ones (the engine's always is).
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class DecoderConfig:
    vocab_size: int = 512
    dim: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 176
    rope_theta: float = 10000.0
    rms_eps: float = 1e-6
    qkv_bias: bool = True  # Qwen2: biased q/k/v; Llama: none
    head_dim_override: int = 0  # a config's explicit head_dim (0: dim // heads)
    # Export attention as ONNX Runtime's fused com.microsoft GroupQueryAttention (one kernel a layer instead of the
    # dozen operators around the two products); then attention_mask must be all ones (it gives the lengths only).
    fused_attention: bool = False
    # Logits of the last position only (B, 1, vocab): a prefill's answer needs no other row, and the output
    # projection over every row is the costliest product of a long prefill (a 151,936-wide vocabulary).
    last_logits: bool = False

    @property
    def head_dim(self) -> int:
        return self.head_dim_override or self.dim // self.heads


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


def attend(q, k, v, past_k, past_v, heads: int, kv_heads: int, mask=None):
    """Causal grouped-query attention over a past cache. q (B, T, H*Dh), k/v (B, T, KV*Dh), rotated already;
    past (B, KV, Tp, Dh). Query i (at Tp+i) sees keys 0..Tp+i, or where `mask` (B, 1, T, Tp+T) bool says.
    Returns out (B, T, H*Dh) and present k/v (B, KV, Tp+T, Dh)."""
    B, T, _ = q.shape
    H, KV = heads, kv_heads
    Dh = q.shape[-1] // H
    k = torch.cat([past_k, k.reshape(B, T, KV, Dh).transpose(1, 2)], dim=2)  # (B, KV, Tp+T, Dh): the present
    v = torch.cat([past_v, v.reshape(B, T, KV, Dh).transpose(1, 2)], dim=2)
    S = k.shape[2]
    G = H // KV
    # Grouped-query attention without copying the cache per head: the G query heads of each KV head are stacked
    # along the rows (head h = kv * G + g, as Hugging Face's repeat_kv orders them) and multiply its keys once.
    # Expanding k and v to H heads instead cost 6% of a 0.5B decode step at context 600 (docs/PERFORMANCE.md).
    qg = q.reshape(B, T, H, Dh).transpose(1, 2)  # (B, H, T, Dh)
    if G > 1:
        qg = qg.reshape(B, KV, G * T, Dh)  # (B, KV, G*T, Dh)
    att = qg @ k.transpose(-1, -2) / Dh ** 0.5
    if G > 1:
        att = att.reshape(B, H, T, S)  # (B, H, T, S)
    if mask is None:
        qpos = torch.arange(T, device=q.device)[:, None] + (S - T)
        kpos = torch.arange(S, device=q.device)[None, :]
        mask = kpos <= qpos
    att = att.masked_fill(~mask, -1e9).softmax(dim=-1)
    out = att @ v if G == 1 else (att.reshape(B, KV, G * T, S) @ v).reshape(B, H, T, Dh)  # (B, H, T, Dh)
    return out.transpose(1, 2).reshape(B, T, H * Dh), k, v


class FusedAttention(torch.autograd.Function):
    """`attend`, exported as ONNX Runtime's com.microsoft GroupQueryAttention: the same inputs in the same layouts,
    plus seqlens_k (B,) int32 = total - 1 and total_sequence_length (scalar int32), from which it derives the past
    length and the causal mask. Past and present are separate buffers (the cache still grows by concatenation)."""

    @staticmethod
    def forward(ctx, q, k, v, past_k, past_v, seqlens_k, total, heads, kv_heads):
        return attend(q, k, v, past_k, past_v, heads, kv_heads)

    @staticmethod
    def symbolic(g, q, k, v, past_k, past_v, seqlens_k, total, heads, kv_heads):
        out, pk, pv = g.op("com.microsoft::GroupQueryAttention", q, k, v, past_k, past_v, seqlens_k, total,
                           num_heads_i=heads, kv_num_heads_i=kv_heads, outputs=3)
        out.setType(q.type())
        pk.setType(past_k.type())
        pv.setType(past_v.type())
        return out, pk, pv


class Attention(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        assert cfg.heads % cfg.kv_heads == 0, "heads must be a multiple of kv_heads"
        self.cfg = cfg
        Dh = cfg.head_dim
        self.q_proj = nn.Linear(cfg.dim, cfg.heads * Dh, bias=cfg.qkv_bias)  # Qwen2: biased q/k/v, unbiased o
        self.k_proj = nn.Linear(cfg.dim, cfg.kv_heads * Dh, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(cfg.dim, cfg.kv_heads * Dh, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(cfg.heads * Dh, cfg.dim, bias=False)

    def forward(self, x, cos, sin, lengths, past_k, past_v):
        # x (B, T, D); cos/sin (B, T, 1, Dh); lengths: (seqlens_k (B,) int32, total int32) for the fused export, or
        # the (B, 1, T, Tp+T) bool mask; past (B, KV, Tp, Dh)
        cfg = self.cfg
        B, T, _ = x.shape
        H, KV, Dh = cfg.heads, cfg.kv_heads, cfg.head_dim
        q = self.q_proj(x).reshape(B, T, H, Dh)
        k = self.k_proj(x).reshape(B, T, KV, Dh)
        v = self.v_proj(x)
        q = (q * cos + rotate_half(q) * sin).reshape(B, T, H * Dh)
        k = (k * cos + rotate_half(k) * sin).reshape(B, T, KV * Dh)
        if cfg.fused_attention:
            out, k, v = FusedAttention.apply(q, k, v, past_k, past_v, lengths[0], lengths[1], H, KV)
            return self.o_proj(out), k, v
        out, k, v = attend(q, k, v, past_k, past_v, H, KV, mask=lengths)
        return self.o_proj(out), k, v


class MLP(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.dim, cfg.intermediate, bias=False)
        self.up_proj = nn.Linear(cfg.dim, cfg.intermediate, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate, cfg.dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.dim, cfg.rms_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.rms_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, lengths, past_k, past_v):
        a, k, v = self.self_attn(self.input_layernorm(x), cos, sin, lengths, past_k, past_v)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x)), k, v


class Decoder(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList([Layer(cfg) for _ in range(cfg.layers)])
        self.norm = RMSNorm(cfg.dim, cfg.rms_eps)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        inv_freq = 1.0 / cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2).float() / cfg.head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)  # (Dh/2,)

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        # inputs_embeds (B, T, D); attention_mask (B, Tp+T); position_ids (B, T); past: 2 per layer (B, KV, Tp, Dh)
        hidden, presents = self.hidden(inputs_embeds, attention_mask, position_ids, *past)
        return (self.lm_head(hidden[:, -1:] if self.cfg.last_logits else hidden), hidden, *presents)

    def hidden(self, inputs_embeds, attention_mask, position_ids, *past):
        """The final-norm hidden states (B, T, D) and the presents, without the output projection: a caller that
        needs logits at a few positions (tools/distill.py) projects those alone (at a 152k vocabulary the projection
        of every position is a third of a 0.5B model's work)."""
        assert len(past) == 2 * self.cfg.layers, "one key and one value per layer"
        T = inputs_embeds.shape[1]
        Tp = past[0].shape[2]
        freqs = position_ids[..., None].float() * self.inv_freq  # (B, T, Dh/2)
        emb = torch.cat([freqs, freqs], dim=-1)[:, :, None]  # (B, T, 1, Dh)
        cos, sin = emb.cos(), emb.sin()
        if self.cfg.fused_attention:
            # The fused kernel's lengths: every key before a query's position is attended (an all-ones mask).
            lengths = ((attention_mask.sum(dim=1) - 1).to(torch.int32), torch._shape_as_tensor(attention_mask)[1].to(torch.int32))
        else:
            # Causal over absolute positions: query i (at Tp+i) sees keys j <= Tp+i, and only unmasked ones.
            qpos = torch.arange(T, device=inputs_embeds.device)[:, None] + Tp  # (T, 1)
            kpos = torch.arange(T + Tp, device=inputs_embeds.device)[None, :]  # (1, S)
            lengths = (kpos <= qpos)[None, None] & (attention_mask[:, None, None, :] > 0)  # (B, 1, T, S)
        x = inputs_embeds
        presents = []
        for i, layer in enumerate(self.layers):
            x, k, v = layer(x, cos, sin, lengths, past[2 * i], past[2 * i + 1])
            presents += [k, v]
        return self.norm(x), presents  # (B, T, D)

    def empty_past(self, batch: int = 1):
        c = self.cfg
        return [torch.zeros(batch, c.kv_heads, 0, c.head_dim) for _ in range(2 * c.layers)]


class Embed(nn.Module):
    """The `embed` graph: input_ids (B, T) int64 -> inputs_embeds (B, T, D)."""

    def __init__(self, decoder: Decoder):
        super().__init__()
        self.embed_tokens = decoder.embed_tokens

    def forward(self, input_ids):
        return self.embed_tokens(input_ids)
