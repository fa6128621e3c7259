"""Reading a llava-hf checkpoint folder, which is untrusted input: the one library behind every tool that takes one.

tools/import_hf.py (the engine's set), tools/export_gguf.py (llama.cpp's GGUF pair, the independent check) and
tools/fuzz_checkpoint.py read checkpoints only through this module, so every check runs for all of them:
config.json (architecture, sizes bounded before anything is allocated), the weights (strict safetensors headers,
shards, dtypes, finite values, a peak-memory estimate against what the machine has), tokenizer.json and the
added tokens, the chat template (rendered in jinja2's sandbox, bounded in size and time), the stop tokens and
the image normalisation (CLIP's mean and standard deviation when the checkpoint names none). Each refusal is a
CheckpointError whose message is one line for the user.
"""
import hashlib
import json
import math
import os
import stat
import sys
from pathlib import Path

import torch

import bpe_tokenizer
import safetensors_io
from decoder import Decoder, DecoderConfig
from hf_llava import ACTIVATIONS, CLIP_MEAN, CLIP_STD, Connector, Projector, TowerConfig, VisionTower

QUESTION_SLOT = "\u0000QUESTION\u0000"  # where chat_prompt splits the rendered template
SUPPORTED_TEXT = ("qwen2", "llama", "mistral")
VISION_KINDS = {"clip_vision_model": "clip", "siglip_vision_model": "siglip", "idefics3_vision": "siglip"}
# The families read, by config.json's model_type: LLaVA (llava-hf's LlavaForConditionalGeneration) and Idefics3
# (Idefics3ForConditionalGeneration: SmolVLM).
FAMILIES = {"llava": "LlavaForConditionalGeneration", "idefics3": "Idefics3ForConditionalGeneration"}


class CheckpointError(Exception):
    """A checkpoint these tools cannot take; the message is one line for the user."""


ImportError_ = CheckpointError  # the name the importer's callers have caught it by


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


def showing_progress() -> bool:
    """Progress goes to a terminal, or wherever `assistant models import` (which sets ASSISTANT_PROGRESS=1) shows it."""
    return sys.stderr.isatty() or os.environ.get("ASSISTANT_PROGRESS") == "1"


def stage(message: str) -> None:
    """One line about a stage of the work, where progress is shown."""
    if showing_progress():
        print(message, file=sys.stderr, flush=True)


def progress(label: str, done: int, total: int) -> None:
    if showing_progress():
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
        fail(f"{name} is {short(value)}: it must be {kind} from {lo:g} to {hi:g}")
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
    if c.get("family") == "idefics3":
        s = c["scale_factor"]
        expect("multi_modal_projector.connector.modality_projection.proj.weight", [tx.dim, tw.hidden * s * s],
               f"scale_factor {s} (the connector takes {s}x{s} patches of vision_config hidden_size)")


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


def peak_memory(float_elements: int) -> int:
    """The import's estimated peak resident bytes for this many weights."""
    return int(float_elements * 4 * PEAK_PER_WEIGHT_BYTE) + PEAK_BASE


def check_memory(float_elements: int) -> None:
    """Refuses, before building anything, an import whose estimated peak (from the headers' shapes) exceeds the memory
    available now, instead of being killed by the kernel half way; says the estimate first. ASSISTANT_IMPORT_MEMORY_CHECK=0
    skips the refusal."""
    need = peak_memory(float_elements)
    have = available_memory()
    stage(f"{float_elements / 1e6:,.1f} M parameters: the import needs about {need / 2**30:.1f} GB of memory at its peak"
          + (f" ({have / 2**30:.1f} GB available now)" if have is not None else ""))
    if os.environ.get("ASSISTANT_IMPORT_MEMORY_CHECK") == "0":
        return
    if have is not None and need > have:
        fail(f"importing these weights ({float_elements / 1e9:.2f} G parameters) needs about {need / 2**30:.1f} GB of memory, "
             f"and {have / 2**30:.1f} GB is available (docs/REAL_MODELS.md; ASSISTANT_IMPORT_MEMORY_CHECK=0 tries anyway)")


