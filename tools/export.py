"""Writes a complete model set per the contract in models/README.md.

  /usr/bin/python3 tools/export.py --preset tiny --out models/tiny-random      # random weights, seconds

Every graph is opset 17 and passes onnx.checker; the folder gets manifest.json, the tokenizer files and
golden/ (a fixed image and query with every intermediate output) for the C# parity tests.
"""
import argparse
import hashlib
import inspect
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from PIL import Image, ImageDraw

import bpe_tokenizer
import checkpoints
import pipeline
from decoder import Decoder, DecoderConfig, Embed
from quecc import QueCC, QueCCAtK, QueCCConfig
from tokenpacker import TokenPacker
from vision_encoder import VisionConfig, VisionEncoder

OPSET = 17
GOLDEN_QUERY = "What color is the square left of the red circle?"
GOLDEN_TOKENS = 4  # the V whose full ask path is recorded in golden.json
GOLDEN_NEW = 8

PRESETS = {
    # name: (vision config, [decoder configs]) -- vocab_size is set from the tokenizer.
    "tiny": (VisionConfig(), [DecoderConfig()]),
}


def io(**tensors) -> dict:
    """Declared tensors of a graph: name -> {dtype, shape}; strings in a shape are symbolic (dynamic) axes."""
    return {name: {"dtype": "int64" if name in ("input_ids", "attention_mask", "position_ids") else "float32",
                   "shape": list(shape)} for name, shape in tensors.items()}


def decoder_io(c: DecoderConfig) -> dict:
    past = {f"past_key_values.{i}.{kv}": ("batch", c.kv_heads, "past_sequence", c.head_dim)
            for i in range(c.layers) for kv in ("key", "value")}
    present = {f"present.{i}.{kv}": ("batch", c.kv_heads, "total_sequence", c.head_dim)
               for i in range(c.layers) for kv in ("key", "value")}
    return {"inputs": io(inputs_embeds=("batch", "sequence", c.dim), attention_mask=("batch", "total_sequence"),
                         position_ids=("batch", "sequence"), **past),
            "outputs": io(logits=("batch", 1 if c.last_logits else "sequence", c.vocab_size), last_hidden_state=("batch", "sequence", c.dim),
                          **present)}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def export_graph(module, args, path: Path, spec: dict, external_above: int | None = None) -> dict:
    """Exports one graph whose tensors are declared in `spec` ({"inputs": io(...), "outputs": io(...)}):
    string axes become dynamic, integer axes are written into the graph's output types (tracing loses some,
    e.g. V after a reshape), so the C# loader can check them against the manifest. A graph of more than
    `external_above` bytes keeps its weights in `<file>.data` beside it (protobuf's 2 GB limit). Returns `spec`."""
    import tempfile
    module.eval()
    inputs, outputs = list(spec["inputs"]), list(spec["outputs"])
    dynamic = {name: {i: d for i, d in enumerate(t["shape"]) if isinstance(d, str)}
               for name, t in {**spec["inputs"], **spec["outputs"]}.items()}
    # The tracing exporter on every PyTorch: from 2.9 torch.onnx.export defaults to the dynamo-based one, which takes
    # dynamic_axes only in part (the GPU machine's PyTorch is 2.11; this machine's 1.13 has no such argument).
    exporter = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:  # a large export may write many files; none stay
        raw = Path(scratch) / path.name
        with torch.no_grad():
            torch.onnx.export(module, args, str(raw), input_names=inputs, output_names=outputs, dynamic_axes=dynamic,
                              opset_version=OPSET, do_constant_folding=True, **exporter,
                              # ONNX Runtime's contrib domain, for a decoder exporting its fused attention
                              custom_opsets={"com.microsoft": 1} if getattr(getattr(module, "cfg", None), "fused_attention", False) else None)
        model = onnx.load(str(raw))
    for out in model.graph.output:
        shape = spec["outputs"][out.name]["shape"]
        dims = out.type.tensor_type.shape.dim
        assert len(dims) == len(shape), f"{path.name}: {out.name} has rank {len(dims)}, declared {shape}"
        for dim, want in zip(dims, shape):
            if isinstance(want, int):
                dim.Clear()
                dim.dim_value = want
            else:
                dim.dim_param = want
    if external_above is not None and model.ByteSize() > external_above:
        onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=path.name + ".data")
        onnx.checker.check_model(str(path))
    else:
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(path))
    return spec


