"""Imports a LLaVA-family checkpoint folder, as downloaded from Hugging Face (llava-hf layout), into a model set
of the contract in models/README.md ("Imported LLaVA sets").

  /usr/bin/python3 tools/import_hf.py HF_DIR --out SET_DIR        # or: ./assistant models import HF_DIR --out SET_DIR

Reads config.json (LlavaForConditionalGeneration: a CLIP or SigLIP tower, an MLP projector, a Qwen2 or Llama
text model), the weights (model.safetensors, or shards with model.safetensors.index.json; F32, F16 or BF16;
the older `language_model.model.*` and the newer `model.language_model.*` key names; tied or untied output
embeddings), preprocessor_config.json, tokenizer.json, tokenizer_config.json's chat template and
generation_config.json. Writes the vision tower up to its feature layer, the full/pool/query compressors,
the embed and decoder graphs, the tokenizer, golden outputs and a manifest recording the source. Weights are
copied in one tensor at a time. The output folder appears whole or not at all. Errors are one line, exit 2.
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import stat
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch

import bpe_tokenizer
import safetensors_io
import scratch
from decoder import Decoder, DecoderConfig, Embed
import export
import quantize
from export import decoder_io, io, n_params
from hf_llava import (ACTIVATIONS, FullCompressor, PoolCompressor, Projector, QueryCompressor, TowerConfig,
                      VisionTower, pool_sides, QUERY_TEMPERATURE)

GOLDEN_QUESTION = "What is in this picture?"
GOLDEN_NEW = 8
QUESTION_SLOT = "\u0000QUESTION\u0000"
# A graph above this is written with its weights in a .data file (protobuf's 2 GB limit); the tests lower it.
LARGE_GRAPH = int(os.environ.get("ASSISTANT_IMPORT_EXTERNAL_ABOVE", 1800 << 20))
SUPPORTED_TEXT = ("qwen2", "llama", "mistral")
VISION_KINDS = {"clip_vision_model": "clip", "siglip_vision_model": "siglip"}


class ImportError_(Exception):
    """A checkpoint this importer cannot take; the message is one line for the user."""


def fail(message: str):
    raise ImportError_(message)


def read_json(path: Path, what: str, required: bool = True):
    if not path.is_file():
        if required:
            fail(f"{path.parent} is not a llava-hf checkpoint folder: it has no {path.name} ({what})")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(f"{path} is not valid JSON: {e}")


def progress(label: str, done: int, total: int) -> None:
    if sys.stderr.isatty() or os.environ.get("ASSISTANT_PROGRESS") == "1":
        width = 30
        filled = width * done // max(total, 1)
        end = "\n" if done >= total else ""
        print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end=end, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- configuration

def number(section: dict, key: str, where: str, lo: float, hi: float, default=None, integer: bool = True):
    """A config value that must be a number in [lo, hi] (an integer unless `integer` is False): anything else, a
    string, a list, a bool, NaN, Infinity, 0 heads, -64 layers, is one line (issue 31, findings 1, 5 and 6), before
    anything is built from it."""
    value = section.get(key, default) if isinstance(section, dict) else None
    if value is None:
        fail(f"{where}{key} is missing")
    return number_value(value, f"{where}{key}", lo, hi, integer)


def number_value(value, name: str, lo: float, hi: float, integer: bool = True):
    """`number`'s check of one value, named `name` in the refusal."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or not lo <= value <= hi:
        kind = "an integer" if integer else "a number"
        fail(f"{name} is {_short(value)}: it must be {kind} from {lo:g} to {hi:g}")
    return int(value) if integer else float(value)


def check_claims(c: dict, weights) -> None:
    """The config's dimensions against the weights' own headers, before any module is built. The headers' shapes
    were checked against the files' sizes, so a config that claims 10,000 layers, a head_dim of 10^6 or a vocabulary of
    2^26 without the bytes for them is refused here, and the model built next is as large as the real weights."""
    tw, tx = c["tower"], c["text"]

    def expect(name: str, want: list, what: str):
        if name not in weights:
            fail(f"{what}: the config implies tensor {name}, which is in no file of the checkpoint")
        file, key = weights.where[name]
        got = list(weights.files[file].shape(key))
        if got != want:
            fail(f"{what}: the config implies {name} of shape {want}, but the weights hold {got}")

    v, t = "vision_tower.vision_model.", "language_model.model."
    expect(v + "embeddings.patch_embedding.weight", [tw.hidden, 3, tw.patch_size, tw.patch_size], "vision_config hidden_size and patch_size")
    expect(v + "encoder.layers.0.mlp.fc1.weight", [tw.intermediate, tw.hidden], "vision_config intermediate_size")
    expect(v + f"encoder.layers.{tw.layers - 1}.mlp.fc1.weight", [tw.intermediate, tw.hidden], "vision_config num_hidden_layers")
    expect(t + "embed_tokens.weight", [tx.vocab_size, tx.dim], "text_config vocab_size and hidden_size")
    expect(t + "layers.0.self_attn.q_proj.weight", [tx.heads * tx.head_dim, tx.dim], "text_config num_attention_heads and head_dim")
    expect(t + "layers.0.self_attn.k_proj.weight", [tx.kv_heads * tx.head_dim, tx.dim], "text_config num_key_value_heads")
    expect(t + "layers.0.mlp.up_proj.weight", [tx.intermediate, tx.dim], "text_config intermediate_size")
    expect(t + f"layers.{tx.layers - 1}.mlp.up_proj.weight", [tx.intermediate, tx.dim], "text_config num_hidden_layers")


# The import's peak resident memory per float32 byte of weights, measured (docs/REAL_MODELS.md: 14.5 GB for 3.6 GB of
# float32 weights, 10.6 GB for 3.2 GB: the PyTorch modules plus the ONNX exporter's copies of a graph), plus a base.
PEAK_PER_WEIGHT_BYTE = 4.3
PEAK_BASE = 600 << 20


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where there is none): what can be allocated without swapping."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(float_elements: int) -> None:
    """Refuses, before building anything, an import whose estimated peak (from the headers' shapes) exceeds the memory
    available now, instead of being killed by the kernel half way. ASSISTANT_IMPORT_MEMORY_CHECK=0 skips it."""
    if os.environ.get("ASSISTANT_IMPORT_MEMORY_CHECK") == "0":
        return
    need = int(float_elements * 4 * PEAK_PER_WEIGHT_BYTE) + PEAK_BASE
    have = available_memory()
    if have is not None and need > have:
        fail(f"importing these weights ({float_elements / 1e9:.2f} G parameters) needs about {need / 2**30:.1f} GB of memory, "
             f"and {have / 2**30:.1f} GB is available (docs/REAL_MODELS.md; ASSISTANT_IMPORT_MEMORY_CHECK=0 tries anyway)")