def parse_config(hf: Path) -> dict:
    config = read_json(hf / "config.json", "the model configuration")
    if not isinstance(config, dict):
        fail("config.json is not a JSON object")
    for key in ("vision_config", "text_config", "quantization_config"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            fail(f"config.json {key} is {short(config[key])}: it must be an object")
    model_type = config.get("model_type")
    archs = config.get("architectures") or []
    archs = [_short_text(str(a), 60) for a in archs] if isinstance(archs, list) else [short(archs)]
    if model_type not in FAMILIES:
        fail(f"architecture {short(model_type)} ({', '.join(archs) or 'no architectures listed'}) is not supported: "
             f"this importer reads " + " and ".join(f"{a} (model_type '{t}')" for t, a in FAMILIES.items()))
    idefics3 = model_type == "idefics3"
    q = config.get("quantization_config") or (config.get("text_config") or {}).get("quantization_config")
    if q and not isinstance(q, dict):
        q = {"quant_method": short(q)}
    if q:
        fail(f"quantized checkpoint ({q.get('quant_method', 'unknown method')}, {q.get('bits', '?')}-bit) is not supported: "
             f"import the unquantized (F32/F16/BF16) weights")
    vc, tc = config.get("vision_config") or {}, config.get("text_config") or {}
    vkind = VISION_KINDS.get(vc.get("model_type", "idefics3_vision" if idefics3 else None))
    if vkind is None or (idefics3 and vc.get("model_type", "idefics3_vision") != "idefics3_vision"):
        fail(f"vision tower {short(vc.get('model_type'))} is not supported (this importer reads clip_vision_model and "
             f"siglip_vision_model in LLaVA, idefics3_vision in Idefics3)")
    ttype = tc.get("model_type")
    if ttype not in SUPPORTED_TEXT:
        fail(f"text model {short(ttype)} is not supported (this importer reads {', '.join(SUPPORTED_TEXT)})")
    if tc.get("rope_scaling"):
        fail(f"text model rope_scaling {short(tc['rope_scaling'])} is not supported yet (plain rotary positions only)")
    if tc.get("mlp_bias") or (ttype != "qwen2" and tc.get("attention_bias")):
        fail("text model with attention_bias or mlp_bias on every projection is not supported yet")
    for key, act in (("vision_config.hidden_act", vc.get("hidden_act", "quick_gelu" if vkind == "clip" else "gelu_pytorch_tanh")),
                     ("projector_hidden_act", config.get("projector_hidden_act", "gelu")), ("text_config.hidden_act", tc.get("hidden_act", "silu"))):
        if not isinstance(act, str) or act not in ACTIVATIONS or (key == "text_config.hidden_act" and act != "silu"):
            fail(f"{key} {short(act)} is not supported")
    if config.get("image_grid_pinpoints") or vc.get("image_grid_pinpoints"):
        fail("any-resolution tiling (image_grid_pinpoints, LLaVA-NeXT) is not supported yet")

    vw, tw = "vision_config.", "text_config."
    n_layers = number(vc, "num_hidden_layers", vw, 1, 256)
    # Idefics3 reads the tower's last layer through its post-layernorm; the config has no feature layer to choose.
    layer = -1 if idefics3 else config.get("vision_feature_layer", -2)
    wanted = layer if isinstance(layer, list) else [layer]
    if not wanted or any(isinstance(l, bool) or not isinstance(l, int) for l in wanted):
        fail(f"vision_feature_layer is {short(layer)}: it must be a layer index or a non-empty list of them")
    resolved = []
    for l in wanted:
        r = l if l >= 0 else n_layers + 1 + l
        if not 0 <= r <= n_layers:
            fail(f"vision_feature_layer {l} is outside the tower's hidden states 0..{n_layers}")
        resolved.append(r)
    strategy = "full" if idefics3 else config.get("vision_feature_select_strategy", "default")
    if strategy not in ("default", "full"):
        fail(f"vision_feature_select_strategy {short(strategy)} is not supported (default or full)")
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
                        eps=number(vc, "layer_norm_eps", vw, 1e-12, 0.1, default=1e-5 if vkind == "clip" else 1e-6, integer=False),
                        post_norm=idefics3)
    scale = 1
    if idefics3:
        scale = number(config, "scale_factor", "", 1, 64, default=2)
        if tower.grid % scale:
            fail(f"scale_factor {scale} does not divide the {tower.grid} x {tower.grid} patch grid "
                 f"(image_size {image_size} / patch_size {patch}): the connector's pixel shuffle needs whole blocks")
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
    return {"config": config, "family": model_type, "architecture": FAMILIES[model_type], "tower": tower, "text": text,
            "text_type": ttype, "tied": bool(tied), "projector_act": config.get("projector_hidden_act", "gelu"),
            "image_token": config.get("image_token_id" if idefics3 else "image_token_index"),
            "strategy": strategy, "vision_layers_total": n_layers, "scale_factor": scale, "out_grid": tower.grid // scale}


# ---------------------------------------------------------------- weights

OLD_PREFIXES = (("model.language_model.", "language_model.model."), ("model.vision_tower.", "vision_tower."),
                ("model.multi_modal_projector.", "multi_modal_projector."), ("lm_head.", "language_model.lm_head."),
                # Idefics3's names, onto the same canonical ones
                ("model.text_model.", "language_model.model."), ("model.vision_model.", "vision_tower.vision_model."),
                ("model.connector.", "multi_modal_projector.connector."))
QUANT_SUFFIXES = (".qweight", ".qzeros", ".scales", ".g_idx", ".weight_packed", ".absmax", ".quant_state")


def canonical(name: str) -> str:
    """A checkpoint key in the older llava-hf names (the newer layout is mapped onto them)."""
    for new, old in OLD_PREFIXES:
        if name.startswith(new):
            return old + name[len(new):]
    return name


def short(value) -> str:
    return _short_text(repr(value), 80)


def shard_path(hf: Path, name: str, listed_in: str) -> Path:
    """A shard the checkpoint names: a plain file name inside the checkpoint folder (never a path: an index naming
    /etc/shadow or ../x.safetensors read files from outside the folder the user named), whose entry may be a link, as
    the Hugging Face cache's snapshots are (to ../../blobs/...), but must lead to a regular file: not a device (a
    link to /dev/zero or /proc/self/mem), a pipe or a folder."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or Path(name).is_absolute():
        fail(f"{listed_in} names the shard {short(name)}: a shard is a plain file name inside the checkpoint folder")
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
                    fail(f"{index.name} maps {short(name)} to {short(file)}: tensor and shard names are strings")
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

    kind = "byte_level"

    def __init__(self, hf: Path, doc=None):
        doc = doc if doc is not None else read_tokenizer_json(hf)
        if doc is None:
            fail(f"{hf} has no tokenizer.json")
        model = doc["model"]
        if model.get("type") != "BPE":
            fail(f"tokenizer model type {short(model.get('type'))} is not supported (byte-level BPE only)")
        if model.get("byte_fallback") or not _byte_level(doc.get("pre_tokenizer")):
            fail("tokenizer.json is neither byte-level BPE nor SentencePiece BPE with byte fallback: not supported")
        self.split = _split_kind(doc.get("pre_tokenizer"))
        if self.split is None:
            fail("tokenizer pre-tokenizer is not one this importer reads (Qwen2's split, or SmolLM2's digits then GPT-2's)")
        self.added = self._added(doc.get("added_tokens"))
        vocab = self._vocab(model.get("vocab"))
        for text, i in self.added.items():
            if vocab.get(text) == i:
                del vocab[text]
        ids = set(vocab.values())
        clash = [t for t, i in self.added.items() if i in ids]
        if clash:
            fail(f"added token {short(clash[0])} has an id that the BPE vocabulary also uses")
        missing = [c for c in bpe_tokenizer.BYTE_CHARS.values() if c not in vocab]
        if missing:
            fail(f"tokenizer.json's vocabulary lacks the byte token {short(missing[0])} ({len(missing)} of the 256 bytes are "
                 f"missing): a byte-level BPE needs all 256, or some text cannot be encoded")
        self.vocab, self.merges = vocab, self._merges(model.get("merges"), vocab)
        self.bpe = bpe_tokenizer.BpeTokenizer(vocab, self.merges, self.split)
        self.bpe.special = dict(self.added)
        self.count = max(list(vocab.values()) + list(self.added.values())) + 1

    @staticmethod
    def _text(value, what: str) -> str:
        if not isinstance(value, str) or not value or len(value) > MAX_TOKEN_CHARS:
            fail(f"tokenizer.json {what} {short(value)} is not a token: a text of 1 to {MAX_TOKEN_CHARS:,} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            fail(f"tokenizer.json {what} {short(value)} is not valid Unicode (a lone surrogate)")
        return value

    @staticmethod
    def _id(value, what: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID:
            fail(f"tokenizer.json gives {what} the id {short(value)}: an id is an integer from 0 to {MAX_ID:,}")
        return value

    def _added(self, entries) -> dict:
        if entries is None:
            return {}
        if not isinstance(entries, list) or len(entries) > 65536:
            fail("tokenizer.json's added_tokens is not a list of at most 65,536 tokens")
        added, ids = {}, set()
        for t in entries:
            if not isinstance(t, dict):
                fail(f"tokenizer.json has an added token {short(t)} that is not an object")
            text = self._text(t.get("content"), "added token")
            i = self._id(t.get("id"), f"added token {short(text)}")
            if text in added or i in ids:
                fail(f"tokenizer.json lists the added token {short(text)} or its id {i} twice")
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
            self._id(i, f"vocabulary entry {short(text)}")
            if i in seen:
                fail(f"tokenizer.json gives the id {i} to two vocabulary entries, {short(seen[i])} and {short(text)}")
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
                fail(f"tokenizer.json has a malformed merge {short(m)} (two tokens expected)")
            a, b = parts
            for token in (a, b, a + b):
                if token not in vocab:
                    fail(f"tokenizer.json's merge {short(a + ' ' + b)} names {short(token)}, which is not in its vocabulary")
            out.append((a, b))
        return out

    def encode(self, text: str, fresh: bool = False) -> list:
        """Plain text (a byte-level BPE has no dummy prefix: `fresh` is for SentencePieceTokenizer's signature)."""
        return self.bpe.encode(text)

    def encode_template(self, text: str, fresh: bool = False) -> list:
        return _encode_template(self, text, fresh)

    def save(self, out: Path) -> None:
        self.bpe.save(out, self.merges)

    def manifest(self) -> dict:
        return {"vocab": "vocab.json", "merges": "merges.txt", "pre_tokenizer": self.split, "special_tokens": self.added}


def read_tokenizer_json(hf: Path):
    """tokenizer.json as a dict, bounded in size; None where the folder has none."""
    path = hf / "tokenizer.json"
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_TOKENIZER_BYTES:
        fail(f"tokenizer.json is {path.stat().st_size / 2**20:.0f} MB: more than {MAX_TOKENIZER_BYTES >> 20} MB is not a tokenizer this importer reads")
    doc = read_json(path, "the tokenizer")
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict):
        fail("tokenizer.json has no model object")
    return doc


def read_tokenizer(hf: Path):
    """The checkpoint's tokenizer: a byte-level BPE from tokenizer.json (Qwen2's), or a SentencePiece BPE with byte
    fallback from tokenizer.model (Llama 2's, Vicuna's), whose tokenizer.json says so with `byte_fallback`."""
    doc = read_tokenizer_json(hf)
    model = doc["model"] if doc else None
    if model is not None and model.get("type") != "BPE":
        fail(f"tokenizer model type {short(model.get('type'))} is not supported (byte-level BPE as Qwen2's, or "
             f"SentencePiece BPE with byte fallback as Llama 2's)")
    if model is None or model.get("byte_fallback"):
        if not (hf / "tokenizer.model").is_file():
            fail("the tokenizer is SentencePiece-style BPE with byte fallback (Llama 2's), which this importer reads from "
                 "tokenizer.model, and the checkpoint folder has none" if model is not None else
                 "the checkpoint folder has neither tokenizer.json nor tokenizer.model")
        return SentencePieceTokenizer(hf, doc)
    return Tokenizer(hf, doc)


# SentencePiece's ModelProto enums (sentencepiece_model.proto).
SPM_TYPES = {1: "Unigram", 2: "BPE", 3: "Word", 4: "Char"}
SPM_NORMAL, SPM_UNKNOWN, SPM_CONTROL, SPM_USER_DEFINED, SPM_UNUSED, SPM_BYTE = 1, 2, 3, 4, 5, 6


class SentencePieceTokenizer:
    """tokenizer.model (a SentencePiece BPE with byte fallback, Llama 2's) read with Debian's python3-sentencepiece,
    and its added tokens from tokenizer.json (or tokenizer_config.json's added_tokens_decoder). Encoding follows
    llama.cpp's rule for a prompt: every run of text that begins a fragment (the prompt's start, or right after a
    special token or the image) gets SentencePiece's dummy prefix, text that continues a run gets none; the engine's
    tokenizer (Inference/TextTokenizer.cs) does the same with Microsoft.ML.Tokenizers."""

    kind = "sentencepiece"

    def __init__(self, hf: Path, doc):
        try:
            import sentencepiece as spm
            from sentencepiece import sentencepiece_model_pb2 as pb
        except ImportError:
            fail("python3-sentencepiece is needed to read tokenizer.model: apt-get install python3-sentencepiece")
        path = hf / "tokenizer.model"
        if path.stat().st_size > MAX_TOKENIZER_BYTES:
            fail(f"tokenizer.model is {path.stat().st_size / 2**20:.0f} MB: more than {MAX_TOKENIZER_BYTES >> 20} MB is not a tokenizer this importer reads")
        self.model_bytes = path.read_bytes()
        proto = pb.ModelProto()
        try:
            proto.ParseFromString(self.model_bytes)
        except Exception as e:  # the protobuf library's DecodeError, and whatever a damaged message raises
            fail(f"tokenizer.model is not a SentencePiece model ({first_line(e)})")
        kind = proto.trainer_spec.model_type
        if kind != 2:
            fail(f"tokenizer.model's model type {SPM_TYPES.get(kind, kind)} is not supported (SentencePiece BPE with "
                 f"byte fallback, as Llama 2's, only)")
        if not proto.trainer_spec.byte_fallback:
            fail("tokenizer.model has no byte fallback: text outside its pieces would become <unk> (Llama 2's has it)")
        norm = proto.normalizer_spec
        if (norm.name not in ("identity", "") or norm.precompiled_charsmap or norm.remove_extra_whitespaces
                or not norm.add_dummy_prefix or proto.trainer_spec.treat_whitespace_as_suffix):
            fail(f"tokenizer.model's normaliser ({short(norm.name)}, remove_extra_whitespaces {norm.remove_extra_whitespaces}, "
                 f"add_dummy_prefix {norm.add_dummy_prefix}) is not Llama 2's (identity, spaces kept, a dummy prefix): not supported")
        if not 0 < len(proto.pieces) <= MAX_VOCAB:
            fail(f"tokenizer.model has {len(proto.pieces):,} pieces; 1 to {MAX_VOCAB:,} are read")
        self.pieces = []
        for i, p in enumerate(proto.pieces):
            text = self._text(p.piece, f"piece {i}")
            self.pieces.append((text, float(p.score), int(p.type)))
        if not all(math.isfinite(s) for _, s, _ in self.pieces):
            fail("tokenizer.model has a piece whose score is not a finite number")
        byte_pieces = {t for t, _, k in self.pieces if k == SPM_BYTE}
        if len(byte_pieces) != 256 or any(f"<0x{b:02X}>" not in byte_pieces for b in range(256)):
            fail(f"tokenizer.model has {len(byte_pieces)} byte pieces: byte fallback needs the 256 of <0x00> to <0xFF>")
        self.vocab = {t: i for i, (t, _, _) in enumerate(self.pieces)}
        if len(self.vocab) != len(self.pieces):
            fail("tokenizer.model lists a piece twice")
        controls = {t: i for i, (t, _, k) in enumerate(self.pieces) if k in (SPM_CONTROL, SPM_UNKNOWN)}
        listed = Tokenizer._added(self, doc.get("added_tokens")) if doc else self._config_added(hf)
        for text, i in listed.items():
            if i < len(self.pieces) and self.pieces[i][0] != text:
                fail(f"added token {short(text)} has the id {i} of the piece {short(self.pieces[i][0])} in tokenizer.model")
            if i < len(self.pieces) and self.pieces[i][2] not in (SPM_CONTROL, SPM_UNKNOWN, SPM_USER_DEFINED):
                fail(f"added token {short(text)} is the ordinary piece {i} of tokenizer.model: it would be read as special")
        self.added = {**controls, **listed}
        self.bos = proto.trainer_spec.bos_id
        self.eos = proto.trainer_spec.eos_id
        self.unk = proto.trainer_spec.unk_id
        self.count = max([len(self.pieces)] + [i + 1 for i in self.added.values()])
        self.merges = []
        self._prefixed = spm.SentencePieceProcessor(model_proto=self.model_bytes)
        proto.normalizer_spec.add_dummy_prefix = False
        self._plain = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())

    _text = staticmethod(Tokenizer._text)
    _id = staticmethod(Tokenizer._id)

    def _config_added(self, hf: Path) -> dict:
        cfg = read_json(hf / "tokenizer_config.json", "the tokenizer configuration", required=False) or {}
        decoder = cfg.get("added_tokens_decoder") or {}
        if not isinstance(decoder, dict):
            fail("tokenizer_config.json's added_tokens_decoder is not an object")
        entries = []
        for key, value in decoder.items():
            if not isinstance(key, str) or not key.isdigit() or not isinstance(value, dict):
                fail(f"tokenizer_config.json's added_tokens_decoder has an entry {short(key)} that is not id: token")
            entries.append({"id": int(key), "content": value.get("content")})
        return Tokenizer._added(self, entries)

    def encode(self, text: str, fresh: bool = False) -> list:
        if not text:
            return []
        return list((self._prefixed if fresh else self._plain).encode(text))

    def encode_template(self, text: str, fresh: bool = False) -> list:
        return _encode_template(self, text, fresh)

    def save(self, out: Path) -> None:
        (out / "tokenizer.model").write_bytes(self.model_bytes)

    def manifest(self) -> dict:
        return {"model": "tokenizer.model", "pre_tokenizer": "sentencepiece", "special_tokens": self.added}

    def gguf(self, g, vocab_size: int, stops: list, arrays: dict) -> None:
        """llama.cpp's SentencePiece vocabulary ("llama"): pieces, scores and types, padded to the embedding's rows."""
        tokens, scores, types = [], [], []
        added = {i: t for t, i in self.added.items()}
        for i in range(vocab_size):
            if i < len(self.pieces):
                t, s, k = self.pieces[i]
            elif i in added:
                t, s, k = added[i], 0.0, SPM_CONTROL
            else:
                t, s, k = f"[PAD{i}]", 0.0, SPM_UNUSED
            tokens.append(t)
            scores.append(s)
            types.append(k)
        g.string("tokenizer.ggml.model", "llama")
        g.array("tokenizer.ggml.tokens", arrays["string"], tokens)
        g.array("tokenizer.ggml.scores", arrays["f32"], scores)
        g.array("tokenizer.ggml.token_type", arrays["i32"], types)
        g.u32("tokenizer.ggml.bos_token_id", self.bos)
        g.u32("tokenizer.ggml.eos_token_id", self.added[stops[0]])
        g.u32("tokenizer.ggml.unknown_token_id", self.unk)
        g.bool("tokenizer.ggml.add_bos_token", False)
        g.bool("tokenizer.ggml.add_space_prefix", True)