def golden_image() -> np.ndarray:
    """80 x 96 RGB, deliberately not the model's input size so the resize path is exercised."""
    img = Image.new("RGB", (96, 80), (235, 235, 230))
    d = ImageDraw.Draw(img)
    d.ellipse((8, 10, 34, 36), fill=(220, 30, 30))
    d.rectangle((50, 12, 80, 40), fill=(30, 60, 220))
    d.polygon([(20, 70), (40, 45), (60, 70)], fill=(40, 180, 60))
    d.line((0, 79, 95, 0), fill=(20, 20, 20), width=2)
    return np.asarray(img)


def export_decoder(dec: Decoder, folder: Path, fused: bool = True) -> tuple:
    # Fused: each layer's attention one GroupQueryAttention, which the engine hands one buffer as past and present
    # (the manifest's kv_cache in_place); the module's own forward stays the same arithmetic.
    dec.cfg.fused_attention = fused
    c = dec.cfg
    past = [torch.randn(1, c.kv_heads, 3, c.head_dim) for _ in range(2 * c.layers)]  # trace with a non-empty past
    x = torch.randn(1, 2, c.dim)
    dspec = export_graph(dec, (x, torch.ones(1, 5, dtype=torch.long), torch.tensor([[3, 4]]), *past),
                         folder / "decoder.onnx", decoder_io(c))
    espec = export_graph(Embed(dec), (torch.tensor([[1, 2, 3]]),), folder / "embed.onnx",
                         {"inputs": io(input_ids=("batch", "sequence")),
                          "outputs": io(inputs_embeds=("batch", "sequence", c.dim))})
    return dspec, espec


def export_compressor(comp: QueCC, qcfg: QueCCConfig, folder: Path, prefix: str) -> dict:
    """One graph per supported V; returns V -> graph entry for the manifest (file relative to `folder`)."""
    graphs = {}
    P = qcfg.grid * qcfg.grid
    f, fm, q = torch.randn(1, P, qcfg.vision_dim), torch.randn(1, P, qcfg.multi_dim), torch.randn(1, qcfg.llm_dim)
    for k in qcfg.kernels():
        V = qcfg.tokens_for(k)
        ins = dict(features=("batch", P, qcfg.vision_dim), features_multi=("batch", P, qcfg.multi_dim))
        if comp.query_aware:
            ins["query_embedding"] = ("batch", qcfg.llm_dim)
        name = f"{prefix}_V{V}.onnx"
        spec = export_graph(QueCCAtK(comp, k), (f, fm, q) if comp.query_aware else (f, fm), folder / name,
                            {"inputs": io(**ins), "outputs": io(visual_tokens=("batch", V, qcfg.llm_dim))})
        graphs[str(V)] = {"file": name, **spec}
    return graphs


def random_set(args) -> dict:
    """The tiny random-weight set: contract and parity tests only."""
    torch.manual_seed(args.seed)
    vcfg, dcfgs = PRESETS[args.preset]
    vocab, merges = bpe_tokenizer.train(bpe_tokenizer.tiny_corpus(), 512)
    vision = VisionEncoder(vcfg).eval()
    decoders = []
    for dcfg in dcfgs:
        dcfg.vocab_size = len(vocab) + len(bpe_tokenizer.SPECIAL_TOKENS)
        qcfg = QueCCConfig(vision_dim=vcfg.dim, multi_dim=vcfg.multi_dim, llm_dim=dcfg.dim, grid=vcfg.grid)
        decoders.append((f"decoder-d{dcfg.dim}-l{dcfg.layers}", Decoder(dcfg).eval(), qcfg,
                         [("quecc", QueCC(qcfg).eval()), ("tokenpacker", TokenPacker(qcfg).eval())]))
    return {"name": args.name or f"{args.preset}-random-seed{args.seed}",
            "description": "Random weights: for contract and parity tests only; answers are meaningless.",
            "vision": vision, "vcfg": vcfg, "vocab": vocab, "merges": merges, "decoders": decoders,
            "golden_image": golden_image(), "golden_query": GOLDEN_QUERY, "default": (decoders[-1][0], "quecc", 1),
            "world": None}