def parse_config(hf: Path) -> dict:
    config = read_json(hf / "config.json", "the model configuration")
    if not isinstance(config, dict):
        fail("config.json is not a JSON object")
    for key in ("vision_config", "text_config", "quantization_config"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            fail(f"config.json {key} is {_short(config[key])}: it must be an object")
    model_type = config.get("model_type")
    archs = config.get("architectures") or []
    archs = [_short_text(str(a), 60) for a in archs] if isinstance(archs, list) else [_short(archs)]
    if model_type != "llava":
        fail(f"architecture {_short(model_type)} ({', '.join(archs) or 'no architectures listed'}) is not supported: "
             f"this importer reads LlavaForConditionalGeneration (model_type 'llava')")
    q = config.get("quantization_config") or (config.get("text_config") or {}).get("quantization_config")
    if q and not isinstance(q, dict):
        q = {"quant_method": _short(q)}
    if q:
        fail(f"quantized checkpoint ({q.get('quant_method', 'unknown method')}, {q.get('bits', '?')}-bit) is not supported: "
             f"import the unquantized (F32/F16/BF16) weights")
    vc, tc = config.get("vision_config") or {}, config.get("text_config") or {}
    vkind = VISION_KINDS.get(vc.get("model_type"))
    if vkind is None:
        fail(f"vision tower {_short(vc.get('model_type'))} is not supported (this importer reads clip_vision_model and siglip_vision_model)")
    ttype = tc.get("model_type")
    if ttype not in SUPPORTED_TEXT:
        fail(f"text model {_short(ttype)} is not supported (this importer reads {', '.join(SUPPORTED_TEXT)})")
    if tc.get("rope_scaling"):
        fail(f"text model rope_scaling {_short(tc['rope_scaling'])} is not supported yet (plain rotary positions only)")
    if tc.get("mlp_bias") or (ttype != "qwen2" and tc.get("attention_bias")):
        fail("text model with attention_bias or mlp_bias on every projection is not supported yet")
    for key, act in (("vision_config.hidden_act", vc.get("hidden_act", "quick_gelu" if vkind == "clip" else "gelu_pytorch_tanh")),
                     ("projector_hidden_act", config.get("projector_hidden_act", "gelu")), ("text_config.hidden_act", tc.get("hidden_act", "silu"))):
        if not isinstance(act, str) or act not in ACTIVATIONS or (key == "text_config.hidden_act" and act != "silu"):
            fail(f"{key} {_short(act)} is not supported")
    if config.get("image_grid_pinpoints") or vc.get("image_grid_pinpoints"):
        fail("any-resolution tiling (image_grid_pinpoints, LLaVA-NeXT) is not supported yet")

    vw, tw = "vision_config.", "text_config."
    n_layers = number(vc, "num_hidden_layers", vw, 1, 256)
    layer = config.get("vision_feature_layer", -2)
    wanted = layer if isinstance(layer, list) else [layer]
    if not wanted or any(isinstance(l, bool) or not isinstance(l, int) for l in wanted):
        fail(f"vision_feature_layer is {_short(layer)}: it must be a layer index or a non-empty list of them")
    resolved = []
    for l in wanted:
        r = l if l >= 0 else n_layers + 1 + l
        if not 0 <= r <= n_layers:
            fail(f"vision_feature_layer {l} is outside the tower's hidden states 0..{n_layers}")
        resolved.append(r)
    strategy = config.get("vision_feature_select_strategy", "default")
    if strategy not in ("default", "full"):
        fail(f"vision_feature_select_strategy {_short(strategy)} is not supported (default or full)")
    if vkind == "clip" and strategy == "full":
        fail("vision_feature_select_strategy 'full' with a CLIP tower (class token kept as an image token) is not supported yet")
    if vkind == "siglip" and strategy == "default":
        fail("vision_feature_select_strategy 'default' with a SigLIP tower drops a patch (it has no class token); not supported")
    image_size = number(vc, "image_size", vw, 1, 4096, default=224)
    patch = number(vc, "patch_size", vw, 1, 1024, default=16 if vkind == "siglip" else 32)
    if image_size < patch:  # a remainder is cut off by the patch convolution (SigLIP so400m: 384 px, patch 14, 27 x 27)
        fail(f"vision image_size {image_size} is smaller than its patch_size {patch}")
    vhidden, vheads = number(vc, "hidden_size", vw, 1, 16384), number(vc, "num_attention_heads", vw, 1, 256)
    if vhidden % vheads:
        fail(f"vision_config hidden_size {vhidden} is not a multiple of its {vheads} attention heads")
    tower = TowerConfig(kind=vkind, image_size=image_size, patch_size=patch, hidden=vhidden,
                        intermediate=number(vc, "intermediate_size", vw, 1, 65536), heads=vheads,
                        layers=max(max(resolved), 1), feature_layers=resolved,
                        act=vc.get("hidden_act", "quick_gelu" if vkind == "clip" else "gelu_pytorch_tanh"),
                        eps=number(vc, "layer_norm_eps", vw, 1e-12, 0.1, default=1e-5 if vkind == "clip" else 1e-6, integer=False))
    heads = number(tc, "num_attention_heads", tw, 1, 512)
    dim = number(tc, "hidden_size", tw, 1, 32768)
    head_dim = number(tc, "head_dim", tw, 0, 1024, default=0) if tc.get("head_dim") is not None else 0
    if not head_dim and dim % heads:
        fail(f"text_config hidden_size {dim} is not a multiple of its {heads} attention heads (and no head_dim is given)")
    text = DecoderConfig(vocab_size=number(tc, "vocab_size", tw, 1, 1 << 20, default=config.get("vocab_size")), dim=dim,
                         layers=number(tc, "num_hidden_layers", tw, 1, 512), heads=heads,
                         kv_heads=number(tc, "num_key_value_heads", tw, 1, heads, default=heads), intermediate=number(tc, "intermediate_size", tw, 1, 262144),
                         rope_theta=number(tc, "rope_theta", tw, 1.0, 1e12, default=10000.0, integer=False),
                         rms_eps=number(tc, "rms_norm_eps", tw, 1e-12, 0.1, default=1e-6, integer=False),
                         qkv_bias=ttype == "qwen2", head_dim_override=head_dim)
    if heads % text.kv_heads:
        fail(f"text model has {heads} attention heads, not a multiple of its {text.kv_heads} key/value heads")
    tied = tc.get("tie_word_embeddings", config.get("tie_word_embeddings", False))
    return {"config": config, "tower": tower, "text": text, "text_type": ttype, "tied": bool(tied),
            "projector_act": config.get("projector_hidden_act", "gelu"), "image_token": config.get("image_token_index"),
            "strategy": strategy, "vision_layers_total": n_layers}


# ---------------------------------------------------------------- weights

OLD_PREFIXES = (("model.language_model.", "language_model.model."), ("model.vision_tower.", "vision_tower."),
                ("model.multi_modal_projector.", "multi_modal_projector."), ("lm_head.", "language_model.lm_head."))
QUANT_SUFFIXES = (".qweight", ".qzeros", ".scales", ".g_idx", ".weight_packed", ".absmax", ".quant_state")


def canonical(name: str) -> str:
    """A checkpoint key in the older llava-hf names (the newer layout is mapped onto them)."""
    for new, old in OLD_PREFIXES:
        if name.startswith(new):
            return old + name[len(new):]
    return name


def _short(value) -> str:
    return _short_text(repr(value), 80)


def shard_path(hf: Path, name: str, listed_in: str) -> Path:
    """A shard the checkpoint names: a plain file name inside the checkpoint folder (never a path: an index naming
    /etc/shadow or ../x.safetensors read files from outside the folder the user named), whose entry may be a link, as
    the Hugging Face cache's snapshots are (to ../../blobs/...), but must lead to a regular file: not a device (a
    link to /dev/zero or /proc/self/mem), a pipe or a folder."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or Path(name).is_absolute():
        fail(f"{listed_in} names the shard {_short(name)}: a shard is a plain file name inside the checkpoint folder")
    path = hf / name
    try:
        st = path.stat()  # follows links to their final target
    except OSError:
        fail(f"missing shard: {listed_in} lists {name}, which {hf} does not have")
    if not stat.S_ISREG(st.st_mode):
        fail(f"shard {name} is not a regular file (it leads to a device, a pipe or a folder)")
    if st.st_size < 8:  # a safetensors file starts with its header's 8-byte length; /proc's files say 0 bytes
        fail(f"shard {name} is not a regular file with a safetensors header ({st.st_size} bytes)")
    return path


class Weights:
    """The checkpoint's tensors by canonical name, across one file or index-listed shards, read one at a time."""

    def __init__(self, hf: Path):
        self.files, self.where = {}, {}
        index = hf / "model.safetensors.index.json"
        if index.is_file():
            weight_map = (read_json(index, "the shard index") or {}).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                fail(f"{index} has no weight_map")
            for name, file in weight_map.items():
                if not isinstance(file, str) or not isinstance(name, str):
                    fail(f"{index.name} maps {_short(name)} to {_short(file)}: tensor and shard names are strings")
            for file in sorted(set(weight_map.values())):
                self.files[file] = self._open(shard_path(hf, file, index.name))
            for name, file in weight_map.items():
                if name not in self.files[file].names:
                    fail(f"{index.name} places tensor {name} in {file}, which has no such tensor")
                self.where[canonical(name)] = (file, name)
        elif (hf / "model.safetensors").exists():
            f = self._open(shard_path(hf, "model.safetensors", hf.name))
            self.files["model.safetensors"] = f
            self.where = {canonical(n): ("model.safetensors", n) for n in f.names}
        else:
            bins = sorted(p.name for p in hf.glob("*.bin")) + sorted(p.name for p in hf.glob("*.pth"))
            fail(f"{hf} has no model.safetensors or model.safetensors.index.json"
                 + (f" (it has {bins[0]}: PyTorch pickles are not read; save the model as safetensors)" if bins else ""))
        quant = [n for n in self.where if n.endswith(QUANT_SUFFIXES)]
        if quant:
            fail(f"quantized checkpoint (tensor {quant[0]}; GPTQ/AWQ-style packed weights) is not supported: import the unquantized weights")

    @staticmethod
    def _open(path: Path):
        try:
            return safetensors_io.SafetensorsFile(path)
        except safetensors_io.SafetensorsError as e:
            fail(str(e))
        except OSError as e:
            fail(f"cannot read shard {path.name}: {e.strerror or e}")

    def __contains__(self, name: str) -> bool:
        return name in self.where

    def read(self, name: str, shape) -> torch.Tensor:
        if name not in self.where:
            fail(f"tensor {name} is in no file of the checkpoint")
        file, key = self.where[name]
        f = self.files[file]
        dtype = f.dtype(key)
        if dtype not in safetensors_io.FLOAT_DTYPES:
            fail(f"tensor {key} is {dtype}: a quantized or integer weight, not supported (import the F32/F16/BF16 weights)")
        if list(f.shape(key)) != list(shape):
            fail(f"tensor {key} has shape {f.shape(key)}, but the config implies {list(shape)}")
        t = f.read(key)
        if not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            fail(f"tensor {key} holds {bad:,} NaN or infinite values of {t.numel():,}: the checkpoint's weights are damaged")
        return t

    def float_elements(self) -> int:
        """Elements of every floating-point tensor, from the headers (what the model built from them holds)."""
        return sum(math.prod(f.shape(k)) for f in self.files.values() for k in f.names if f.dtype(k) in safetensors_io.FLOAT_DTYPES)

    def close(self):
        for f in self.files.values():
            f.close()


def load_module(module: torch.nn.Module, weights: Weights, prefix: str, label: str, rename=None) -> None:
    """Copies each of the module's parameters from `prefix + name` (after `rename`), one tensor at a time."""
    params = dict(module.named_parameters())
    for i, (name, p) in enumerate(params.items()):
        key = prefix + (rename(name) if rename else name)
        with torch.no_grad():
            p.copy_(weights.read(key, p.shape))
        progress(label, i + 1, len(params))


def text_key(name: str) -> str:
    return "lm_head.weight" if name == "lm_head.weight" else "model." + name


# ---------------------------------------------------------------- tokenizer and prompt

MAX_TOKENIZER_BYTES = 64 << 20   # tokenizer.json; Qwen2's is 7 MB, the largest common ones under 20 MB
MAX_VOCAB = 1 << 20              # entries (Qwen2 has 151,643)
MAX_TOKEN_CHARS = 1024           # one vocabulary entry or added token (real ones are a few dozen characters)
MAX_ID = (1 << 24) - 1


class Tokenizer:
    """tokenizer.json's byte-level BPE, written out as vocab.json + merges.txt, with its added tokens. The file is a
    stranger's: its size, every entry's type and length, ids (whole, in range, unique), the byte alphabet and each
    merge's parts and result are checked here, each with its own line, so that what is written is what the engine's
    tokenizer loads (issue 31, findings 1, 5 and 6)."""

    def __init__(self, hf: Path):
        path = hf / "tokenizer.json"
        if path.is_file() and path.stat().st_size > MAX_TOKENIZER_BYTES:
            fail(f"tokenizer.json is {path.stat().st_size / 2**20:.0f} MB: more than {MAX_TOKENIZER_BYTES >> 20} MB is not a tokenizer this importer reads")
        doc = read_json(path, "the tokenizer")
        model = doc.get("model") if isinstance(doc, dict) else None
        if not isinstance(model, dict):
            fail("tokenizer.json has no model object")
        if model.get("type") != "BPE":
            fail(f"tokenizer model type {_short(model.get('type'))} is not supported (byte-level BPE only)")
        if model.get("byte_fallback") or not _byte_level(doc.get("pre_tokenizer")):
            fail("tokenizer is not byte-level BPE (a SentencePiece-style BPE with byte fallback, e.g. Llama 2's): not supported yet")
        pattern = _split_pattern(doc.get("pre_tokenizer"))
        if pattern != bpe_tokenizer.QWEN2_PATTERN:
            fail("tokenizer pre-tokenizer pattern is not Qwen2's; only the Qwen2 split is supported yet")
        self.added = self._added(doc.get("added_tokens"))
        vocab = self._vocab(model.get("vocab"))
        for text, i in self.added.items():
            if vocab.get(text) == i:
                del vocab[text]
        ids = set(vocab.values())
        clash = [t for t, i in self.added.items() if i in ids]
        if clash:
            fail(f"added token {_short(clash[0])} has an id that the BPE vocabulary also uses")
        missing = [c for c in bpe_tokenizer.BYTE_CHARS.values() if c not in vocab]
        if missing:
            fail(f"tokenizer.json's vocabulary lacks the byte token {_short(missing[0])} ({len(missing)} of the 256 bytes are "
                 f"missing): a byte-level BPE needs all 256, or some text cannot be encoded")
        self.vocab, self.merges = vocab, self._merges(model.get("merges"), vocab)
        self.bpe = bpe_tokenizer.BpeTokenizer(vocab, self.merges)
        self.bpe.special = dict(self.added)
        self.count = max(list(vocab.values()) + list(self.added.values())) + 1

    @staticmethod
    def _text(value, what: str) -> str:
        if not isinstance(value, str) or not value or len(value) > MAX_TOKEN_CHARS:
            fail(f"tokenizer.json {what} {_short(value)} is not a token: a text of 1 to {MAX_TOKEN_CHARS:,} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            fail(f"tokenizer.json {what} {_short(value)} is not valid Unicode (a lone surrogate)")
        return value

    @staticmethod
    def _id(value, what: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID:
            fail(f"tokenizer.json gives {what} the id {_short(value)}: an id is an integer from 0 to {MAX_ID:,}")
        return value

    def _added(self, entries) -> dict:
        if entries is None:
            return {}
        if not isinstance(entries, list) or len(entries) > 65536:
            fail("tokenizer.json's added_tokens is not a list of at most 65,536 tokens")
        added, ids = {}, set()
        for t in entries:
            if not isinstance(t, dict):
                fail(f"tokenizer.json has an added token {_short(t)} that is not an object")
            text = self._text(t.get("content"), "added token")
            i = self._id(t.get("id"), f"added token {_short(text)}")
            if text in added or i in ids:
                fail(f"tokenizer.json lists the added token {_short(text)} or its id {i} twice")
            added[text] = i
            ids.add(i)
        return added

    def _vocab(self, vocab) -> dict:
        if not isinstance(vocab, dict) or not vocab:
            fail(f"tokenizer.json's model vocab is {'a ' + type(vocab).__name__ if vocab is not None else 'missing'}: "
                 f"it must be an object from token to id")
        if len(vocab) > MAX_VOCAB:
            fail(f"tokenizer.json's vocabulary has {len(vocab):,} entries; at most {MAX_VOCAB:,} are read")
        seen = {}
        for text, i in vocab.items():
            self._text(text, "vocabulary entry")
            self._id(i, f"vocabulary entry {_short(text)}")
            if i in seen:
                fail(f"tokenizer.json gives the id {i} to two vocabulary entries, {_short(seen[i])} and {_short(text)}")
            seen[i] = text
        return dict(vocab)

    def _merges(self, merges, vocab: dict) -> list:
        if merges is None:
            return []
        if not isinstance(merges, list) or len(merges) > len(vocab):
            fail("tokenizer.json's merges is not a list no longer than the vocabulary")
        out = []
        for m in merges:
            parts = m.split(" ") if isinstance(m, str) else m
            if not isinstance(parts, list) or len(parts) != 2 or not all(isinstance(x, str) and x for x in parts):
                fail(f"tokenizer.json has a malformed merge {_short(m)} (two tokens expected)")
            a, b = parts
            for token in (a, b, a + b):
                if token not in vocab:
                    fail(f"tokenizer.json's merge {_short(a + ' ' + b)} names {_short(token)}, which is not in its vocabulary")
            out.append((a, b))
        return out

    def encode(self, text: str) -> list:
        return self.bpe.encode(text)

    def encode_template(self, text: str) -> list:
        """Template text: added tokens are recognised (longest first), the rest is plain BPE."""
        ids, i, run = [], 0, ""
        specials = sorted(self.added, key=len, reverse=True)
        while i < len(text):
            hit = next((s for s in specials if text.startswith(s, i)), None)
            if hit:
                ids += self.encode(run) if run else []
                ids.append(self.added[hit])
                run, i = "", i + len(hit)
            else:
                run += text[i]
                i += 1
        return ids + (self.encode(run) if run else [])

    def save(self, out: Path) -> None:
        self.bpe.save(out, self.merges)


def _byte_level(pre) -> bool:
    if not isinstance(pre, dict):
        return False
    if pre.get("type") == "ByteLevel":
        return True
    return any(_byte_level(p) for p in pre.get("pretokenizers") or [])


def _split_pattern(pre):
    if not isinstance(pre, dict):
        return None
    if pre.get("type") == "Split":
        return (pre.get("pattern") or {}).get("Regex")
    for p in pre.get("pretokenizers") or []:
        found = _split_pattern(p)
        if found:
            return found
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt2"
    return None


TEMPLATE_MAX_CHARS = 65536    # the template's own text (real ones are a few thousand characters)
RENDERED_MAX_CHARS = 8192     # one rendered turn: the prefix the engine prefills on every question
TEMPLATE_MAX_SECONDS = 2.0    # rendering one turn takes milliseconds


class BoundedTemplates:
    """A checkpoint's chat template is a program from a stranger (issue 31, finding 1): it runs in jinja2's immutable
    sandbox, and here also under limits. {% include %}, {% import %} and {% extends %} are refused before it runs;
    string and list repetition and powers are checked before they are computed (`'x' * 10**9` asked for 4 GB); the
    output is read as it is made and cut off past RENDERED_MAX_CHARS (`'the' * 5000` wrote a 10,006-token prefix that
    every later `ask` paid for); a timer ends it after TEMPLATE_MAX_SECONDS (nested loops ran for minutes); and any
    failure inside it, a division by zero, a recursive macro, a range too large, is one line."""

    @staticmethod
    def environment(sandboxed):
        class Bounded(sandboxed):
            intercepted_binops = frozenset(["*", "**"])

            def call_binop(self, context, operator, left, right):
                if operator == "*":
                    for seq, n in ((left, right), (right, left)):
                        if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * max(n, 0) > RENDERED_MAX_CHARS:
                            raise OverflowError(f"repeats {len(seq)} items {n:,} times")
                if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
                    raise OverflowError(f"raises to the power {right}")
                return super().call_binop(context, operator, left, right)
        return Bounded(trim_blocks=True, lstrip_blocks=True)

    @staticmethod
    def render(env, template: str, jinja2, **variables) -> str:
        import signal as signals
        from jinja2 import nodes
        try:
            tree = env.parse(template)
        except jinja2.exceptions.TemplateError as e:
            fail(f"the chat template does not parse: {_first_line(e)}")
        for kind, word in ((nodes.Include, "include"), (nodes.Import, "import"), (nodes.FromImport, "import"), (nodes.Extends, "extends")):
            if next(tree.find_all(kind), None) is not None:
                fail(f"the chat template uses {{% {word} %}}: a template that loads other templates is not run")

        def out_of_time(_signum, _frame):
            raise TimeoutError(f"it ran for more than {TEMPLATE_MAX_SECONDS:g} s")
        previous = signals.signal(signals.SIGALRM, out_of_time)
        signals.setitimer(signals.ITIMER_REAL, TEMPLATE_MAX_SECONDS)
        parts, size = [], 0
        try:
            for chunk in env.from_string(template).generate(**variables):
                parts.append(chunk)
                size += len(chunk)
                if size > RENDERED_MAX_CHARS:
                    fail(f"the chat template renders more than {RENDERED_MAX_CHARS:,} characters for one turn")
        except ImportError_:
            raise
        except (Exception, RecursionError) as e:  # noqa: BLE001 - whatever the template did is one line
            fail(f"the chat template does not render: {type(e).__name__}: {_first_line(e)}")
        finally:
            signals.setitimer(signals.ITIMER_REAL, 0)
            signals.signal(signals.SIGALRM, previous)
        return "".join(parts)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return _short_text(text.splitlines()[0] if text else type(e).__name__)


def _short_text(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def chat_prompt(hf: Path, tok: Tokenizer, image_text: str) -> dict:
    """The chat template rendered for one user turn of [image, question], split around the image and the question."""
    cfg = read_json(hf / "tokenizer_config.json", "the tokenizer configuration", required=False) or {}
    template = cfg.get("chat_template")
    for extra in ("chat_template.json", "processor_config.json"):
        doc = read_json(hf / extra, "the chat template", required=False)
        if not template and isinstance(doc, dict) and doc.get("chat_template"):
            template = doc["chat_template"]
    if not template and (hf / "chat_template.jinja").is_file():
        template = (hf / "chat_template.jinja").read_text(encoding="utf-8")
    if isinstance(template, list):  # named templates: the default one
        template = next((t.get("template") for t in template if isinstance(t, dict) and t.get("name") == "default"), None)
    if not template:
        fail(f"{hf} has no chat template (tokenizer_config.json chat_template, chat_template.json or chat_template.jinja)")
    if not isinstance(template, str):
        fail(f"the chat template is {type(template).__name__}, not text")
    if len(template) > TEMPLATE_MAX_CHARS:
        fail(f"the chat template is {len(template):,} characters long (at most {TEMPLATE_MAX_CHARS:,})")
    try:
        template.encode("utf-8")
    except UnicodeEncodeError as e:
        fail(f"the chat template is not valid Unicode (a lone surrogate at character {e.start})")
    try:
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        fail("python3-jinja2 is needed to render the chat template: apt-get install python3-jinja2")

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = BoundedTemplates.environment(ImmutableSandboxedEnvironment)
    env.globals["raise_exception"] = raise_exception
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION_SLOT}]}]
    rendered = BoundedTemplates.render(env, template, jinja2, messages=messages, add_generation_prompt=True,
                                       bos_token=_token_text(cfg.get("bos_token")) or "",
                                       eos_token=_token_text(cfg.get("eos_token")) or "")
    if image_text not in rendered:
        fail(f"the chat template has no image slot: rendering an image turn gives no {image_text}")
    if rendered.count(image_text) > 1:
        fail(f"the chat template puts {rendered.count(image_text)} image placeholders for one image")
    before, rest = rendered.split(image_text, 1)
    if QUESTION_SLOT not in rest:
        fail("the chat template puts the question before the image; only image-then-question templates are supported yet")
    between, after = rest.split(QUESTION_SLOT, 1)
    if cfg.get("add_bos_token") and _token_text(cfg.get("bos_token")) and not before.startswith(_token_text(cfg["bos_token"])):
        before = _token_text(cfg["bos_token"]) + before
    return {"before_image": before, "before_question": between, "after_question": after, "template_sha256":
            hashlib.sha256(template.encode("utf-8")).hexdigest()}


