"""An imported set's text decoder as an ONNX Runtime GenAI model folder (bench/Peers's GenAI row).

    /usr/bin/python3 tools/genai_model.py SET_DIR --out GENAI_DIR [--decoder text] [--context 2048]

GenAI has no LLaVA model type, so what it gets is the text decoder alone, fed token ids: its decoder-only models
take `input_ids`, while the set's decoder takes `inputs_embeds` from a separate embed graph. This joins the two into
one graph, `model.onnx` (the embed graph's Gather feeding the decoder; `last_hidden_state`, which GenAI never
reads, dropped), and writes the `genai_config.json` GenAI loads it by. The decoder's input and output names already
follow the layout GenAI expects (attention_mask, position_ids, past_key_values.N.key/value, logits, present.N.*),
and past and present share one buffer (past_present_share_buffer) where the set's decoder writes its cache in place
(manifest kv_cache in_place: GroupQueryAttention), as the engine runs it; separate buffers where it appends.
Weights are shared, not copied: the joined graph holds the same initializers (MatMulNBits ones too, for a set
imported with --quant), written as external data beside it. The folder appears whole or not at all.
"""
import argparse
import json
import sys
from pathlib import Path

import onnx

import scratch as scratch_folders
import set_files

EMBED_PREFIX = "embed/"


def join(embed: onnx.ModelProto, decoder: onnx.ModelProto) -> onnx.ModelProto:
    """One graph from ids to logits: the embed graph's nodes (their names prefixed) in front of the decoder's."""
    eg, dg = embed.graph, decoder.graph
    if [i.name for i in eg.input] != ["input_ids"] or [o.name for o in eg.output] != ["inputs_embeds"]:
        raise ValueError("the embed graph must map input_ids to inputs_embeds")
    if "inputs_embeds" not in [i.name for i in dg.input]:
        raise ValueError("the decoder graph has no inputs_embeds input")

    def rename(name: str) -> str:
        if name in ("", "input_ids", "inputs_embeds"):
            return name  # the joined graph's input, and the tensor the two graphs meet at
        return EMBED_PREFIX + name

    nodes = []
    for n in eg.node:
        m = onnx.NodeProto()
        m.CopyFrom(n)
        m.name = EMBED_PREFIX + n.name
        m.input[:] = [rename(x) for x in n.input]
        m.output[:] = [rename(x) for x in n.output]
        nodes.append(m)
    inits = []
    for t in eg.initializer:
        u = onnx.TensorProto()
        u.CopyFrom(t)
        u.name = rename(t.name)
        inits.append(u)
    ids = next(i for i in eg.input)
    inputs = [ids] + [i for i in dg.input if i.name != "inputs_embeds"]
    outputs = [o for o in dg.output if o.name != "last_hidden_state"]
    graph = onnx.helper.make_graph(nodes + list(dg.node), dg.name or "decoder", inputs, outputs,
                                   inits + list(dg.initializer), value_info=list(dg.value_info))
    opsets = {o.domain: o.version for o in embed.opset_import}
    for o in decoder.opset_import:
        opsets[o.domain] = max(o.version, opsets.get(o.domain, 0))
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid(d, v) for d, v in opsets.items()],
                                   producer_name="tools/genai_model.py")
    model.ir_version = max(embed.ir_version, decoder.ir_version)
    return model


