"""Writes a llava-hf checkpoint as llama.cpp reads it: a GGUF text model (with its tokenizer) and a GGUF mmproj
(CLIP/SigLIP tower + MLP projector, projector type "mlp"), so llama.cpp can answer on the same weights as the
engine's imported set (the independent check of tools/import_hf.py, tests/LlamaCpp.Tests).

  /usr/bin/python3 tools/export_gguf.py HF_DIR --out DIR      # DIR/text.gguf, DIR/mmproj.gguf

The container follows ggml's GGUF specification (version 3: magic, counts, typed key/values, tensor infos with
dimensions innermost first, data aligned to 32 bytes); keys and tensor names are the ones llama.cpp's loaders
look up. The tower is written up to the selected feature layer (llama.cpp runs every block it is given and,
with no post-layernorm tensor, returns the last block's output), as the engine's vision graph is. F32, or with
--mmproj-quant the tower's and projector's matrices in ggml's Q8_0 or Q4_0 blocks:

  /usr/bin/python3 tools/export_gguf.py HF_DIR --out DIR --mmproj-quant q4_0   # DIR/mmproj-q4_0.gguf only

(llama.cpp quantizes the text model itself, llama_model_quantize; it has no quantizer for an mmproj that LLamaSharp
exposes.) The same matrices as the engine's --quant sets: attention and MLP weights of every block and both
projector layers; the patch and position embeddings, norms and biases stay F32.
"""
import argparse
import os
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import checkpoint
import quantize
import scratch
from decoder import Decoder
from hf_llava import Projector, VisionTower