def _encode_template(tok, text: str, fresh: bool) -> list:
    """Template text: added tokens are recognised (longest first), the rest is plain text; each run after an added
    token begins a fragment, and the first one does where `fresh` says so."""
    ids, i, run = [], 0, ""
    specials = sorted(tok.added, key=len, reverse=True)
    while i < len(text):
        hit = next((s for s in specials if text.startswith(s, i)), None)
        if hit:
            ids += tok.encode(run, fresh) if run else []
            ids.append(tok.added[hit])
            run, i, fresh = "", i + len(hit), True
        else:
            run += text[i]
            i += 1
    return ids + (tok.encode(run, fresh) if run else [])


def encode_pieces(tok, pieces: list) -> tuple:
    """The ids of a run of prompt pieces, ("text", template text) or ("question", user text), as the engine's
    PromptLayout.Encode makes them: each piece begins a fragment at the run's start or right after a special token.
    Returns (ids, the question's own ids)."""
    special = set(tok.added.values())
    ids, question = [], []
    for kind, text in pieces:
        fresh = not ids or ids[-1] in special
        if kind == "text":
            ids += tok.encode_template(text, fresh)
        else:
            question = tok.encode(text, fresh)
            ids += question
    return ids, question


def _byte_level(pre) -> bool:
    if not isinstance(pre, dict):
        return False
    if pre.get("type") == "ByteLevel":
        return True
    return any(_byte_level(p) for p in pre.get("pretokenizers") or [])