def _token_text(t):
    return t.get("content") if isinstance(t, dict) else t


def stop_tokens(hf: Path, tok: Tokenizer, cfg_json: dict) -> list:
    """Token texts that end an answer: generation_config.json's eos ids, else the tokenizer's eos token."""
    gen = read_json(hf / "generation_config.json", "generation settings", required=False) or {}
    ids = gen.get("eos_token_id", cfg_json.get("eos_token_id"))
    ids = ids if isinstance(ids, list) else [ids] if ids is not None else []
    if len(ids) > 64 or any(not isinstance(i, int) or isinstance(i, bool) for i in ids):
        fail(f"generation_config.json eos_token_id is {_short(gen.get('eos_token_id', cfg_json.get('eos_token_id')))}: "
             f"it must be a token id or a list of at most 64")
    by_id = {i: t for t, i in tok.added.items()}
    stops = [by_id[i] for i in ids if i in by_id]
    if not stops:
        tc = read_json(hf / "tokenizer_config.json", "the tokenizer configuration", required=False) or {}
        eos = _token_text(tc.get("eos_token"))
        if eos in tok.added:
            stops = [eos]
    if not stops:
        fail("no stop token: generation_config.json eos_token_id names no added token, and tokenizer_config.json has no eos_token")
    return stops


