"""Imports a LLaVA-family checkpoint folder, as downloaded from Hugging Face (llava-hf layout), into a model set
of the contract in models/README.md ("Imported LLaVA sets").

  /usr/bin/python3 tools/import_hf.py HF_DIR --out SET_DIR        # or: ./assistant models import HF_DIR --out SET_DIR

Reads config.json (LlavaForConditionalGeneration: a CLIP or SigLIP tower, an MLP projector, a Qwen2 or Llama
text model; or Idefics3ForConditionalGeneration, SmolVLM: a SigLIP tower with its post-layernorm, the pixel-shuffle
connector, a Llama text model; its global image only), the weights (model.safetensors, or shards with model.safetensors.index.json; F32, F16 or BF16;
the older `language_model.model.*` and the newer `model.language_model.*` key names; tied or untied output
embeddings), preprocessor_config.json, tokenizer.json, tokenizer_config.json's chat template and
generation_config.json. Writes the vision tower up to its feature layer, the full/pool/query compressors,
the embed and decoder graphs, the tokenizer, golden outputs and a manifest recording the source. Weights are
copied in one tensor at a time. The output folder appears whole or not at all. Errors are one line, exit 2.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch

import scratch
import set_files
from checkpoint import (ImportError_, chat_prompt, encode_pieces, fail, first_line, image_preprocessing, load_llava,
                        parse_config, read_json, read_tokenizer, short, stage, stop_tokens)
from decoder import Embed
import export
import quantize
from export import decoder_io, io, n_params
from hf_llava import FullCompressor, PoolCompressor, QueryCompressor, pool_sides, QUERY_TEMPERATURE

GOLDEN_QUESTION = "What is in this picture?"
GOLDEN_NEW = 8

STORAGE = {"dtype": "f32", "quant": None, "block": quantize.BLOCK}  # the set's weight storage: --dtype, --quant, --block (one import per process)
EXPORTS = {"total": 0, "done": 0, "start": 0.0}  # parameters to export, exported so far, and when exporting began


def expect_exports(parameters: int) -> None:
    EXPORTS.update(total=parameters, done=0, start=time.time())


def _left(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def export_graph(module, args, path: Path, spec: dict, role: str = "text") -> dict:
    """export.export_graph, with graphs over set_files.EXTERNAL_ABOVE bytes keeping their weights in `<file>.data`
    (set_files says why), and with --dtype f16 the weights stored as float16, and with --quant q8|q4 the MatMul
    weights on the kernel that quantize.KERNELS gives the graph's role ("vision": the tower; "text": the rest)."""
    t = time.time()
    export.export_graph(module, args, path, spec, external_above=None if STORAGE["dtype"] == "f16" else set_files.EXTERNAL_ABOVE)
    if STORAGE["quant"]:
        plan = STORAGE.get("plans", {}).get(role)
        counts = quantize.rewrite(path, STORAGE["quant"], role, set_files.EXTERNAL_ABOVE, plan, STORAGE["block"])
        if plan is not None and counts["on_blocks"] != STORAGE.get("planned_blocks", 0):
            # the plan is keyed by module names, found in the graph by its nodes' names: a mismatch would put an
            # outlier-fed product on int8 without a word
            fail(f"the int8 calibration kept {STORAGE.get('planned_blocks', 0)} tower products on blocks, but "
                 f"{counts['on_blocks']} of {path.name}'s nodes matched them (an exporter that names nodes differently)")
        where = path.relative_to(STORAGE["out"]).as_posix() if "out" in STORAGE and path.is_relative_to(STORAGE["out"]) else path.name
        STORAGE.setdefault("counts", {})[where] = counts
    params = sum(p.numel() for p in module.parameters())
    EXPORTS["done"] += params
    written = sum(f.stat().st_size for f in path.parent.glob(path.name + "*"))
    done, total = EXPORTS["done"], max(EXPORTS["total"], EXPORTS["done"])
    rate = (time.time() - EXPORTS["start"]) / max(done, 1)
    where = path.relative_to(STORAGE["out"]) if "out" in STORAGE and path.is_relative_to(STORAGE["out"]) else path.name
    stage(f"exported {where}: "
          f"{written / 2**20:,.1f} MB in {time.time() - t:.1f} s; {100 * done / max(total, 1):.0f}% of the weights written, "
          f"about {_left(rate * (total - done))} left")
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
    if model.ByteSize() > set_files.EXTERNAL_ABOVE:
        onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=path.name + ".data")
        onnx.checker.check_model(str(path))
    else:
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(path))


TABLE_FILE = "embed_tokens.bin"