def checkpoint_set(args) -> dict:
    """A trained set from tools/train.py vlm checkpoints (one per decoder; all share one vision encoder)."""
    import world
    decoders, vision, vcfg, vocab, merges = [], None, None, None, None
    for path in args.checkpoints:
        m = checkpoints.load_vlm(path)
        if vision is None:
            vision, vcfg, vocab, merges = m.vision, m.vision_config, m.checkpoint["vocab"], m.checkpoint["merges"]
        assert m.checkpoint["vocab"] == vocab and m.checkpoint["merges"] == merges, f"{path}: a different tokenizer"
        assert all(torch.equal(v, m.checkpoint["vision"][k]) for k, v in vision.state_dict().items()), f"{path}: another vision encoder"
        decoders.append((m.name, m.decoder, m.quecc_config, [(m.kind, m.compressor)]))
    seed = world.SPLITS["test"][0]
    _, query, _ = world.questions(seed, 1, family="nearest")[0]
    chosen = next(d for d in decoders if d[0].startswith(args.default_decoder)) if args.default_decoder else decoders[-1]
    default_decoder, default_kind = chosen[0], chosen[3][0][0]  # a baseline-only set defaults to its baseline
    return {"name": args.name or "world-default", "description": "Trained on the synthetic shapes world (tools/world.py); docs/WORLD.md.",
            "vision": vision, "vcfg": vcfg, "vocab": vocab, "merges": merges, "decoders": decoders,
            "golden_image": world.render(world.scene(seed), 128), "golden_query": query,
            "default": (default_decoder, default_kind, args.default_tokens),
            "world": {"definition": "tools/world.py", "image_size": vcfg.image_size, "vocabulary": world.vocabulary(),
                      "answers": world.ANSWERS, "families": world.FAMILIES, "splits": world.SPLITS}}