# ---------------------------------------------------------------- export

STORAGE = {"dtype": "f32", "quant": None}  # the set's weight storage, chosen by --dtype and --quant (one import per process)


def export_graph(module, args, path: Path, spec: dict) -> dict:
    """export.export_graph, with graphs over LARGE_GRAPH bytes keeping their weights in `<file>.data`, and with
    --dtype f16 the weights stored as float16, and with --quant q8|q4 the MatMul weights in 8- or 4-bit blocks."""
    export.export_graph(module, args, path, spec, external_above=None if STORAGE["dtype"] == "f16" else LARGE_GRAPH)
    if STORAGE["quant"]:
        counts = quantize.matmul_nbits(path, quantize.BITS[STORAGE["quant"]], LARGE_GRAPH)
        STORAGE.setdefault("counts", {})[path.name] = counts
    if STORAGE["dtype"] == "f16":
        f16_storage(path)
    return spec


def f16_storage(path: Path, smallest: int = 1024) -> None:
    """Rewrites a graph with its float weights of `smallest` or more values stored as float16, each followed by a
    Cast to float32 under its old name: activations stay float32 (the contract), the file halves. ONNX Runtime
    folds the casts when it loads the graph, so memory at run time is the float32 one."""
    from onnx import helper, numpy_helper
    model = onnx.load(str(path))
    casts, kept = [], []
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and int(np.prod(init.dims)) >= smallest:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "_f16")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT, name=init.name + "_cast"))
        else:
            kept.append(init)
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    nodes = casts + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if model.ByteSize() > LARGE_GRAPH:
        onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=path.name + ".data")
        onnx.checker.check_model(str(path))
    else:
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(path))