def _split_kind(pre):
    """"qwen2" for a Split on Qwen2's pattern before a ByteLevel without its own regex; "smollm" for Digits (each digit
    alone) before a ByteLevel with GPT-2's regex; None for anything else."""
    if _split_pattern(pre) == bpe_tokenizer.QWEN2_PATTERN:
        return "qwen2"
    parts = pre.get("pretokenizers") if isinstance(pre, dict) and pre.get("type") == "Sequence" else None
    if (isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, dict) for p in parts)
            and parts[0].get("type") == "Digits" and parts[0].get("individual_digits") is True
            and parts[1].get("type") == "ByteLevel" and parts[1].get("use_regex", True) and not parts[1].get("add_prefix_space")):
        return "smollm"
    return None


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
        from jinja2 import nodes
        from jinja2.ext import Extension

        class GenerationBlocks(Extension):
            """transformers' {% generation %} ... {% endgeneration %}, which marks the assistant's text for training
            masks (llava-1.5-*-hf's template has it): rendered as its body, as transformers renders it."""
            tags = {"generation"}

            def parse(self, parser):
                lineno = next(parser.stream).lineno
                return nodes.Scope(parser.parse_statements(("name:endgeneration",), drop_needle=True), lineno=lineno)

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
        return Bounded(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlocks])

    @staticmethod
    def render(env, template: str, jinja2, **variables) -> str:
        import signal as signals
        from jinja2 import nodes
        try:
            tree = env.parse(template)
        except jinja2.exceptions.TemplateError as e:
            fail(f"the chat template does not parse: {first_line(e)}")
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
            fail(f"the chat template does not render: {type(e).__name__}: {first_line(e)}")
        finally:
            signals.setitimer(signals.ITIMER_REAL, 0)
            signals.signal(signals.SIGALRM, previous)
        return "".join(parts)