ALIGN = 32
# GGUF value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
# ggml tensor types
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0 = 0, 1, 2, 8
QK = 32  # values per Q8_0/Q4_0 block
# llama.cpp file types ("mostly" this type), for general.file_type
FILE_TYPE = {"q8_0": 7, "q4_0": 2}
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

    def tensor(self, name: str, t: torch.Tensor, quant: str | None = None):
        """Adds a tensor: F32, or (a matrix whose rows are whole blocks) as ggml's q8_0 or q4_0 blocks."""
        a = t.detach().to(torch.float32).contiguous().numpy()
        if quant is None:
            self.tensors.append((name, a.shape, GGML_F32, a.astype("<f4").tobytes()))
        else:
            kind, data = quantize_rows(a, quant)
            self.tensors.append((name, a.shape, kind, data))

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
            for name, shape, kind, data in self.tensors:
                dims = list(reversed(shape))
                f.write(self._str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
                        + struct.pack("<IQ", kind, offset))
                offset += -(-len(data) // ALIGN) * ALIGN
            f.write(b"\0" * (-f.tell() % ALIGN))
            for _, _, _, data in self.tensors:
                f.write(data)
                f.write(b"\0" * (-len(data) % ALIGN))


def quantize_rows(a: np.ndarray, quant: str) -> tuple[int, bytes]:
    """ggml's block layouts, from its format: each row of QK-value blocks, a block being its scale d as float16 then
    its values. Q8_0: d = max|x| / 127, 32 int8 values round(x / d). Q4_0: d = m / -8 where m is the value of
    largest magnitude, 4-bit codes min(15, floor(x / d + 8.5)) packed two to a byte, value j in the low nibble of
    byte j and value j + 16 in its high nibble; a code c reads back as (c - 8) d. The codes are the engine's own
    (quantize._codes, the one block quantizer, with ggml's tie rules); only the layout is GGUF's."""
    rows, n = a.shape
    if n % QK:
        raise ValueError(f"rows of {n} values are not whole {QK}-value blocks")
    if quant not in ("q8_0", "q4_0"):
        raise ValueError(f"unknown block type {quant!r}: q8_0 or q4_0")
    codes, d = quantize._codes(np.asarray(a, dtype=np.float32), 8 if quant == "q8_0" else 4)
    codes = codes.reshape(rows, n // QK, QK)
    scale = d.astype("<f2").view(np.uint8).reshape(rows, n // QK, 2)
    if quant == "q8_0":
        q = (codes.astype(np.int16) - 128).astype(np.int8)  # MatMulNBits's zero point 128 is ggml's signed byte
        return GGML_Q8_0, np.concatenate([scale, q.view(np.uint8)], axis=2).tobytes()
    packed = codes[..., :QK // 2] | (codes[..., QK // 2:] << 4)
    return GGML_Q4_0, np.concatenate([scale, packed], axis=2).tobytes()


def dequantize_rows(data: bytes, kind: int, shape: tuple[int, int]) -> np.ndarray:
    """The values a ggml reader takes from quantize_rows' blocks (for tests)."""
    rows, n = shape
    size = {GGML_Q8_0: 2 + QK, GGML_Q4_0: 2 + QK // 2}[kind]
    blocks = np.frombuffer(data, np.uint8).reshape(rows, n // QK, size)
    d = blocks[..., :2].copy().view("<f2").astype(np.float32)
    if kind == GGML_Q8_0:
        q = blocks[..., 2:].view(np.int8).astype(np.float32)
    else:
        lo, hi = blocks[..., 2:] & 15, blocks[..., 2:] >> 4
        q = np.concatenate([lo, hi], axis=2).astype(np.float32) - 8
    return (q * d).reshape(rows, n)


def permute_rope(w: torch.Tensor, heads: int) -> torch.Tensor:
    """Hugging Face's Llama q/k rows (rotary halves) reordered into llama.cpp's interleaved pairs, per head."""
    rows = w.shape[0]
    return w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def text_gguf(c: dict, decoder: Decoder, tok, stops: list, name: str) -> GGUFWriter:
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
    if isinstance(tok, checkpoint.SentencePieceTokenizer):
        tok.gguf(g, cfg.vocab_size, stops, {"string": STRING, "f32": F32, "i32": I32})
    else:
        byte_level_vocab(g, cfg.vocab_size, tok, stops)
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


def mmproj_gguf(c: dict, tower: VisionTower, projector: Projector, mean, std, name: str, quant: str | None = None,
                as_f32: bool = False) -> GGUFWriter:
    """The tower and projector; quant: their matrices in those blocks, or with as_f32 the values the blocks hold,
    written as F32 (the exact weights a reader of the blocks multiplies by, without its quantized arithmetic)."""
    t = c["tower"]
    g = GGUFWriter()
    g.string("general.architecture", "clip")
    g.string("general.name", name)
    g.u32("general.file_type", FILE_TYPE[quant] if quant and not as_f32 else 0)

    def matrix(key: str, w: torch.Tensor):
        # A matrix whose rows are not whole blocks stays F32, as llama.cpp's quantizer leaves such a tensor.
        if not quant or w.shape[-1] % QK:
            g.tensor(key, w)
        elif as_f32:
            kind, data = quantize_rows(w.detach().float().numpy(), quant)
            g.tensor(key, torch.from_numpy(dequantize_rows(data, kind, tuple(w.shape))))
        else:
            g.tensor(key, w, quant)

    idefics3 = c.get("family") == "idefics3"
    g.bool("clip.has_vision_encoder", True)
    g.bool("clip.has_text_encoder", False)
    g.bool("clip.has_llava_projector", not idefics3)
    g.string("clip.projector_type", "idefics3" if idefics3 else "mlp")
    if idefics3:
        g.u32("clip.vision.projector.scale_factor", c["scale_factor"])
    g.bool("clip.use_gelu", t.act != "quick_gelu")
    g.u32("clip.vision.image_size", t.image_size)
    g.u32("clip.vision.patch_size", t.patch_size)
    g.u32("clip.vision.embedding_length", t.hidden)
    g.u32("clip.vision.feed_forward_length", t.intermediate)
    g.u32("clip.vision.projection_dim", c["text"].dim)
    g.u32("clip.vision.block_count", t.layers)
    if not idefics3:  # Idefics3's graph runs every block and the post-layernorm
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
            (g.tensor if theirs.startswith("ln") else matrix)(b + theirs + ".weight", sd[p + ours + ".weight"])
            g.tensor(b + theirs + ".bias", sd[p + ours + ".bias"])
    if "post_layernorm.weight" in sd:
        g.tensor("v.post_ln.weight", sd["post_layernorm.weight"])
        g.tensor("v.post_ln.bias", sd["post_layernorm.bias"])
    ps = projector.state_dict()
    if idefics3:
        matrix("mm.model.fc.weight", ps["proj.weight"])
        return g
    matrix("mm.0.weight", ps["linear_1.weight"])
    g.tensor("mm.0.bias", ps["linear_1.bias"])
    matrix("mm.2.weight", ps["linear_2.weight"])
    g.tensor("mm.2.bias", ps["linear_2.bias"])
    return g


def byte_level_vocab(g: GGUFWriter, vocab_size: int, tok: checkpoint.Tokenizer, stops: list) -> None:
    """llama.cpp's byte-level BPE vocabulary ("gpt2", Qwen2's or SmolLM2's split), padded to the embedding's rows as llama.cpp's
    converters pad it."""
    by_id = {i: t for t, i in tok.vocab.items()} | {i: t for t, i in tok.added.items()}
    tokens, types = [], []
    for i in range(vocab_size):
        if i in by_id:
            tokens.append(by_id[i])
            types.append(CONTROL if i in tok.added.values() else NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
    g.string("tokenizer.ggml.model", "gpt2")
    g.string("tokenizer.ggml.pre", tok.split)  # llama.cpp's names: "qwen2", and "smollm" (each digit alone, then GPT-2's)
    g.array("tokenizer.ggml.tokens", STRING, tokens)
    g.array("tokenizer.ggml.token_type", I32, types)
    g.array("tokenizer.ggml.merges", STRING, [f"{a} {b}" for a, b in tok.merges])
    g.u32("tokenizer.ggml.eos_token_id", tok.added[stops[0]])
    pad = tok.added.get("<|endoftext|>", tok.added[stops[0]])
    g.u32("tokenizer.ggml.padding_token_id", pad)
    g.u32("tokenizer.ggml.bos_token_id", pad)
    g.bool("tokenizer.ggml.add_bos_token", False)


def export(hf: Path, out: Path, mmproj_quant: str | None = None, as_f32: bool = False) -> None:
    """Writes out/text.gguf and out/mmproj.gguf; with mmproj_quant, out/mmproj-QUANT.gguf only (-f32 with as_f32)."""
    c = checkpoint.parse_config(hf)
    pre = checkpoint.image_preprocessing(hf)
    mean, std = pre["mean"], pre["std"]
    parts = checkpoint.load_llava(hf, c, text=not mmproj_quant)  # the mmproj alone: the text model (most of the checkpoint) is not read
    tower, projector = parts["tower"], parts["projector"]
    if mmproj_quant:
        write_all(out, {mmproj_name(mmproj_quant, as_f32): lambda: mmproj_gguf(c, tower, projector, mean, std, hf.name, mmproj_quant, as_f32)})
        return
    decoder = parts["decoder"]
    tok = checkpoint.read_tokenizer(hf)
    stops = checkpoint.stop_tokens(hf, tok, c["config"])
    write_all(out, {"text.gguf": lambda: text_gguf(c, decoder, tok, stops, hf.name),
                    "mmproj.gguf": lambda: mmproj_gguf(c, tower, projector, mean, std, hf.name)})


def mmproj_name(quant: str, as_f32: bool) -> str:
    return f"mmproj-{quant}{'-f32' if as_f32 else ''}.gguf"


def write_all(out: Path, files: dict) -> None:
    """Writes each {name: make} beside its target as a partial unique to this run and renames them all at the end, so
    an export that fails or is stopped (SIGINT, SIGTERM) at any point leaves no partial, no text.gguf without its
    mmproj.gguf, and no --out folder it made (issue 31, finding 7). Files already in --out are replaced only at the end."""
    created = []
    folder = out
    while not folder.exists():
        created.append(folder)
        folder = folder.parent
    partials, done = {}, False
    try:
        for d in reversed(created):
            d.mkdir()
        for name, make in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.partial-", dir=out)
            os.close(fd)
            partials[name] = Path(tmp)
            partials[name].chmod(0o666 & ~scratch.umask())  # mkstemp's 0600 would become the file's mode
            make().write(partials[name])
        for name, tmp in partials.items():
            tmp.replace(out / name)
        done = True
    finally:
        if not done:
            for tmp in partials.values():
                tmp.unlink(missing_ok=True)
            for d in created:  # innermost first, only while empty
                try:
                    d.rmdir()
                except OSError:
                    break


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="export_gguf.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_dir", type=Path, help="the llava-hf checkpoint folder")
    ap.add_argument("--out", type=Path, required=True, help="folder for text.gguf and mmproj.gguf")
    ap.add_argument("--mmproj-quant", choices=sorted(FILE_TYPE), help="write only mmproj-TYPE.gguf, its matrices in these blocks")
    ap.add_argument("--as-f32", action="store_true",
                    help="with --mmproj-quant: mmproj-TYPE-f32.gguf, the values those blocks hold written as F32 (a reference)")
    args = ap.parse_args(argv)
    if args.as_f32 and not args.mmproj_quant:
        print("error: --as-f32 goes with --mmproj-quant", file=sys.stderr)
        return 2
    scratch.stop_on_signals()
    try:
        export(args.hf_dir, args.out, args.mmproj_quant, args.as_f32)
    except checkpoint.CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    except BaseException as e:  # the run's signal (tools/scratch.py), then anything the checks missed: one line
        if (code := scratch.signal_exit(e)) is not None:
            return code
        if not isinstance(e, Exception) or os.environ.get("ASSISTANT_DEBUG") == "1":
            raise
        print(f"error: the checkpoint could not be exported ({type(e).__name__}: {checkpoint.first_line(e)}); "
              f"nothing was written (ASSISTANT_DEBUG=1 shows where)", file=sys.stderr)
        return 2
    if args.mmproj_quant:
        print(f"wrote {args.out / mmproj_name(args.mmproj_quant, args.as_f32)}")
    else:
        print(f"wrote {args.out / 'text.gguf'} and {args.out / 'mmproj.gguf'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