def golden_image(size: int) -> np.ndarray:
    """size x size RGB (the tower's own input size: no resize, so every runtime sees the same pixels)."""
    from PIL import Image, ImageDraw
    img = Image.new("RGB", (size, size), (235, 235, 230))
    d = ImageDraw.Draw(img)
    s = size / 32
    d.ellipse((2 * s, 3 * s, 13 * s, 14 * s), fill=(220, 30, 30))
    d.rectangle((17 * s, 4 * s, 29 * s, 15 * s), fill=(30, 60, 220))
    d.polygon([(4 * s, 29 * s), (11 * s, 18 * s), (18 * s, 29 * s)], fill=(40, 180, 60))
    return np.asarray(img)


@torch.no_grad()
def reference_answer(decoder, embed, visual, prefix_ids, question_ids, new_tokens):
    """[prefix][visual][question part] prefilled, then greedy decoding: the engine's chat layout in PyTorch."""
    past = decoder.empty_past()
    P = len(prefix_ids)
    out = decoder(embed(torch.tensor([prefix_ids])), torch.ones(1, P, dtype=torch.long), torch.arange(P)[None], *past)
    past = list(out[2:])
    x = torch.cat([visual, embed(torch.tensor([question_ids]))], dim=1)
    T = x.shape[1]
    out = decoder(x, torch.ones(1, P + T, dtype=torch.long), torch.arange(P, P + T)[None], *past)
    logits, past = out[0][:, -1], list(out[2:])
    prefill = logits[0].clone()
    tokens, pos = [], P + T
    for _ in range(new_tokens):
        nxt = int(logits[0].argmax())
        tokens.append(nxt)
        out = decoder(embed(torch.tensor([[nxt]])), torch.ones(1, pos + 1, dtype=torch.long), torch.tensor([[pos]]), *past)
        logits, past = out[0][:, -1], list(out[2:])
        pos += 1
    return prefill, tokens


