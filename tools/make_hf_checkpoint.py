"""Writes a random-weight LLaVA checkpoint folder in the layout llava-hf repositories download as, for the
importer's tests and for timing real shapes (nothing it writes is committed).

  /usr/bin/python3 tools/make_hf_checkpoint.py --out /tmp/llava-tiny                     # CLIP + Qwen2, BF16, 2 shards
  /usr/bin/python3 tools/make_hf_checkpoint.py --out /tmp/l --vision siglip --text llama --layout new --untied
  /usr/bin/python3 tools/make_hf_checkpoint.py --out /tmp/l05 --shape interleave-qwen-0.5b   # real dimensions
  /usr/bin/python3 tools/make_hf_checkpoint.py --out /tmp/l15 --family llava-1.5           # Llama 2 tokenizer

The folder holds config.json (LlavaForConditionalGeneration), model.safetensors or shards with
model.safetensors.index.json, preprocessor_config.json, tokenizer.json (byte-level BPE with merges and
added tokens), tokenizer_config.json with a Jinja chat template, and generation_config.json. With
--family llava-1.5, as llava-hf/llava-1.5-7b-hf is laid out: a Llama text model with an untied lm_head, a
SentencePiece BPE tokenizer.model with byte fallback (trained here by python3-sentencepiece), tokenizer.json
saying so, <image> and <pad> added after the pieces, and the "USER: <image>\n... ASSISTANT:" template.
"""
import argparse
import json
import sys
from pathlib import Path

import torch

import bpe_tokenizer
import safetensors_io
from hf_llava import CLIP_MEAN, CLIP_STD

# Qwen2's chat template as llava-interleave-qwen writes it: every image of a turn first, then its text.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
    "{{'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"]

# llava-1.5-*-hf's chat template (chat_template.json), whose rendering of one turn is
# "USER: <image>\n<question> ASSISTANT:"; the tokenizer adds <s> in front (add_bos_token). Its comments and
# transformers' {% generation %} block (the assistant's text, for training masks) are the published template's.
LLAVA15_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{# Render all images first #}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
    "{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}"
    "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}")

# name: (vision config, text config, feature layer, select strategy)
SHAPES = {
    "tiny": ({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
              "image_size": 32, "patch_size": 8},
             {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6}, None),
    # llava-hf/llava-interleave-qwen-0.5b-hf: SigLIP so400m at 384 px (27 x 27 patches), Qwen1.5-0.5B-shaped text.
    "interleave-qwen-0.5b": ({"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 26,
                              "num_attention_heads": 16, "image_size": 384, "patch_size": 14},
                             {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 24,
                              "num_attention_heads": 16, "num_key_value_heads": 16, "rope_theta": 1000000.0,
                              "rms_norm_eps": 1e-6, "vocab_size": 152000}, "siglip"),
    # The paper's smallest setting: CLIP ViT-L/14 at 336 px (576 patches) with a Qwen2-0.5B-shaped decoder.
    "clip336-qwen2-0.5b": ({"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                            "num_attention_heads": 16, "image_size": 336, "patch_size": 14},
                           {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                            "num_attention_heads": 14, "num_key_value_heads": 2, "rope_theta": 1000000.0,
                            "rms_norm_eps": 1e-6, "vocab_size": 151936}, "clip"),
    # SmolVLM's tiny test shape: a 8 x 8 patch grid that a scale factor of 2 shuffles into 4 x 4 = 16 tokens.
    "tiny-smolvlm": ({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
                      "image_size": 64, "patch_size": 8},
                     {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                      "num_key_value_heads": 2, "rope_theta": 100000.0, "rms_norm_eps": 1e-5}, "siglip"),
    # HuggingFaceTB/SmolVLM-256M-Instruct and -500M-Instruct: SigLIP-B/16 at 512 px (32 x 32 patches, scale factor 4:
    # 64 tokens) and SmolLM2-shaped decoders.
    "smolvlm-256m": ({"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                      "image_size": 512, "patch_size": 16},
                     {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
                      "num_key_value_heads": 3, "rope_theta": 100000.0, "rms_norm_eps": 1e-5, "vocab_size": 49280}, "siglip"),
    "smolvlm-500m": ({"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                      "image_size": 512, "patch_size": 16},
                     {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32, "num_attention_heads": 15,
                      "num_key_value_heads": 5, "rope_theta": 100000.0, "rms_norm_eps": 1e-5, "vocab_size": 49280}, "siglip"),
}
SCALE_FACTOR = {"tiny-smolvlm": 2}  # SmolVLM's shapes: 4 unless named here

# SmolVLM's chat template (its rendering of one turn: "<|im_start|>User:<image>QUESTION<end_of_utterance>\nAssistant:").
SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}")
SMOLVLM_ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<fake_token_around_image>", "<image>", "<global-img>",
                 "<row_1_col_1>", "<row_1_col_2>", "<end_of_utterance>"]


def smolvlm_tokenizer_files(out: Path) -> dict:
    """tokenizer.json as SmolLM2's is written: byte-level BPE whose pre-tokenizer splits every digit off, then GPT-2's
    regex; Idefics3's image tokens and <end_of_utterance> added; tokenizer_config.json and chat_template.json."""
    vocab, merges = bpe_tokenizer.train(bpe_tokenizer.tiny_corpus() + ["What is in this picture? 12 345", "Describe the image."],
                                        400 + len(bpe_tokenizer.SPECIAL_TOKENS), split="smollm")
    added = {t: len(vocab) + i for i, t in enumerate(SMOLVLM_ADDED)}
    doc = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for t, i in added.items()],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    (out / "tokenizer.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "add_prefix_space": False, "bos_token": "<|im_start|>", "eos_token": "<end_of_utterance>", "pad_token": "<|im_end|>",
        "unk_token": "<|endoftext|>", "model_max_length": 8192, "tokenizer_class": "GPT2Tokenizer",
        "added_tokens_decoder": {str(i): {"content": t, "special": True} for t, i in added.items()}}, indent=2))
    (out / "chat_template.json").write_text(json.dumps({"chat_template": SMOLVLM_TEMPLATE}, indent=2))
    return {"vocab": len(vocab), "added": added, "eos": [added["<end_of_utterance>"]]}


