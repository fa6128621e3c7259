"""Rewrites a world-layout set's decoders (tools/export.py's) so that they write their KV cache in place.

    /usr/bin/python3 tools/inplace_decoder.py SET_DIR [--decoder NAME ...]

A set exported before decoders were fused has each layer's attention as plain ONNX operators appending to the cache.
This rebuilds each decoder's PyTorch module from its own graphs (the embedding table from embed.onnx; norms and
biases by name; the MatMul weights in the order the export traced them: per layer q, k, v, o, gate, up, down, then
the output projection, each checked by shape), checks the module against the set's golden answer (the prefill
logits within 1e-4 and the greedy tokens), and exports it again with each layer's attention one ONNX Runtime
GroupQueryAttention node, manifest `kv_cache: in_place` (models/README.md). Everything else in the set is left as
it was. The new graphs are written beside the old ones and moved over them only once every decoder has passed;
the manifest is written last, so an interrupted run leaves the set as it was or finished.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decoder import Decoder, DecoderConfig  # noqa: E402
from export import decoder_io, export_graph  # noqa: E402

TOLERANCE = 1e-4


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def config_of(spec: dict) -> DecoderConfig:
    return DecoderConfig(vocab_size=spec["vocab_size"], dim=spec["dim"], layers=spec["layers"], heads=spec["heads"],
                         kv_heads=spec["kv_heads"], intermediate=spec["intermediate"], rope_theta=spec["rope_theta"],
                         rms_eps=spec["rms_eps"], head_dim_override=spec["head_dim"])


def rebuild(set_dir: Path, spec: dict) -> Decoder:
    """The decoder's PyTorch module with the weights its graphs hold."""
    cfg = config_of(spec)
    dec = Decoder(cfg).eval()
    graph = onnx.load(str(set_dir / spec["decoder"]["file"]))
    embed = onnx.load(str(set_dir / spec["embed"]["file"]))
    inits = {t.name: numpy_helper.to_array(t) for t in graph.graph.initializer}
    # A deduplicated copy reaches its readers through an Identity node named after the parameter it stands for.
    inits.update({n.output[0]: inits[n.input[0]] for n in graph.graph.node if n.op_type == "Identity" and n.input[0] in inits})
    state = dec.state_dict()
    new = {}
    tables = [numpy_helper.to_array(t) for t in embed.graph.initializer if t.name.endswith("embed_tokens.weight")]
    if len(tables) != 1:
        fail(f"{spec['embed']['file']}: no embed_tokens.weight table")
    new["embed_tokens.weight"] = tables[0]
    # The exporter names few weights: it stores MatMul weights transposed under made-up names, and keeps one copy of
    # equal tensors (a random set's norms are all ones). So each is found by the node that reads it, in the order
    # the trace met them, which is the forward's: norms as Mul, q/k/v biases as Add, products as MatMul.
    def read_by(op: str, shape_ok) -> list:
        found = []
        for n in graph.graph.node:
            if n.op_type == op:
                found += [i for i in n.input if i in inits and shape_ok(inits[i].shape)]
        return found

    L, D = cfg.layers, cfg.dim
    wanted = {
        "Mul": ([f"layers.{i}.{n}.weight" for i in range(L) for n in ("input_layernorm", "post_attention_layernorm")]
                + ["norm.weight"], lambda shape: tuple(shape) == (D,), False),
        "Add": ([f"layers.{i}.self_attn.{p}.bias" for i in range(L) for p in ("q_proj", "k_proj", "v_proj")]
                if cfg.qkv_bias else [], lambda shape: len(shape) == 1 and shape[0] > 1, False),
        "MatMul": ([f"layers.{i}.{p}.weight" for i in range(L)
                    for p in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                              "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")] + ["lm_head.weight"],
                   lambda shape: len(shape) == 2, True),
    }
    for op, (names, shape_ok, transposed) in wanted.items():
        found = read_by(op, shape_ok)
        if len(found) != len(names):
            fail(f"{spec['decoder']['file']}: {len(found)} {op} weights, expected {len(names)} "
                 "(a decoder tools/export.py did not write?)")
        for name, init in zip(names, found):
            weight = inits[init].T if transposed else inits[init]
            if tuple(weight.shape) != tuple(state[name].shape):
                fail(f"{spec['decoder']['file']}: {init} is {tuple(weight.shape)}, not {name}'s {tuple(state[name].shape)}")
            new[name] = weight
    missing = [n for n in state if n not in new]
    if missing:
        fail(f"{spec['decoder']['file']}: no weights for {', '.join(missing[:4])}")
    dec.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in new.items()})
    return dec