def import_checkpoint(hf: Path, out: Path, name: str | None, dtype: str = "f32", quant: str | None = None,
                      attention: str = "plain") -> dict:
    t0 = time.time()
    c = parse_config(hf)
    tower_cfg, text_cfg = c["tower"], c["text"]
    text_cfg.fused_attention = attention == "fused"
    tok = Tokenizer(hf)
    by_id = {i: t for t, i in tok.added.items()}
    if not isinstance(c["image_token"], int) or isinstance(c["image_token"], bool) or c["image_token"] not in by_id:
        fail(f"image_token_index {_short(c['image_token'])} is not an added token of tokenizer.json")
    image_text = by_id[c["image_token"]]
    prompt = chat_prompt(hf, tok, image_text)
    stops = stop_tokens(hf, tok, c["config"])
    if tok.count > text_cfg.vocab_size:
        fail(f"tokenizer has {tok.count} ids but the text model's vocab_size is {text_cfg.vocab_size}")
    pre = read_json(hf / "preprocessor_config.json", "the image preprocessing", required=False) or {}
    mean, std = (pre.get("image_mean", [0.48145466, 0.4578275, 0.40821073]), pre.get("image_std", [0.26862954, 0.26130258, 0.27577711]))
    for key, values in (("image_mean", mean), ("image_std", std)):
        if not isinstance(values, list) or len(values) != 3:
            fail(f"preprocessor_config.json {key} is {_short(values)}: it must be three numbers (R, G, B)")
    mean = [number_value(x, f"preprocessor_config.json image_mean[{i}]", -10.0, 10.0, integer=False) for i, x in enumerate(mean)]
    std = [number_value(x, f"preprocessor_config.json image_std[{i}]", 1e-6, 10.0, integer=False) for i, x in enumerate(std)]

    weights = Weights(hf)
    check_claims(c, weights)
    check_memory(weights.float_elements())
    try:
        tower = VisionTower(tower_cfg).eval()
        load_module(tower, weights, "vision_tower.vision_model.", "vision tower  ", rename=_tower_key)
        projector = Projector(tower_cfg.feature_dim, text_cfg.dim, c["projector_act"]).eval()
        load_module(projector, weights, "multi_modal_projector.", "projector     ")
        decoder = Decoder(text_cfg).eval()
        tied = c["tied"]
        if tied:
            decoder.lm_head.weight = decoder.embed_tokens.weight  # one tensor, read once
        load_module(decoder, weights, "language_model.", "text model    ", rename=text_key)
    finally:
        weights.close()
    STORAGE["dtype"], STORAGE["quant"], STORAGE["counts"] = dtype, quant, {}
    if dtype == "f16":
        # The reference (golden) and the graphs hold the same float16-rounded weights, so they still agree to 1e-4.
        with torch.no_grad():
            for module in (tower, projector, decoder):
                for p in module.parameters():
                    p.copy_(p.half().float())
    if quant:
        # After the f16 rounding, so the blocks are made from the stored values. As for f16, the reference and
        # every runtime compute with the weights as quantized (round-tripped here, stored in blocks by the export),
        # so the graphs differ from the golden only by ONNX Runtime's int8 activations (quantize.ACCURACY_LEVEL).
        for module in (tower, projector, decoder):
            quantize.round_trip_linears(module, quantize.BITS[quant])

    grid, P, Dv, D = tower_cfg.grid, tower_cfg.patches, tower_cfg.feature_dim, text_cfg.dim
    out.mkdir(parents=True)
    (out / "golden").mkdir()
    tok.save(out)
    S = tower_cfg.image_size
    vspec = export_graph(tower, (torch.randn(1, 3, S, S),), out / "vision.onnx",
                         {"inputs": io(pixel_values=("batch", 3, S, S)), "outputs": io(features=("batch", P, Dv))})
    dname = "text"
    folder = out / dname
    folder.mkdir()
    past = [torch.randn(1, text_cfg.kv_heads, 3, text_cfg.head_dim) for _ in range(2 * text_cfg.layers)]
    dspec = export_graph(decoder, (torch.randn(1, 2, D), torch.ones(1, 5, dtype=torch.long), torch.tensor([[3, 4]]), *past),
                         folder / "decoder.onnx", decoder_io(text_cfg))
    espec = export_graph(Embed(decoder), (torch.tensor([[1, 2, 3]]),), folder / "embed.onnx",
                         {"inputs": io(input_ids=("batch", "sequence")), "outputs": io(inputs_embeds=("batch", "sequence", D))})
    f, q = torch.randn(1, P, Dv), torch.randn(1, D)
    feat_in = io(features=("batch", P, Dv))
    compressors = []
    g = export_graph(FullCompressor(projector), (f,), folder / "full.onnx",
                     {"inputs": feat_in, "outputs": io(visual_tokens=("batch", P, D))})
    compressors.append({"kind": "full", "query_aware": False, "heads": 0, "params": n_params(projector),
                        "graphs": {str(P): {"file": f"{dname}/full.onnx", **g}}})
    for kind, cls in (("pool", PoolCompressor), ("query", QueryCompressor)):
        graphs = {}
        for side in pool_sides(grid):
            V = side * side
            module = cls(projector, grid, side)
            ins = {**feat_in, **(io(query_embedding=("batch", D)) if kind == "query" else {})}
            file = f"{kind}_V{V}.onnx"
            g = export_graph(module, (f, q) if kind == "query" else (f,), folder / file,
                             {"inputs": ins, "outputs": io(visual_tokens=("batch", V, D))})
            graphs[str(V)] = {"file": f"{dname}/{file}", **g}
        compressors.append({"kind": kind, "query_aware": kind == "query", "heads": 0, "params": n_params(projector),
                            "graphs": graphs})

    # Golden outputs: the PyTorch path the C# engine must match, on an image of the tower's own size.
    from PIL import Image
    rgb = golden_image(S)
    Image.fromarray(rgb).save(out / "golden" / "image.png")
    pixels = (torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None] / 255.0 - torch.tensor(mean)[None, :, None, None]) \
        / torch.tensor(std)[None, :, None, None]
    embed = Embed(decoder)
    prefix_ids = tok.encode_template(prompt["before_image"])
    question_ids = tok.encode_template(prompt["before_question"]) + tok.encode(GOLDEN_QUESTION) + tok.encode_template(prompt["after_question"])
    with torch.no_grad():
        features = tower(pixels)
        query_embedding = embed(torch.tensor([tok.encode(GOLDEN_QUESTION)]))[0].mean(dim=0, keepdim=True)  # (1, D)
        golden_side = 2 if grid >= 4 else 1
        visual = {"full": FullCompressor(projector)(features),
                  "pool": PoolCompressor(projector, grid, golden_side)(features),
                  "query": QueryCompressor(projector, grid, golden_side)(features, query_embedding)}
    answers = {}
    if not torch.isfinite(features).all():
        fail("the vision tower's features for the golden picture are not finite: the checkpoint's weights overflow float32")
    for kind, vis in visual.items():
        logits, tokens = reference_answer(decoder, embed, vis, prefix_ids, question_ids, GOLDEN_NEW)
        if not (torch.isfinite(vis).all() and torch.isfinite(logits).all()):
            fail(f"the golden picture's {kind} visual tokens or first logits are not finite: the checkpoint's weights overflow float32")
        answers[kind] = {"tokens": vis.shape[1], "visual_tokens": vis.flatten().tolist(),
                         "prefill_logits": logits.tolist(), "greedy_tokens": tokens}
    golden = {"layout": "chat", "image": "image.png", "query": GOLDEN_QUESTION, "pixel_values": pixels.flatten().tolist(),
              "features": features.flatten().tolist(), "prefix_ids": prefix_ids, "question_ids": question_ids,
              "query_embedding": query_embedding[0].tolist(), "decoder": dname, "answers": answers}
    (out / "golden" / "golden.json").write_text(json.dumps(golden))

    config_bytes = (hf / "config.json").read_bytes()
    vision_params = n_params(tower)
    manifest = {
        "format": "quecc-assistant-models/1",
        "name": name or hf.name,
        "description": f"Imported from {hf.name} ({tower_cfg.kind} + {c['text_type']}, LLaVA); docs/REAL_MODELS.md.",
        "created_by": created_by(),
        "vision": {"file": "vision.onnx", **vspec, "image_size": S, "patch_size": tower_cfg.patch_size, "grid": grid,
                   "dim": Dv, "multi_dim": 0, "layers": tower_cfg.layers, "heads": tower_cfg.heads,
                   "mlp_dim": tower_cfg.intermediate, "multi_layers": tower_cfg.feature_layers, "mean": mean, "std": std,
                   "params": vision_params, "kind": tower_cfg.kind, "class_token": tower_cfg.kind == "clip",
                   # CLIP's processor resizes the shortest edge and crops the centre; SigLIP's resizes the whole image.
                   **({"crop": "center"} if pre.get("do_center_crop") else {})},
        "decoders": [{"name": dname, "decoder": {"file": f"{dname}/decoder.onnx", **dspec},
                      "embed": {"file": f"{dname}/embed.onnx", **espec},
                      "dim": D, "layers": text_cfg.layers, "heads": text_cfg.heads, "kv_heads": text_cfg.kv_heads,
                      "head_dim": text_cfg.head_dim, "intermediate": text_cfg.intermediate, "vocab_size": text_cfg.vocab_size,
                      "rope_theta": text_cfg.rope_theta, "rms_eps": text_cfg.rms_eps,
                      "params": n_params(decoder),
                      "compressors": compressors}],
        "tokenizer": {"vocab": "vocab.json", "merges": "merges.txt", "pre_tokenizer": "qwen2", "special_tokens": tok.added},
        "prompt": {"stop": stops, "chat": {k: prompt[k] for k in ("before_image", "before_question", "after_question")},
                   "query_embedding": "question_embedding_mean"},
        "default": {"decoder": dname, "compressor": "full", "tokens": P},
        "scaling_law": paper_law() if c["text_type"] == "qwen2" else None,
        "world": None,
        "golden": "golden/golden.json",
        "source": {"importer": "tools/import_hf.py", "folder": hf.name, "architecture": "LlavaForConditionalGeneration",
                   "vision": tower_cfg.kind, "text": c["text_type"], "config_sha256": hashlib.sha256(config_bytes).hexdigest(),
                   "chat_template_sha256": prompt["template_sha256"], "vision_feature_layer": c["config"].get("vision_feature_layer", -2),
                   "vision_feature_select_strategy": c["strategy"], "tied_embeddings": tied,
                   "params": {"vision": vision_params, "projector": n_params(projector), "text": n_params(decoder)},
                   "preprocessor": {k: pre.get(k) for k in ("image_processor_type", "size", "crop_size", "resample", "do_center_crop") if k in pre},
                   "query_temperature": QUERY_TEMPERATURE, "weights": quant or dtype,
                   **({"quantization": {"bits": quantize.BITS[quant], "block": quantize.BLOCK, "symmetric": True,
                                        "accuracy_level": quantize.ACCURACY_LEVEL,
                                        "matrices": sum(c["matrices"] for c in STORAGE["counts"].values()),
                                        "quantized_params": sum(c["quantized_params"] for c in STORAGE["counts"].values())}}
                      if quant else {})},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return {"seconds": time.time() - t0, "patches": P, "params": manifest["source"]["params"]}


def created_by() -> str:
    """The command that made the set, as the manifest records it (a caller's --hand-over file is not part of it)."""
    if not sys.argv[0].endswith("import_hf.py"):
        return "tools/import_hf.py"
    args, skip = [], False
    for a in sys.argv[1:]:
        if skip or a == "--hand-over" or a.startswith("--hand-over="):
            skip = a == "--hand-over"
            continue
        args.append(a)
    return " ".join(["tools/import_hf.py", *args])


PAPER_LAW = Path(__file__).resolve().parents[1] / "docs" / "data" / "paper_law.json"


def paper_law() -> dict | None:
    """The paper's own law (Qwen-1.5 decoders, CLIP-336, TokenPacker), as the planner law of a Qwen set: marked as
    the paper's, not measured on this set. docs/data/paper_law.json is `assistant law fit --points
    shared/data/paper_scaling_points.csv --bounds paper --json`."""
    if not PAPER_LAW.is_file():
        return None
    from export import law_entry
    entry = law_entry(json.loads(PAPER_LAW.read_text()),
                      "the paper's fitted law (arXiv 2411.03312: LLaVA-Next-style VLMs, Qwen-1.5 LLMs, CLIP ViT-L/14-336, "
                      "TokenPacker; docs/data/paper_law.json), not measured on this set")
    return {**entry, "origin": "paper"}


def _tower_key(name: str) -> str:
    return name.replace("layers.", "encoder.layers.", 1) if name.startswith("layers.") else name


def main(argv=None) -> int:
    import warnings
    warnings.filterwarnings("ignore")  # the ONNX exporter's shape-inference notes are not the user's concern
    ap = argparse.ArgumentParser(prog="import_hf.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_dir", type=Path, help="the downloaded checkpoint folder (config.json, *.safetensors, tokenizer.json, ...)")
    ap.add_argument("--out", type=Path, required=True, help="model set folder to create (must not exist)")
    ap.add_argument("--name", help="set name recorded in the manifest (default: the checkpoint folder's name)")
    ap.add_argument("--dtype", choices=["f32", "f16"], default="f32",
                    help="weight storage: f32, or f16 (half the disk; weights rounded to float16, computed in float32)")
    ap.add_argument("--quant", choices=["q8", "q4"],
                    help="block-quantized MatMul weights (32 a block, symmetric, like llama.cpp's Q8_0/Q4_0): "
                         "about 1/4 (q8) or 1/7 (q4) of the f32 bytes for those weights, int8 dot products")
    ap.add_argument("--attention", choices=["plain", "fused"], default="plain",
                    help="the decoder's attention: plain ONNX operators (every execution provider), or fused as ONNX "
                         "Runtime's GroupQueryAttention contrib op (one node a layer; the same arithmetic and speed "
                         "on the CPU here, docs/PERFORMANCE.md)")
    ap.add_argument("--hand-over", type=Path, metavar="FILE",
                    help="leave the finished set in its scratch folder beside --out and write {partial, summary} to FILE as "
                         "JSON, for a caller that checks the set and moves it into place itself (`assistant models import` "
                         "does: it loads the set with the engine's checks and runs its golden picture first)")
    args = ap.parse_args(argv)
    scratch.stop_on_signals()
    hf, out = args.hf_dir, args.out
    if not hf.is_dir():
        print(f"error: checkpoint folder not found: {hf}", file=sys.stderr)
        return 2
    try:
        # A scratch folder unique to this run, beside the set; removed, with any parent folder made for --out, on
        # an error, Ctrl+C or SIGTERM (tools/scratch.py).
        with scratch.folder_for(out, keep_finished=args.hand_over is not None) as partial:
            shutil.rmtree(partial)
            result = import_checkpoint(hf, partial, args.name, args.dtype, args.quant, args.attention)
            p = result["params"]
            summary = (f"imported {hf} -> {out} in {result['seconds']:.1f}s: vision {p['vision']:,}, projector "
                       f"{p['projector']:,}, text {p['text']:,} parameters; {result['patches']} patch tokens")
            if args.hand_over is not None:
                args.hand_over.write_text(json.dumps({"partial": str(partial.resolve()), "summary": summary}))
            else:
                scratch.place(partial, out)  # the set appears whole, or not at all, and never over another
    except (ImportError_, scratch.Unplaceable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory while importing; the checkpoint needs more RAM than is free", file=sys.stderr)
        return 2
    except BaseException as e:  # the last handler: the run's signal (tools/scratch.py), then anything the checks missed
        if (code := scratch.signal_exit(e)) is not None:
            return code
        if not isinstance(e, Exception) or os.environ.get("ASSISTANT_DEBUG") == "1":
            raise
        print(f"error: the checkpoint could not be imported ({type(e).__name__}: {_first_line(e)}); nothing was written "
              f"(ASSISTANT_DEBUG=1 shows where)", file=sys.stderr)
        return 2
    if args.hand_over is None:
        print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