def externalize_table(path: Path, name: str, rows: int, dim: int) -> dict:
    """Rewrites the embedding graph at `path` with its table as external data in `name` beside it: raw little-endian
    rows, which the engine maps instead of loading the graph (manifest `embed_table`; Inference/EmbeddingTable.cs),
    so the table is on disk once and resident only where rows are read. Returns where the table's rows are."""
    from onnx import external_data_helper
    model = onnx.load(str(path))
    tables = [t for t in model.graph.initializer if list(t.dims) == [rows, dim]]
    if len(tables) != 1 or tables[0].data_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
        fail(f"the exported embedding graph does not hold one {rows} x {dim} float table (an exporter change?)")
    external_data_helper.convert_model_to_external_data(model, all_tensors_to_one_file=True, location=name, size_threshold=1024)
    old = path.with_name(path.name + ".data")
    if old.exists():
        old.unlink()
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path))
    saved = onnx.load(str(path), load_external_data=False)
    table = next(t for t in saved.graph.initializer if t.name == tables[0].name)
    where = {e.key: e.value for e in table.external_data}
    dtype = "f32" if table.data_type == onnx.TensorProto.FLOAT else "f16"
    if where.get("location") != name or int(where.get("length", -1)) != rows * dim * (4 if dtype == "f32" else 2):
        fail(f"the embedding table was written to {where.get('location')} with {where.get('length')} bytes, not as expected")
    return {"file": name, "offset": int(where.get("offset", 0)), "rows": rows, "dim": dim, "dtype": dtype}


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


def texture_image(size: int) -> np.ndarray:
    """size x size RGB of smooth random texture (seeded): the int8 calibration's second picture, busier than the
    golden one's flat shapes."""
    from PIL import Image
    coarse = np.random.default_rng(7).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC))