def check_golden(dec: Decoder, golden: dict, special: dict) -> float:
    """The golden answer's decoder half (tools/pipeline.py ask) on the rebuilt module: max |prefill logit diff|."""
    g = golden
    ids = torch.tensor([g["query_ids"]])
    Tq = ids.shape[1]
    visual = torch.tensor(g["visual_tokens"][str(g["tokens"])], dtype=torch.float32).reshape(1, g["tokens"], -1)
    embed = dec.embed_tokens
    with torch.no_grad():
        out = dec(embed(ids), torch.ones(1, Tq, dtype=torch.long), torch.arange(Tq)[None], *dec.empty_past())
        past = list(out[2:])
        x = torch.cat([embed(torch.tensor([[special["<|vision_start|>"]]])), visual,
                       embed(torch.tensor([[special["<|vision_end|>"]]]))], dim=1)
        T = x.shape[1]
        out = dec(x, torch.ones(1, Tq + T, dtype=torch.long), torch.arange(Tq, Tq + T)[None], *past)
        logits, past = out[0][:, -1], list(out[2:])
        diff = float((logits[0] - torch.tensor(g["prefill_logits"])).abs().max())
        tokens, pos = [], Tq + T
        for _ in range(len(g["greedy_tokens"])):
            nxt = int(logits[0].argmax())
            tokens.append(nxt)
            out = dec(embed(torch.tensor([[nxt]])), torch.ones(1, pos + 1, dtype=torch.long), torch.tensor([[pos]]), *past)
            logits, past = out[0][:, -1], list(out[2:])
            pos += 1
    if diff > TOLERANCE or tokens != g["greedy_tokens"]:
        fail(f"the rebuilt decoder does not answer as the set's golden: prefill logits {diff:.3g} apart, "
             f"tokens {tokens} against {g['greedy_tokens']}")
    return diff


def rewrite(set_dir: Path, chosen: list, golden: dict, special: dict, written: list) -> None:
    """Each chosen decoder rebuilt, checked and exported fused beside its graph (appended to `written`); its
    manifest entry updated in memory."""
    for spec in chosen:
        dec = rebuild(set_dir, spec)
        diff = check_golden(dec, golden["decoders"][spec["name"]], special)
        dec.cfg.fused_attention = True
        c = dec.cfg
        target = set_dir / spec["decoder"]["file"]
        partial = target.with_name(target.name + ".partial")
        past = [torch.randn(1, c.kv_heads, 3, c.head_dim) for _ in range(2 * c.layers)]
        written.append((partial, target))
        io = export_graph(dec, (torch.randn(1, 2, c.dim), torch.ones(1, 5, dtype=torch.long), torch.tensor([[3, 4]]), *past),
                          partial, decoder_io(c))
        check_golden(dec, golden["decoders"][spec["name"]], special)  # the fused module's own reference path
        spec["decoder"] = {"file": spec["decoder"]["file"], **io}
        spec["kv_cache"] = "in_place"
        print(f"{spec['name']}: rebuilt (golden prefill logits within {diff:.2g}), attention fused, cache in place")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set", type=Path, help="a model set written by tools/export.py")
    ap.add_argument("--decoder", action="append", help="only this decoder (repeatable; default: every one not yet in place)")
    args = ap.parse_args(argv)
    manifest_path = args.set / "manifest.json"
    if not manifest_path.is_file():
        fail(f"{args.set}: no manifest.json")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("source"):
        fail(f"{args.set} is an imported set: import it again instead (tools/import_hf.py writes in-place decoders)")
    golden = json.loads((args.set / manifest["golden"]).read_text())
    special = manifest["tokenizer"]["special_tokens"]
    chosen = [d for d in manifest["decoders"] if (args.decoder is None and d.get("kv_cache") != "in_place")
              or (args.decoder is not None and d["name"] in args.decoder)]
    if args.decoder and len(chosen) != len(set(args.decoder)):
        fail(f"no decoder named {', '.join(sorted(set(args.decoder) - {d['name'] for d in chosen}))} in {args.set}")
    written = []
    torch.manual_seed(0)
    try:
        rewrite(args.set, chosen, golden, special, written)
    except BaseException:
        for partial, _ in written:  # a refused or interrupted run leaves the set as it was
            partial.unlink(missing_ok=True)
        raise
    for partial, target in written:
        os.replace(partial, target)
    if written:
        manifest["created_by"] = f"{manifest.get('created_by', '')}; tools/inplace_decoder.py {' '.join(sys.argv[1:])}".lstrip("; ")
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    else:
        print(f"{args.set}: every decoder already writes its cache in place")
    return 0


if __name__ == "__main__":
    sys.exit(main())