def genai_config(manifest: dict, spec: dict, context: int) -> dict:
    """The genai_config.json of a decoder-only model whose graph is model.onnx."""
    special = manifest["tokenizer"].get("special_tokens", {})
    stops = [special[s] for s in manifest.get("prompt", {}).get("stop", []) if s in special]
    eos = stops or [0]
    kind = manifest.get("source", {}).get("text", "qwen2")
    return {
        "model": {
            "type": {"qwen2": "qwen2", "llama": "llama", "mistral": "mistral"}.get(kind, "llama"),
            "bos_token_id": eos[0],
            "eos_token_id": eos,
            "pad_token_id": eos[0],
            "vocab_size": spec["vocab_size"],
            "context_length": context,
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": "model.onnx",
                "head_size": spec["head_dim"],
                "hidden_size": spec["dim"],
                "num_attention_heads": spec["heads"],
                "num_key_value_heads": spec["kv_heads"],
                "num_hidden_layers": spec["layers"],
                "inputs": {
                    "input_ids": "input_ids",
                    "attention_mask": "attention_mask",
                    "position_ids": "position_ids",
                    "past_key_names": "past_key_values.%d.key",
                    "past_value_names": "past_key_values.%d.value",
                },
                "outputs": {
                    "logits": "logits",
                    "present_key_names": "present.%d.key",
                    "present_value_names": "present.%d.value",
                },
            },
        },
        "search": {
            "do_sample": False, "num_beams": 1, "num_return_sequences": 1, "top_k": 1, "top_p": 1.0, "temperature": 1.0,
            "max_length": context, "min_length": 0, "early_stopping": True, "repetition_penalty": 1.0,
            "length_penalty": 1.0, "diversity_penalty": 0.0, "no_repeat_ngram_size": 0,
            "past_present_share_buffer": spec.get("kv_cache") == "in_place",
        },
    }


def _external_files(path: Path) -> set:
    """The files a graph's initializers keep their weights in (ONNX external data), from the graph without them."""
    model = onnx.load(str(path), load_external_data=False)
    files = set()
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            files |= {e.value for e in t.external_data if e.key == "location"}
    return files


def write(set_dir: Path, out: Path, decoder_name: str, context: int) -> None:
    manifest = json.loads((set_dir / "manifest.json").read_text())
    specs = {d["name"]: d for d in manifest["decoders"]}
    if decoder_name not in specs:
        raise ValueError(f"the set has no decoder '{decoder_name}' (it has {', '.join(specs)})")
    spec = specs[decoder_name]
    out = out.resolve()
    scratch_folders.check_target(out)
    # The graphs the manifest names, judged as the engine judges them (tools/set_files.py): relative, inside the set,
    # regular files, their links followed; and each graph's external data (onnx.load reads it) the same way.
    graphs = {}
    for part in ("embed", "decoder"):
        path = set_files.named(set_dir, spec[part]["file"], f"decoder {decoder_name}'s {part} graph")
        for data in _external_files(path):
            set_files.named(set_dir, str(Path(spec[part]["file"]).parent / data), f"the external data of {path.name}")
        graphs[part] = onnx.load(str(path))
    model = join(graphs["embed"], graphs["decoder"])
    with scratch_folders.folder_for(out) as scratch:  # unique to this run; removed on any failure or signal
        onnx.save_model(model, str(scratch / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                        location="model.onnx.data", size_threshold=1024)
        (scratch / "genai_config.json").write_text(json.dumps(genai_config(manifest, spec, context), indent=2) + "\n")
        scratch_folders.place(scratch, out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Write an imported set's text decoder as an ONNX Runtime GenAI model folder.")
    p.add_argument("set", type=Path, help="an imported model set (tools/import_hf.py)")
    p.add_argument("--out", type=Path, required=True, help="the GenAI folder to write (must not exist)")
    p.add_argument("--decoder", default="text", help="which of the set's decoders (default: text)")
    p.add_argument("--context", type=int, default=2048, help="context_length and max_length (default: 2048)")
    a = p.parse_args(argv)
    scratch_folders.stop_on_signals()
    try:
        write(a.set, a.out, a.decoder, a.context)
    except (OSError, ValueError, KeyError, TypeError, onnx.checker.ValidationError, scratch_folders.Unplaceable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BaseException as e:  # the run's signal, raised or wrapped (tools/scratch.py); anything else goes on
        if (code := scratch_folders.signal_exit(e)) is None:
            raise
        return code
    print(f"genai: {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