def normalized(rgb: np.ndarray, mean, std) -> torch.Tensor:
    """(1, 3, S, S) pixel values as the tower takes them."""
    return (torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None] / 255.0 - torch.tensor(mean)[None, :, None, None]) \
        / torch.tensor(std)[None, :, None, None]


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
                      attention: str = "fused", block: int = quantize.BLOCK) -> dict:
    t0 = time.time()
    c = parse_config(hf)
    tower_cfg, text_cfg = c["tower"], c["text"]
    text_cfg.fused_attention = attention == "fused"
    text_cfg.last_logits = True  # the engine reads a prefill's last row only (its graph spec says so: logits (batch, 1, vocab))
    tok = read_tokenizer(hf)
    by_id = {i: t for t, i in tok.added.items()}
    if not isinstance(c["image_token"], int) or isinstance(c["image_token"], bool) or c["image_token"] not in by_id:
        fail(f"image_token_index {short(c['image_token'])} is not an added token of tokenizer.json")
    image_text = by_id[c["image_token"]]
    prompt = chat_prompt(hf, tok, image_text)
    markers = image_markers(hf, c, tok)
    stops = stop_tokens(hf, tok, c["config"])
    if tok.count > text_cfg.vocab_size:
        fail(f"tokenizer has {tok.count} ids but the text model's vocab_size is {text_cfg.vocab_size}")
    pre = image_preprocessing(hf)
    mean, std = pre["mean"], pre["std"]
    stage(f"reading {hf} (stages: the weights, then each graph exported, then the golden outputs)")
    parts = load_llava(hf, c)
    tower, projector, decoder = parts["tower"], parts["projector"], parts["decoder"]
    tied = c["tied"]
    STORAGE["dtype"], STORAGE["quant"], STORAGE["block"], STORAGE["counts"], STORAGE["plans"] = dtype, quant, block, {}, {}
    STORAGE.pop("int8_worst", None)
    STORAGE.pop("planned_blocks", None)
    if dtype == "f16":
        # The reference (golden) and the graphs hold the same float16-rounded weights, so they still agree to 1e-4.
        with torch.no_grad():
            for module in (tower, projector, decoder):
                for p in module.parameters():
                    p.copy_(p.half().float())
    if quant:
        # After the f16 rounding, so the codes are made from the stored values. As for f16, the reference and
        # every runtime compute with the weights as quantized (round-tripped here, stored so by the export), so the
        # graphs differ from the golden only by ONNX Runtime's int8 activations.
        plan = None
        if quantize.KERNELS[quant]["vision"] == "int8":
            stage("calibrating the tower's int8 products on two pictures (a product with outlier inputs stays on blocks)")
            side = tower_cfg.image_size
            pictures = [normalized(golden_image(side), mean, std), normalized(texture_image(side), mean, std)]
            errors = quantize.calibrate_int8(tower, [(p,) for p in pictures])
            plan = quantize.int8_plan(errors)
            STORAGE["plans"] = {"vision": plan}
            STORAGE["planned_blocks"] = sum(1 for n, m in tower.named_modules() if plan.get(n) == "nbits"
                                            and quantize.quantizable(m.in_features, m.out_features))
            STORAGE["int8_worst"] = max(errors.values(), default=0.0)
        quantize.round_trip_for(tower, quant, "vision", plan)
        for module in (projector, decoder):
            quantize.round_trip_for(module, quant, "text", None, block)

    # The patch grid the compressors work on: the tower's, or the connector's after its pixel shuffle (Idefics3).
    patches, grid, Dv, D = tower_cfg.patches, c["out_grid"], tower_cfg.feature_dim, text_cfg.dim
    P = grid * grid
    out.mkdir(parents=True)
    STORAGE["out"] = out
    (out / "golden").mkdir()
    tok.save(out)
    S = tower_cfg.image_size
    compressor_graphs = 1 + 2 * len(pool_sides(grid))  # full, then pool and query at each side
    expect_exports(n_params(tower) + n_params(decoder) + decoder.embed_tokens.weight.numel() + compressor_graphs * n_params(projector))
    vspec = export_graph(tower, (torch.randn(1, 3, S, S),), out / "vision.onnx",
                         {"inputs": io(pixel_values=("batch", 3, S, S)), "outputs": io(features=("batch", patches, Dv))},
                         role="vision")
    dname = "text"
    folder = out / dname
    folder.mkdir()
    past = [torch.randn(1, text_cfg.kv_heads, 3, text_cfg.head_dim) for _ in range(2 * text_cfg.layers)]
    dspec = export_graph(decoder, (torch.randn(1, 2, D), torch.ones(1, 5, dtype=torch.long), torch.tensor([[3, 4]]), *past),
                         folder / "decoder.onnx", decoder_io(text_cfg))
    espec = export_graph(Embed(decoder), (torch.tensor([[1, 2, 3]]),), folder / "embed.onnx",
                         {"inputs": io(input_ids=("batch", "sequence")), "outputs": io(inputs_embeds=("batch", "sequence", D))})
    embed_table = externalize_table(folder / "embed.onnx", TABLE_FILE, text_cfg.vocab_size, D)
    f, q = torch.randn(1, patches, Dv), torch.randn(1, D)
    feat_in = io(features=("batch", patches, Dv))
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
    stage("computing the golden outputs (the PyTorch reference the engine's check compares with)")
    from PIL import Image
    rgb = golden_image(S)
    Image.fromarray(rgb).save(out / "golden" / "image.png")
    pixels = normalized(rgb, mean, std)
    embed = Embed(decoder)
    # [text before the image][open markers] | [visual tokens] | [close markers][text and question after the image]
    prefix_ids, _ = encode_pieces(tok, [("text", prompt["before_image"])])
    prefix_ids += [tok.added[m] for m in markers["open"]]
    question_ids, own_ids = encode_pieces(tok, [("text", prompt["before_question"]), ("question", GOLDEN_QUESTION),
                                                ("text", prompt["after_question"])])
    question_ids = [tok.added[m] for m in markers["close"]] + question_ids
    with torch.no_grad():
        features = tower(pixels)
        query_embedding = embed(torch.tensor([own_ids]))[0].mean(dim=0, keepdim=True)  # (1, D)
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
        "description": f"Imported from {hf.name} ({tower_cfg.kind} + {c['text_type']}, {FAMILY_NAMES[c['family']]}); docs/REAL_MODELS.md.",
        "created_by": created_by(),
        "vision": {"file": "vision.onnx", **vspec, "image_size": S, "patch_size": tower_cfg.patch_size, "grid": tower_cfg.grid,
                   "dim": Dv, "multi_dim": 0, "layers": tower_cfg.layers, "heads": tower_cfg.heads,
                   "mlp_dim": tower_cfg.intermediate, "multi_layers": tower_cfg.feature_layers, "mean": mean, "std": std,
                   "params": vision_params, "kind": tower_cfg.kind, "class_token": tower_cfg.kind == "clip",
                   **({"crop": "center"} if pre["center_crop"] else {})},
        "decoders": [{"name": dname, "decoder": {"file": f"{dname}/decoder.onnx", **dspec},
                      "embed": {"file": f"{dname}/embed.onnx", **espec},
                      "dim": D, "layers": text_cfg.layers, "heads": text_cfg.heads, "kv_heads": text_cfg.kv_heads,
                      "head_dim": text_cfg.head_dim, "intermediate": text_cfg.intermediate, "vocab_size": text_cfg.vocab_size,
                      "rope_theta": text_cfg.rope_theta, "rms_eps": text_cfg.rms_eps,
                      "params": n_params(decoder), "embed_table": {**embed_table, "file": f"{dname}/{embed_table['file']}"},
                      # GroupQueryAttention writes only the new positions when past and present are one buffer
                      **({"kv_cache": "in_place"} if text_cfg.fused_attention else {}),
                      "compressors": compressors}],
        "tokenizer": tok.manifest(),
        "prompt": {"stop": stops, **prompt_layout(prompt, markers), "query_embedding": "question_embedding_mean"},
        "default": {"decoder": dname, "compressor": "full", "tokens": P},
        "scaling_law": paper_law() if c["text_type"] == "qwen2" else None,
        "world": world_spec(hf, S, tok),
        "golden": "golden/golden.json",
        "source": {"importer": "tools/import_hf.py", "folder": hf.name, "architecture": c["architecture"],
                   **({"scale_factor": c["scale_factor"], "image_markers": markers} if c["family"] == "idefics3" else {}),
                   "vision": tower_cfg.kind, "text": c["text_type"], "tokenizer": tok.kind, "config_sha256": hashlib.sha256(config_bytes).hexdigest(),
                   "chat_template_sha256": prompt["template_sha256"], "vision_feature_layer": c["config"].get("vision_feature_layer", -2),
                   "vision_feature_select_strategy": c["strategy"], "tied_embeddings": tied,
                   "params": {"vision": vision_params, "projector": n_params(projector), "text": n_params(decoder)},
                   "preprocessor": pre["recorded"],
                   "query_temperature": QUERY_TEMPERATURE, "weights": quant or dtype,
                   **({"quantization": {**quantize.describe(quant, STORAGE["counts"], block),
                                        **({"int8_worst_error": round(STORAGE["int8_worst"], 5)} if "int8_worst" in STORAGE else {})}}
                      if quant else {})},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return {"seconds": time.time() - t0, "patches": P, "params": manifest["source"]["params"]}


