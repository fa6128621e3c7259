"""Writes a llava-hf checkpoint as llama.cpp reads it: a GGUF text model (with its tokenizer) and a GGUF mmproj
(CLIP/SigLIP tower + MLP projector, projector type "mlp"), so llama.cpp can answer on the same weights as the
engine's imported set (the independent check of tools/import_hf.py, tests/LlamaCpp.Tests).

  /usr/bin/python3 tools/export_gguf.py HF_DIR --out DIR      # DIR/text.gguf, DIR/mmproj.gguf

The container follows ggml's GGUF specification (version 3: magic, counts, typed key/values, tensor infos with
dimensions innermost first, data aligned to 32 bytes); keys and tensor names are the ones llama.cpp's loaders
look up. The tower is written up to the selected feature layer (llama.cpp runs every block it is given and,
with no post-layernorm tensor, returns the last block's output), as the engine's vision graph is. F32 only.
"""
import argparse
import struct
import sys
from pathlib import Path

import numpy as np
import torch

import import_hf
from decoder import Decoder
from hf_llava import Projector, VisionTower

ALIGN = 32
# GGUF value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
# ggml tensor types
GGML_F32, GGML_F16 = 0, 1
# llama.cpp token types
NORMAL, CONTROL, UNUSED = 1, 3, 5