def idefics3_layout(name: str) -> str | None:
    """An older-llava-layout key as Idefics3 names it (None: not in an Idefics3 checkpoint)."""
    for old, new in (("vision_tower.vision_model.", "model.vision_model."), ("language_model.model.", "model.text_model."),
                     ("language_model.lm_head.", "lm_head.")):
        if name.startswith(old):
            return new + name[len(old):]
    return None


def write_qwen2_tokenizer(out: Path, vocab: dict, merges: list, added: dict, max_length: int = 32768) -> None:
    """tokenizer.json as Hugging Face's tokenizers library writes a Qwen2 one (byte-level BPE after Qwen2's split;
    `merges` as "a b" strings) and tokenizer_config.json with the Qwen2 chat template; `added`: {token: id}."""
    doc = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for t, i in sorted(added.items(), key=lambda kv: kv[1])],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": bpe_tokenizer.QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    (out / "tokenizer.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": False, "add_eos_token": False, "bos_token": None, "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>", "model_max_length": max_length, "tokenizer_class": "Qwen2Tokenizer",
        "chat_template": CHAT_TEMPLATE,
        "added_tokens_decoder": {str(i): {"content": t, "special": True} for t, i in added.items()}}, indent=2))


def tokenizer_files(out: Path) -> dict:
    """A Qwen2 tokenizer trained on a small corpus (write_qwen2_tokenizer) and the added tokens' ids."""
    vocab, merges = bpe_tokenizer.train(bpe_tokenizer.tiny_corpus() + ["What is in this picture?", "Describe the image."],
                                        400 + len(bpe_tokenizer.SPECIAL_TOKENS))
    added = {t: len(vocab) + i for i, t in enumerate(ADDED)}
    write_qwen2_tokenizer(out, vocab, [f"{a} {b}" for a, b in merges], added)
    return {"vocab": len(vocab), "added": added}