FAMILY_NAMES = {"llava": "LLaVA", "idefics3": "Idefics3"}
WORLD_FILE_MAX_BYTES = 64 << 10


def world_spec(hf: Path, image_size: int, tok) -> dict | None:
    """A checkpoint trained on the assistant's synthetic world (docs/WORLD.md) says so in world.json,
    {"definition": "tools/world.py"} (tools/world_checkpoint.py writes it). The set then records the world, so that
    `assistant eval` scores it and a query is held to the world's words. Only the file's claim is read: the
    vocabulary, answers, families and splits come from tools/world.py itself, and every answer must be one token."""
    path = hf / "world.json"
    if not path.exists():
        return None
    if not path.is_file() or path.stat().st_size > WORLD_FILE_MAX_BYTES:
        fail(f"world.json is not a regular file of at most {WORLD_FILE_MAX_BYTES >> 10} KB")
    doc = read_json(path, "the world the checkpoint was trained on")
    if not isinstance(doc, dict) or doc.get("definition") != "tools/world.py":
        fail(f"world.json names the world {short(doc.get('definition') if isinstance(doc, dict) else doc)}; "
             "the only world this importer knows is tools/world.py's")
    import world
    long = [a for a in world.ANSWERS if len(tok.encode(a, True)) != 1]
    if long:
        fail(f"world.json claims the world, but the tokenizer makes {len(long)} of its answers more than one token "
             f"({', '.join(long[:3])}); a world set's answers are one token each")
    return {"definition": "tools/world.py", "image_size": image_size, "vocabulary": world.vocabulary(),
            "answers": world.ANSWERS, "families": world.FAMILIES, "splits": world.SPLITS}

# Idefics3's processor puts a picture that is not split into tiles as
# <fake_token_around_image><global-img> <image> x image_seq_len <fake_token_around_image>.
IDEFICS3_OPEN = ["<fake_token_around_image>", "<global-img>"]
IDEFICS3_CLOSE = ["<fake_token_around_image>"]