def write_set(out: Path, s: dict, fused: bool = True) -> None:
    if out.exists():
        shutil.rmtree(out)
    (out / "golden").mkdir(parents=True)
    tok = bpe_tokenizer.BpeTokenizer(s["vocab"], s["merges"])
    if s["world"]:
        # answer_words = 1 relies on every answer being one whole token (the engine counts it as a word).
        long = [a for a in s["world"]["answers"] if len(tok.encode(a)) != 1]
        assert not long, f"world answers that are not one token: {long}"
    tok.save(out, s["merges"])
    vocab_size = len(s["vocab"]) + len(bpe_tokenizer.SPECIAL_TOKENS)
    vision, vcfg = s["vision"], s["vcfg"]
    vspec = export_graph(vision, (torch.randn(1, 3, vcfg.image_size, vcfg.image_size),), out / "vision.onnx",
                         {"inputs": io(pixel_values=("batch", 3, vcfg.image_size, vcfg.image_size)),
                          "outputs": io(features=("batch", vcfg.patches, vcfg.dim),
                                        features_multi=("batch", vcfg.patches, vcfg.multi_dim))})
    rgb = s["golden_image"]
    Image.fromarray(rgb).save(out / "golden" / "image.png")
    pixels = pipeline.preprocess(rgb, vcfg.image_size, vcfg.mean, vcfg.std)
    query = s["golden_query"]
    golden = {"image": "image.png", "query": query, "pixel_values": pixels.flatten().tolist()}
    decoders = []
    for dname, dec, qcfg, comps in s["decoders"]:
        assert dec.cfg.vocab_size == vocab_size, "decoder vocabulary and tokenizer disagree"
        dfolder = out / dname
        dfolder.mkdir()
        dspec, espec = export_decoder(dec, dfolder, fused)
        compressors = [{"kind": kind, "query_aware": comp.query_aware, "heads": qcfg.heads, "params": n_params(comp),
                        "graphs": {V: {**g, "file": f"{dname}/{g['file']}"}
                                   for V, g in export_compressor(comp, qcfg, dfolder, kind).items()}}
                       for kind, comp in comps]
        c = dec.cfg
        decoders.append({"name": dname, "decoder": {"file": f"{dname}/decoder.onnx", **dspec},
                         "embed": {"file": f"{dname}/embed.onnx", **espec},
                         "dim": c.dim, "layers": c.layers, "heads": c.heads, "kv_heads": c.kv_heads,
                         "head_dim": c.head_dim, "intermediate": c.intermediate, "vocab_size": vocab_size,
                         "rope_theta": c.rope_theta, "rms_eps": c.rms_eps, "params": n_params(dec),
                         "compressors": compressors, **({"kv_cache": "in_place"} if fused else {})})
        # Golden: every V's visual tokens, and the full ask path at GOLDEN_TOKENS, for this decoder.
        comp = comps[0][1]
        ref = pipeline.ask(vision, QueCCAtK(comp, qcfg.grid // int(GOLDEN_TOKENS ** 0.5)), Embed(dec), dec, tok,
                           pixels, query, GOLDEN_NEW)
        golden.setdefault("features", ref["features"].flatten().tolist())
        golden.setdefault("features_multi", ref["features_multi"].flatten().tolist())
        with torch.no_grad():
            per_v = {str(qcfg.tokens_for(k)): QueCCAtK(comp, k)(ref["features"][None], ref["features_multi"][None],
                                                               ref["query_embedding"][None]).flatten().tolist()
                     for k in qcfg.kernels()}
        golden.setdefault("decoders", {})[dname] = {
            "compressor": comps[0][0], "query_ids": ref["query_ids"], "query_embedding": ref["query_embedding"].tolist(),
            "visual_tokens": per_v, "tokens": GOLDEN_TOKENS, "prefill_logits": ref["prefill_logits"].tolist(),
            "greedy_tokens": ref["greedy_tokens"]}
        assert len(ref["greedy_tokens"]) == GOLDEN_NEW, "no stop tokens are used for the golden decode"

    d_name, d_comp, d_tokens = s["default"]
    manifest = {
        "format": "quecc-assistant-models/1",
        "name": s["name"],
        "description": s["description"],
        "created_by": " ".join(["tools/export.py"] + sys.argv[1:]),
        "vision": {"file": "vision.onnx", **vspec, "image_size": vcfg.image_size, "patch_size": vcfg.patch_size,
                   "grid": vcfg.grid, "dim": vcfg.dim, "multi_dim": vcfg.multi_dim, "layers": vcfg.layers,
                   "heads": vcfg.heads, "mlp_dim": vcfg.dim * vcfg.mlp_ratio, "multi_layers": vcfg.multi_layers, "mean": list(vcfg.mean),
                   "std": list(vcfg.std), "params": n_params(vision)},
        "decoders": decoders,
        "tokenizer": {"vocab": "vocab.json", "merges": "merges.txt", "pre_tokenizer": "qwen2",
                      "special_tokens": dict(tok.special)},
        "prompt": {"query_start": "<|im_start|>", "vision_start": "<|vision_start|>", "vision_end": "<|vision_end|>",
                   "stop": ["<|im_end|>", "<|endoftext|>"],
                   # World answers are one word each (and one token: checked below); the engine stops after it.
                   **({"answer_words": 1} if s["world"] else {})},
        "default": {"decoder": d_name, "compressor": d_comp, "tokens": d_tokens},
        "scaling_law": s.get("law"),
        "world": s["world"],
        "golden": "golden/golden.json",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "golden" / "golden.json").write_text(json.dumps(golden))


def law_entry(fit: dict, source: str) -> dict:
    """The manifest's record of a law: `assistant law fit --json` output less the bootstrap details (but with the
    share of refits where alpha > beta, when the fit gives it), plus its unit and source."""
    keys = ("a", "alpha", "beta", "d", "sse", "points", "bounds", "interval95")
    missing = [k for k in keys if k not in fit]
    if missing:
        raise ValueError(f"not `assistant law fit --json` output: no {', '.join(missing)}")
    optional = {k: fit[k] for k in ("alpha_above_beta_share",) if fit.get(k) is not None}
    return {**{k: fit[k] for k in keys}, **optional, "n_unit": "billions of decoder parameters", "source": source}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny", help="random-weight set to write")
    ap.add_argument("--checkpoints", type=Path, nargs="+", help="tools/train.py vlm checkpoints: write a trained set")
    ap.add_argument("--default-decoder", help="trained set: the decoder name prefix used by default (default: last)")
    ap.add_argument("--default-tokens", type=int, default=4, help="trained set: the default V")
    ap.add_argument("--law", type=Path, help="trained set: `assistant law fit --json` output to ship as the set's scaling law")
    ap.add_argument("--law-source", default="", help="how the law's points were measured (recorded in the manifest)")
    ap.add_argument("--out", type=Path, required=True, help="model set folder to write (replaced if it exists)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default=None, help="set name recorded in the manifest")
    ap.add_argument("--attention", choices=["fused", "plain"], default="fused",
                    help="the decoders' attention: fused (one GroupQueryAttention a layer, the KV cache written in place "
                         "by the engine) or plain ONNX operators appending to the cache (models/README.md, kv_cache)")
    args = ap.parse_args()
    t0 = time.time()
    s = checkpoint_set(args) if args.checkpoints else random_set(args)
    if args.law:
        s["law"] = law_entry(json.loads(args.law.read_text()), args.law_source)
    write_set(args.out, s, fused=args.attention == "fused")
    sums = {p.relative_to(args.out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in sorted(args.out.rglob("*.onnx"))}
    print(f"wrote {args.out} in {time.time() - t0:.1f}s: " + ", ".join(f"{k} {v}" for k, v in sums.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