def sentencepiece_files(out: Path) -> dict:
    """tokenizer.model (a SentencePiece BPE with byte fallback, trained on the world's questions with Llama 2's
    settings), tokenizer.json as transformers writes a Llama one (BPE with byte_fallback, the pieces as its vocab and
    merges, the added tokens), tokenizer_config.json and chat_template.json, as llava-1.5-7b-hf has them."""
    import io
    import sentencepiece as spm
    corpus = bpe_tokenizer.tiny_corpus() + ["What is in this picture?", "Describe the image.", "USER: ASSISTANT:",
                                            "Un café crème, s'il vous plaît.", "Größe und Maß"]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus), model_writer=buf, model_type="bpe", vocab_size=420,
                                   byte_fallback=True, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
                                   normalization_rule_name="identity", add_dummy_prefix=True, remove_extra_whitespaces=False,
                                   split_digits=True, allow_whitespace_only_pieces=True, hard_vocab_limit=False,
                                   minloglevel=2, num_threads=1)
    (out / "tokenizer.model").write_bytes(buf.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    merges = []  # each piece made of two pieces, in the order of the piece made (transformers' converter's order)
    for piece, i in sorted(vocab.items(), key=lambda kv: kv[1]):
        if sp.is_byte(i) or sp.is_control(i) or sp.is_unknown(i):
            continue
        for cut in range(1, len(piece)):
            a, b = piece[:cut], piece[cut:]
            if a in vocab and b in vocab:
                merges.append((vocab[a], vocab[b], i, f"{a} {b}"))
    merges.sort(key=lambda m: (m[2], m[0], m[1]))
    added = {"<unk>": 0, "<s>": 1, "</s>": 2, "<image>": len(vocab), "<pad>": len(vocab) + 1}
    doc = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for t, i in added.items()],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                           {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                                     {"Sequence": {"id": "A", "type_id": 0}}]},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                                                     {"type": "ByteFallback"}, {"type": "Fuse"},
                                                     {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [m[3] for m in merges]},
    }
    (out / "tokenizer.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": "<pad>", "legacy": False, "model_max_length": 1000000000000000019884624838656,
        "tokenizer_class": "LlamaTokenizer", "padding_side": "left",
        "added_tokens_decoder": {str(i): {"content": t, "special": True} for t, i in added.items()}}, indent=2))
    (out / "chat_template.json").write_text(json.dumps({"chat_template": LLAVA15_TEMPLATE}, indent=2))
    return {"vocab": len(vocab), "added": added, "eos": [added["</s>"]]}


def random_weights(vision: dict, text: dict, vkind: str, tkind: str, feature_dim: int, tied: bool, gen) -> dict:
    """The checkpoint's tensors in the older llava-hf key layout."""
    def w(*shape, std=0.02):
        return torch.randn(*shape, generator=gen) * std

    def norm(n):
        return 1.0 + w(n, std=0.1)

    t, Dv, Iv = {}, vision["hidden_size"], vision["intermediate_size"]
    grid = vision["image_size"] // vision["patch_size"]
    vp = "vision_tower.vision_model."
    t[vp + "embeddings.patch_embedding.weight"] = w(Dv, 3, vision["patch_size"], vision["patch_size"], std=0.1)
    if vkind == "clip":
        t[vp + "embeddings.class_embedding"] = w(Dv, std=0.5)
        t[vp + "embeddings.position_embedding.weight"] = w(grid * grid + 1, Dv, std=0.5)
        t[vp + "pre_layrnorm.weight"], t[vp + "pre_layrnorm.bias"] = norm(Dv), w(Dv)
    else:
        t[vp + "embeddings.patch_embedding.bias"] = w(Dv)
        t[vp + "embeddings.position_embedding.weight"] = w(grid * grid, Dv, std=0.5)
    vs = 1.6 / Dv ** 0.5  # each block changes its input visibly, so a wrong layer count or order shows in the answer
    for i in range(vision["num_hidden_layers"]):
        p = f"{vp}encoder.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t[p + f"self_attn.{n}.weight"], t[p + f"self_attn.{n}.bias"] = w(Dv, Dv, std=vs), w(Dv, std=vs)
        t[p + "layer_norm1.weight"], t[p + "layer_norm1.bias"] = norm(Dv), w(Dv)
        t[p + "layer_norm2.weight"], t[p + "layer_norm2.bias"] = norm(Dv), w(Dv)
        t[p + "mlp.fc1.weight"], t[p + "mlp.fc1.bias"] = w(Iv, Dv, std=vs), w(Iv, std=vs)
        t[p + "mlp.fc2.weight"], t[p + "mlp.fc2.bias"] = w(Dv, Iv, std=vs), w(Dv, std=vs)
    t[vp + "post_layernorm.weight"], t[vp + "post_layernorm.bias"] = norm(Dv), w(Dv)  # unused by LLaVA
    D, I, V = text["hidden_size"], text["intermediate_size"], text["vocab_size"]
    H, KV = text["num_attention_heads"], text["num_key_value_heads"]
    Dh = D // H
    ps = 2.4 / D ** 0.5  # large enough that random greedy answers vary with the picture, small enough to stay finite
    t["multi_modal_projector.linear_1.weight"], t["multi_modal_projector.linear_1.bias"] = w(D, feature_dim), w(D)
    t["multi_modal_projector.linear_2.weight"], t["multi_modal_projector.linear_2.bias"] = w(D, D), w(D)
    lp = "language_model.model."
    t[lp + "embed_tokens.weight"] = w(V, D, std=0.1)
    for i in range(text["num_hidden_layers"]):
        p = f"{lp}layers.{i}."
        for n, rows in (("q_proj", H * Dh), ("k_proj", KV * Dh), ("v_proj", KV * Dh)):
            t[p + f"self_attn.{n}.weight"] = w(rows, D, std=ps)
            if tkind == "qwen2":
                t[p + f"self_attn.{n}.bias"] = w(rows, std=ps)
        t[p + "self_attn.o_proj.weight"] = w(D, H * Dh, std=ps)
        t[p + "mlp.gate_proj.weight"], t[p + "mlp.up_proj.weight"] = w(I, D, std=ps), w(I, D, std=ps)
        t[p + "mlp.down_proj.weight"] = w(D, I, std=ps)
        t[p + "input_layernorm.weight"], t[p + "post_attention_layernorm.weight"] = norm(D), norm(D)
    t[lp + "norm.weight"] = norm(D)
    if not tied:
        t["language_model.lm_head.weight"] = w(V, D, std=0.1)
    return t