def image_markers(hf: Path, c: dict, tok) -> dict:
    """The special tokens around the visual tokens: none for LLaVA; Idefics3's global-image markers, each an added
    token of the tokenizer, and the processor's image_seq_len (where given) equal to the connector's tokens."""
    if c["family"] != "idefics3":
        return {"open": [], "close": []}
    for m in IDEFICS3_OPEN + IDEFICS3_CLOSE:
        if m not in tok.added:
            fail(f"the tokenizer has no {m} token, which Idefics3's image prompt needs")
    proc = read_json(hf / "processor_config.json", "the processor configuration", required=False) or {}
    seq = proc.get("image_seq_len") if isinstance(proc, dict) else None
    if seq is not None and seq != c["out_grid"] ** 2:
        fail(f"processor_config.json image_seq_len {short(seq)} is not the connector's {c['out_grid'] ** 2} tokens "
             f"(({c['tower'].grid} / scale_factor {c['scale_factor']})^2)")
    return {"open": list(IDEFICS3_OPEN), "close": list(IDEFICS3_CLOSE)}


def prompt_layout(prompt: dict, markers: dict) -> dict:
    """The manifest's prompt: LLaVA's chat text as `chat`; with image markers, the same pieces as a `layout`."""
    if not markers["open"] and not markers["close"]:
        return {"chat": {k: prompt[k] for k in ("before_image", "before_question", "after_question")}}
    after = ([{"text": prompt["before_question"]}] if prompt["before_question"] else []) + [{"question": True}] \
        + ([{"text": prompt["after_question"]}] if prompt["after_question"] else [])
    return {"layout": {"before_image": [{"text": prompt["before_image"]}], "after_image": after,
                       "image": {"open": markers["open"], "close": markers["close"]}}}


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
                    help="quantized MatMul weights, int8 dot products: q8, every graph's weights in int8 with one "
                         "scale per output column (about 1/4 of their f32 bytes); q4, the tower so and the text "
                         "graphs' in 4-bit blocks of 32 like llama.cpp's Q4_0 (about 1/7)")
    ap.add_argument("--block", type=int, choices=quantize.BLOCKS,
                    help="with --quant: values per scale in the text graphs' blocks (default 32, as llama.cpp's Q4_0); "
                         "128 holds a 4-bit decoder in about 15%% less memory (an 8-bit one in about 10%%) and rounds it more coarsely")
    ap.add_argument("--attention", choices=["fused", "plain"], default="fused",
                    help="the decoder's attention: fused (default), each layer's one ONNX Runtime GroupQueryAttention "
                         "node, its KV cache written in place by the engine (manifest kv_cache in_place); or plain ONNX "
                         "operators appending to the cache, for an execution provider without a float32 "
                         "GroupQueryAttention kernel (CUDA's has float16 and bfloat16 only)")
    ap.add_argument("--image-splitting", action="store_true",
                    help="Idefics3/SmolVLM: tiles of the picture beside the global image, as its processor does for large "
                         "pictures (not built yet: refused; the global image alone is the real-time setting)")
    ap.add_argument("--hand-over", type=Path, metavar="FILE",
                    help="leave the finished set in its scratch folder beside --out and write {partial, summary} to FILE as "
                         "JSON, for a caller that checks the set and moves it into place itself (`assistant models import` "
                         "does: it loads the set with the engine's checks and runs its golden picture first)")
    args = ap.parse_args(argv)
    scratch.stop_on_signals()
    hf, out = args.hf_dir, args.out
    if args.image_splitting:
        print("error: --image-splitting (Idefics3's tiles beside the global image) is not built yet; import without it: "
              "the global image alone, 64 visual tokens for SmolVLM, is what the live loop runs", file=sys.stderr)
        return 2
    if args.block is not None and not args.quant:
        print(f"error: --block {args.block} sets the blocks of quantized weights: give --quant q8 or q4 with it", file=sys.stderr)
        return 2
    if not hf.is_dir():
        print(f"error: checkpoint folder not found: {hf}", file=sys.stderr)
        return 2
    try:
        # A scratch folder unique to this run, beside the set; removed, with any parent folder made for --out, on
        # an error, Ctrl+C or SIGTERM (tools/scratch.py).
        with scratch.folder_for(out, keep_finished=args.hand_over is not None) as partial:
            shutil.rmtree(partial)
            result = import_checkpoint(hf, partial, args.name, args.dtype, args.quant, args.attention, args.block or quantize.BLOCK)
            p = result["params"]
            summary = (f"imported {hf} -> {out} in {result['seconds']:.1f}s: vision {p['vision']:,}, projector "
                       f"{p['projector']:,}, text {p['text']:,} parameters; {result['patches']} visual tokens at full")
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
        print(f"error: the checkpoint could not be imported ({type(e).__name__}: {first_line(e)}); nothing was written "
              f"(ASSISTANT_DEBUG=1 shows where)", file=sys.stderr)
        return 2
    if args.hand_over is None:
        print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