class GGUFWriter:
    def __init__(self):
        self.kv, self.tensors = [], []

    def add(self, key: str, kind: int, value, item: int | None = None):
        self.kv.append((key, kind, value, item))

    def string(self, key, value):
        self.add(key, STRING, value)

    def u32(self, key, value):
        self.add(key, U32, int(value))

    def f32(self, key, value):
        self.add(key, F32, float(value))

    def bool(self, key, value):
        self.add(key, BOOL, bool(value))

    def array(self, key, item: int, values):
        self.add(key, ARRAY, list(values), item)

    def tensor(self, name: str, t: torch.Tensor):
        a = t.detach().to(torch.float32).contiguous().numpy()
        self.tensors.append((name, a))

    @staticmethod
    def _str(s: str) -> bytes:
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _value(self, kind, value, item=None) -> bytes:
        if kind == STRING:
            return self._str(value)
        if kind == ARRAY:
            head = struct.pack("<IQ", item, len(value))
            if item == STRING:
                return head + b"".join(self._str(v) for v in value)
            fmt = {U32: "<I", I32: "<i", F32: "<f", BOOL: "<?", U64: "<Q", I64: "<q"}[item]
            return head + b"".join(struct.pack(fmt, v) for v in value)
        return struct.pack({U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
                            U64: "<Q", I64: "<q", F64: "<d"}[kind], value)

    def write(self, path: Path):
        with open(path, "wb") as f:
            f.write(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv)))
            for key, kind, value, item in self.kv:
                f.write(self._str(key) + struct.pack("<I", kind) + self._value(kind, value, item))
            offset = 0
            for name, a in self.tensors:
                dims = list(reversed(a.shape))
                f.write(self._str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
                        + struct.pack("<IQ", GGML_F32, offset))
                offset += -(-a.nbytes // ALIGN) * ALIGN
            f.write(b"\0" * (-f.tell() % ALIGN))
            for _, a in self.tensors:
                f.write(a.astype("<f4").tobytes())
                f.write(b"\0" * (-a.nbytes % ALIGN))


def permute_rope(w: torch.Tensor, heads: int) -> torch.Tensor:
    """Hugging Face's Llama q/k rows (rotary halves) reordered into llama.cpp's interleaved pairs, per head."""
    rows = w.shape[0]
    return w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def text_gguf(c: dict, decoder: Decoder, tok: import_hf.Tokenizer, stops: list, name: str) -> GGUFWriter:
    cfg, arch = c["text"], "qwen2" if c["text_type"] == "qwen2" else "llama"
    g = GGUFWriter()
    g.string("general.architecture", arch)
    g.string("general.name", name)
    g.u32("general.file_type", 0)  # all F32
    g.u32(f"{arch}.context_length", c["config"]["text_config"].get("max_position_embeddings", 4096))
    g.u32(f"{arch}.embedding_length", cfg.dim)
    g.u32(f"{arch}.block_count", cfg.layers)
    g.u32(f"{arch}.feed_forward_length", cfg.intermediate)
    g.u32(f"{arch}.attention.head_count", cfg.heads)
    g.u32(f"{arch}.attention.head_count_kv", cfg.kv_heads)
    g.u32(f"{arch}.attention.key_length", cfg.head_dim)
    g.u32(f"{arch}.attention.value_length", cfg.head_dim)
    g.f32(f"{arch}.rope.freq_base", cfg.rope_theta)
    g.u32(f"{arch}.rope.dimension_count", cfg.head_dim)
    g.f32(f"{arch}.attention.layer_norm_rms_epsilon", cfg.rms_eps)
    if arch == "llama":
        g.u32("llama.vocab_size", cfg.vocab_size)
    # The vocabulary padded to the embedding's rows, as llama.cpp's converters pad it.
    by_id = {i: t for t, i in tok.vocab.items()} | {i: t for t, i in tok.added.items()}
    tokens, types = [], []
    for i in range(cfg.vocab_size):
        if i in by_id:
            tokens.append(by_id[i])
            types.append(CONTROL if i in tok.added.values() else NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
    g.string("tokenizer.ggml.model", "gpt2")
    g.string("tokenizer.ggml.pre", "qwen2")
    g.array("tokenizer.ggml.tokens", STRING, tokens)
    g.array("tokenizer.ggml.token_type", I32, types)
    g.array("tokenizer.ggml.merges", STRING, [f"{a} {b}" for a, b in tok.merges])
    g.u32("tokenizer.ggml.eos_token_id", tok.added[stops[0]])
    pad = tok.added.get("<|endoftext|>", tok.added[stops[0]])
    g.u32("tokenizer.ggml.padding_token_id", pad)
    g.u32("tokenizer.ggml.bos_token_id", pad)
    g.bool("tokenizer.ggml.add_bos_token", False)
    sd = decoder.state_dict()
    g.tensor("token_embd.weight", sd["embed_tokens.weight"])
    for i in range(cfg.layers):
        p, b = f"layers.{i}.", f"blk.{i}."
        q, k = sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.k_proj.weight"]
        if arch == "llama":
            q, k = permute_rope(q, cfg.heads), permute_rope(k, cfg.kv_heads)
        g.tensor(b + "attn_norm.weight", sd[p + "input_layernorm.weight"])
        g.tensor(b + "attn_q.weight", q)
        g.tensor(b + "attn_k.weight", k)
        g.tensor(b + "attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        if cfg.qkv_bias:
            for n in ("q", "k", "v"):
                g.tensor(b + f"attn_{n}.bias", sd[p + f"self_attn.{n}_proj.bias"])
        g.tensor(b + "attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        g.tensor(b + "ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        g.tensor(b + "ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        g.tensor(b + "ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        g.tensor(b + "ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    g.tensor("output_norm.weight", sd["norm.weight"])
    if not c["tied"]:
        g.tensor("output.weight", sd["lm_head.weight"])
    return g


def mmproj_gguf(c: dict, tower: VisionTower, projector: Projector, mean, std, name: str) -> GGUFWriter:
    t = c["tower"]
    g = GGUFWriter()
    g.string("general.architecture", "clip")
    g.string("general.name", name)
    g.u32("general.file_type", 0)
    g.bool("clip.has_vision_encoder", True)
    g.bool("clip.has_text_encoder", False)
    g.bool("clip.has_llava_projector", True)
    g.string("clip.projector_type", "mlp")
    g.bool("clip.use_gelu", t.act != "quick_gelu")
    g.u32("clip.vision.image_size", t.image_size)
    g.u32("clip.vision.patch_size", t.patch_size)
    g.u32("clip.vision.embedding_length", t.hidden)
    g.u32("clip.vision.feed_forward_length", t.intermediate)
    g.u32("clip.vision.projection_dim", c["text"].dim)
    g.u32("clip.vision.block_count", t.layers)
    # Explicit, because llama.cpp's LLaVA graph otherwise stops one block early (its "second to last layer" default).
    g.array("clip.vision.feature_layer", I32, t.feature_layers)
    g.u32("clip.vision.attention.head_count", t.heads)
    g.f32("clip.vision.attention.layer_norm_epsilon", t.eps)
    g.array("clip.vision.image_mean", F32, mean)
    g.array("clip.vision.image_std", F32, std)
    sd = tower.state_dict()
    g.tensor("v.patch_embd.weight", sd["embeddings.patch_embedding.weight"])
    if "embeddings.patch_embedding.bias" in sd:
        g.tensor("v.patch_embd.bias", sd["embeddings.patch_embedding.bias"])
    if "embeddings.class_embedding" in sd:
        g.tensor("v.class_embd", sd["embeddings.class_embedding"])
    g.tensor("v.position_embd.weight", sd["embeddings.position_embedding.weight"])
    if "pre_layrnorm.weight" in sd:
        g.tensor("v.pre_ln.weight", sd["pre_layrnorm.weight"])
        g.tensor("v.pre_ln.bias", sd["pre_layrnorm.bias"])
    for i in range(t.layers):
        p, b = f"layers.{i}.", f"v.blk.{i}."
        for ours, theirs in (("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"),
                             ("self_attn.out_proj", "attn_out"), ("layer_norm1", "ln1"), ("layer_norm2", "ln2"),
                             ("mlp.fc1", "ffn_up"), ("mlp.fc2", "ffn_down")):
            g.tensor(b + theirs + ".weight", sd[p + ours + ".weight"])
            g.tensor(b + theirs + ".bias", sd[p + ours + ".bias"])
    ps = projector.state_dict()
    g.tensor("mm.0.weight", ps["linear_1.weight"])
    g.tensor("mm.0.bias", ps["linear_1.bias"])
    g.tensor("mm.2.weight", ps["linear_2.weight"])
    g.tensor("mm.2.bias", ps["linear_2.bias"])
    return g


def export(hf: Path, out: Path) -> None:
    c = import_hf.parse_config(hf)
    tok = import_hf.Tokenizer(hf)
    stops = import_hf.stop_tokens(hf, tok, c["config"])
    pre = import_hf.read_json(hf / "preprocessor_config.json", "the image preprocessing", required=False) or {}
    mean = pre.get("image_mean", [0.48145466, 0.4578275, 0.40821073])
    std = pre.get("image_std", [0.26862954, 0.26130258, 0.27577711])
    weights = import_hf.Weights(hf)
    try:
        tower = VisionTower(c["tower"]).eval()
        import_hf.load_module(tower, weights, "vision_tower.vision_model.", "vision tower  ", rename=import_hf._tower_key)
        projector = Projector(c["tower"].feature_dim, c["text"].dim, c["projector_act"]).eval()
        import_hf.load_module(projector, weights, "multi_modal_projector.", "projector     ")
        decoder = Decoder(c["text"]).eval()
        if c["tied"]:
            decoder.lm_head.weight = decoder.embed_tokens.weight
        import_hf.load_module(decoder, weights, "language_model.", "text model    ", rename=import_hf.text_key)
    finally:
        weights.close()
    out.mkdir(parents=True, exist_ok=True)
    text_gguf(c, decoder, tok, stops, hf.name).write(out / "text.gguf")
    mmproj_gguf(c, tower, projector, mean, std, hf.name).write(out / "mmproj.gguf")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="export_gguf.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_dir", type=Path, help="the llava-hf checkpoint folder")
    ap.add_argument("--out", type=Path, required=True, help="folder for text.gguf and mmproj.gguf")
    args = ap.parse_args(argv)
    try:
        export(args.hf_dir, args.out)
    except import_hf.ImportError_ as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out / 'text.gguf'} and {args.out / 'mmproj.gguf'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