def new_layout(name: str) -> str:
    """The key names of checkpoints saved by transformers 4.52 and later."""
    for old, new in (("language_model.model.", "model.language_model."), ("language_model.lm_head.", "lm_head."),
                     ("vision_tower.", "model.vision_tower."), ("multi_modal_projector.", "model.multi_modal_projector.")):
        if name.startswith(old):
            return new + name[len(old):]
    return name


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder to write (must not exist)")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    ap.add_argument("--vision", choices=["clip", "siglip"], help="vision tower (default: the shape's, tiny: clip)")
    ap.add_argument("--text", choices=["qwen2", "llama"], default="qwen2")
    ap.add_argument("--layout", choices=["old", "new"], default="old", help="checkpoint key names")
    ap.add_argument("--dtype", choices=["BF16", "F16", "F32"], default="BF16")
    ap.add_argument("--shards", type=int, default=2, help="1: one model.safetensors; more: shards with an index")
    ap.add_argument("--untied", action="store_true", help="a separate lm_head (default: tied to the embeddings)")
    ap.add_argument("--feature-layer", type=int, nargs="+", default=[-2], help="vision_feature_layer (several: concatenated)")
    ap.add_argument("--strategy", choices=["default", "full"], help="vision_feature_select_strategy (default: clip default, siglip full)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--family", choices=["llava", "llava-1.5", "smolvlm"], default="llava",
                    help="llava-1.5: llava-1.5-*-hf's layout (Llama text model, untied, SentencePiece tokenizer.model, "
                         "its USER/ASSISTANT template); smolvlm: SmolVLM's (Idefics3: SigLIP, pixel-shuffle connector, "
                         "tied Llama text model, SmolLM2's tokenizer; shape tiny-smolvlm unless --shape names one); "
                         "llava: the options above with a Qwen2-style tokenizer")
    ap.add_argument("--scale-factor", type=int, help="smolvlm: the connector's scale_factor (default: the shape's)")
    args = ap.parse_args(argv)
    if args.family == "llava-1.5":
        args.text, args.untied = "llama", True
    if args.family == "smolvlm":
        args.text, args.vision = "llama", "siglip"
        if args.shape == "tiny":
            args.shape = "tiny-smolvlm"
    vision, text, shape_kind = (dict(d) if isinstance(d, dict) else d for d in SHAPES[args.shape])
    vkind = args.vision or shape_kind or "clip"
    if args.out.exists():
        print(f"error: {args.out} exists", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True)
    tok = {"llava-1.5": sentencepiece_files, "smolvlm": smolvlm_tokenizer_files}.get(args.family, tokenizer_files)(args.out)
    n_tok = max(tok["added"].values()) + 1
    text.setdefault("vocab_size", n_tok + 12)  # padding rows, as real checkpoints have
    layers = args.feature_layer if len(args.feature_layer) > 1 else args.feature_layer[0]
    vision_config = {"model_type": "clip_vision_model" if vkind == "clip" else "siglip_vision_model",
                     "hidden_act": "quick_gelu" if vkind == "clip" else "gelu_pytorch_tanh",
                     "layer_norm_eps": 1e-5 if vkind == "clip" else 1e-6, **vision}
    if vkind == "clip":
        vision_config["projection_dim"] = 16
    text_config = {"model_type": args.text, "hidden_act": "silu", "max_position_embeddings": 4096,
                   "tie_word_embeddings": not args.untied, **text}
    if args.text == "llama":
        text_config["attention_bias"] = False
    config = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
              "image_token_index": tok["added"]["<image>"], "projector_hidden_act": "gelu",
              "vision_feature_layer": layers,
              "vision_feature_select_strategy": args.strategy or ("default" if vkind == "clip" else "full"),
              "tie_word_embeddings": not args.untied, "torch_dtype": {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}[args.dtype],
              "vision_config": vision_config, "text_config": text_config}
    scale = args.scale_factor or SCALE_FACTOR.get(args.shape, 4)
    if args.family == "smolvlm":
        vision_config["model_type"] = "idefics3_vision"
        config = {"architectures": ["Idefics3ForConditionalGeneration"], "model_type": "idefics3", "scale_factor": scale,
                  "image_token_id": tok["added"]["<image>"], "tie_word_embeddings": not args.untied,
                  "torch_dtype": config["torch_dtype"], "vision_config": vision_config, "text_config": text_config}
    (args.out / "config.json").write_text(json.dumps(config, indent=2))
    mean, std = (list(CLIP_MEAN), list(CLIP_STD)) if vkind == "clip" else ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    S = vision["image_size"]
    pre = {"image_processor_type": "CLIPImageProcessor" if vkind == "clip" else "SiglipImageProcessor",
           "do_resize": True, "resample": 3, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
           "image_mean": mean, "image_std": std}
    pre.update({"size": {"shortest_edge": S}, "do_center_crop": True, "crop_size": {"height": S, "width": S}} if vkind == "clip"
               else {"size": {"height": S, "width": S}, "do_center_crop": False})
    if args.family == "smolvlm":
        # Idefics3ImageProcessor as SmolVLM's is configured (splitting on: the importer takes the global image alone).
        pre = {"image_processor_type": "Idefics3ImageProcessor", "do_convert_rgb": True, "do_resize": True,
               "size": {"longest_edge": 4 * S}, "max_image_size": {"longest_edge": S}, "resample": 1,
               "do_image_splitting": True, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
               "image_mean": mean, "image_std": std, "do_pad": True}
        grid = S // vision["patch_size"]
        (args.out / "processor_config.json").write_text(json.dumps(
            {"image_seq_len": (grid // scale) ** 2 if grid % scale == 0 else 0, "processor_class": "Idefics3Processor"}, indent=2))
    (args.out / "preprocessor_config.json").write_text(json.dumps(pre, indent=2))
    eos = tok.get("eos") or [tok["added"]["<|im_end|>"], tok["added"]["<|endoftext|>"]]
    (args.out / "generation_config.json").write_text(json.dumps({"eos_token_id": eos[0] if len(eos) == 1 else eos}))
    resolved = [l if l >= 0 else vision["num_hidden_layers"] + 1 + l for l in args.feature_layer]
    gen = torch.Generator().manual_seed(args.seed)
    tensors = random_weights(vision, text, vkind, args.text, vision["hidden_size"] * len(resolved), not args.untied, gen)
    if args.family == "smolvlm":
        tensors = {idefics3_layout(k): v for k, v in tensors.items() if idefics3_layout(k)}
        tensors["model.connector.modality_projection.proj.weight"] = \
            torch.randn(text["hidden_size"], vision["hidden_size"] * scale * scale, generator=gen) * (1.0 / (vision["hidden_size"] * scale * scale) ** 0.5)
    elif args.layout == "new":
        tensors = {new_layout(k): v for k, v in tensors.items()}
    names = list(tensors)
    if args.shards <= 1:
        safetensors_io.write(args.out / "model.safetensors", tensors, args.dtype, {"format": "pt"})
    else:
        per = -(-len(names) // args.shards)
        weight_map = {}
        for s in range(args.shards):
            file = f"model-{s + 1:05d}-of-{args.shards:05d}.safetensors"
            part = {n: tensors[n] for n in names[s * per:(s + 1) * per]}
            safetensors_io.write(args.out / file, part, args.dtype, {"format": "pt"})
            weight_map.update({n: file for n in part})
        (args.out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}, indent=2))
    print(f"wrote {args.out}: {args.family if args.family != 'llava' else vkind} + {args.text}, "
          f"{sum(t.numel() for t in tensors.values()):,} parameters, {args.dtype}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