def first_line(e: BaseException) -> str:
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
        fail(f"generation_config.json eos_token_id is {short(gen.get('eos_token_id', cfg_json.get('eos_token_id')))}: "
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


def tower_key(name: str) -> str:
    """A CLIP tower's weight name as VisionTower names it."""
    return name.replace("layers.", "encoder.layers.", 1) if name.startswith("layers.") else name


# ---------------------------------------------------------------- image normalisation



def image_preprocessing(hf: Path) -> dict:
    """What preprocessor_config.json says about the picture: "mean" and "std" (CLIP's when absent), each three bounded
    numbers; "center_crop" (CLIP's processor resizes the shortest edge and crops the centre, SigLIP's resizes the
    whole image); and "recorded", the fields a set's manifest keeps as its source."""
    pre = read_json(hf / "preprocessor_config.json", "the image preprocessing", required=False) or {}
    if not isinstance(pre, dict):
        fail(f"preprocessor_config.json is {short(pre)}: it must be a JSON object")
    mean, std = pre.get("image_mean", list(CLIP_MEAN)), pre.get("image_std", list(CLIP_STD))
    for key, values in (("image_mean", mean), ("image_std", std)):
        if not isinstance(values, list) or len(values) != 3:
            fail(f"preprocessor_config.json {key} is {short(values)}: it must be three numbers (R, G, B)")
    mean = [number_value(x, f"preprocessor_config.json image_mean[{i}]", -10.0, 10.0, integer=False) for i, x in enumerate(mean)]
    std = [number_value(x, f"preprocessor_config.json image_std[{i}]", 1e-6, 10.0, integer=False) for i, x in enumerate(std)]
    recorded = {k: pre.get(k) for k in ("image_processor_type", "size", "crop_size", "resample", "do_center_crop") if k in pre}
    return {"mean": mean, "std": std, "center_crop": bool(pre.get("do_center_crop")), "recorded": recorded}


# ---------------------------------------------------------------- the model

def load_llava(hf: Path, c: dict, text: bool = True) -> dict:
    """The checkpoint's modules with its weights: "tower" and "projector", and with `text` the "decoder" (its output
    embedding tied to the input one where the config says so, one tensor read once). The weights' claims are checked
    against the config and, where the text model is read (most of a checkpoint), the import's peak memory against
    what the machine has, before a module is built."""
    tower_cfg, text_cfg = c["tower"], c["text"]
    weights = Weights(hf)
    try:
        check_claims(c, weights)
        if text:
            check_memory(weights.float_elements())
        tower = VisionTower(tower_cfg).eval()
        load_module(tower, weights, "vision_tower.vision_model.", "vision tower  ", rename=tower_key)
        if c["family"] == "idefics3":
            projector = Connector(tower_cfg.feature_dim, text_cfg.dim, c["scale_factor"]).eval()
            load_module(projector, weights, "multi_modal_projector.connector.modality_projection.", "connector     ")
        else:
            projector = Projector(tower_cfg.feature_dim, text_cfg.dim, c["projector_act"]).eval()
            load_module(projector, weights, "multi_modal_projector.", "projector     ")
        parts = {"tower": tower, "projector": projector}
        if text:
            decoder = Decoder(text_cfg).eval()
            if c["tied"]:
                decoder.lm_head.weight = decoder.embed_tokens.weight
            load_module(decoder, weights, "language_model.", "text model    ", rename=text_key)
            parts["decoder"] = decoder
        return parts
    finally:
        weights.close()
