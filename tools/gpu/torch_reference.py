"""The same LLaVA checkpoint in Hugging Face transformers on the same GPU: the reference for the engine's GPU timings
and greedy tokens (tools/gpu/README.md). Reads the checkpoint folder and the imported set's golden.json (its
preprocessed pixels, its template's ids before the image and the question's ids after it), so both runtimes see
the same input.

  python3 tools/gpu/torch_reference.py HF_DIR SET_DIR [--reps 10] [--tokens 16] [--dtypes float32,bfloat16] [--json OUT]

For each dtype: the first answer token from the picture's pixels (vision tower, projector, the language model's
prefill over the template, the image tokens and the question, argmax) at full tokens (every patch) and at V = 1, 4,
16 (the projected patches average-pooled to a side x side grid, as the engine's `pool` compressor does), medians of
--reps after warm-up, CUDA-synchronised; decode tokens/s with the KV cache; and the greedy tokens at full tokens,
to hold against the engine's. PyTorch computes float32 matrix products in full float32 here (TF32 off, its
default). Exit 2 with one line when transformers cannot load the checkpoint.
"""
import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def load(hf: Path, dtype):
    from transformers import LlavaForConditionalGeneration
    model = LlavaForConditionalGeneration.from_pretrained(str(hf), dtype=dtype, attn_implementation="sdpa")
    return model.to("cuda").eval()


def parts(model):
    inner = getattr(model, "model", model)
    return inner.vision_tower, inner.multi_modal_projector, inner.language_model, model.lm_head, model.get_input_embeddings()


def image_features(model, pixels, layer: int, strategy: str):
    tower, projector, _, _, _ = parts(model)
    hidden = tower(pixels, output_hidden_states=True).hidden_states[layer]
    if strategy == "default":
        hidden = hidden[:, 1:]
    return projector(hidden)


def pooled(tokens: torch.Tensor, side: int) -> torch.Tensor:
    """(1, n, d) patch tokens on a square grid, averaged to side x side regions (adaptive pooling's bins)."""
    n, d = tokens.shape[1], tokens.shape[2]
    grid = int(round(math.sqrt(n)))
    x = tokens[0].T.reshape(1, d, grid, grid)
    return F.adaptive_avg_pool2d(x, side).reshape(d, side * side).T.unsqueeze(0)


def first_token(model, pixels, prefix, question, layer, strategy, side):
    """Picture to the first answer token; returns the token id, the KV cache and the sequence length."""
    _, _, lm, head, embed = parts(model)
    visual = image_features(model, pixels, layer, strategy)
    if side:
        visual = pooled(visual, side)
    embeds = torch.cat([embed(prefix), visual.to(embed.weight.dtype), embed(question)], dim=1)
    out = lm(inputs_embeds=embeds, use_cache=True)
    token = head(out.last_hidden_state[:, -1]).argmax(-1)
    return token, out.past_key_values, embeds.shape[1]


def decode(model, token, past, steps):
    _, _, lm, head, embed = parts(model)
    ids = [int(token)]
    for _ in range(steps - 1):
        out = lm(inputs_embeds=embed(token.view(1, 1)), past_key_values=past, use_cache=True)
        past = out.past_key_values
        token = head(out.last_hidden_state[:, -1]).argmax(-1)
        ids.append(int(token))
    return ids


def timed(fn, reps):
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(reps):
        t = time.perf_counter()
        result = fn()
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t) * 1000)
    return statistics.median(ms), result


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("hf_dir", type=Path)
    ap.add_argument("set_dir", type=Path)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: no CUDA device visible to PyTorch", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    golden = json.loads((args.set_dir / "golden" / "golden.json").read_text())
    cfg = json.loads((args.hf_dir / "config.json").read_text())
    layer, strategy = cfg.get("vision_feature_layer", -2), cfg.get("vision_feature_select_strategy", "default")
    size = cfg["vision_config"]["image_size"]
    report = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "reps": args.reps, "tokens": args.tokens, "runs": []}
    try:
        import transformers
        report["transformers"] = transformers.__version__
    except ImportError:
        print("error: transformers is not installed", file=sys.stderr)
        return 2
    for name in args.dtypes.split(","):
        dtype = getattr(torch, name)
        try:
            model = load(args.hf_dir, dtype)
        except Exception as e:  # noqa: BLE001 - any loading failure is reported in one line
            print(f"error: transformers could not load {args.hf_dir} as {name}: {type(e).__name__}: {str(e)[:300]}", file=sys.stderr)
            return 2
        pixels = torch.tensor(golden["pixel_values"], dtype=dtype, device="cuda").reshape(1, 3, size, size)
        prefix = torch.tensor([golden["prefix_ids"]], device="cuda")
        question = torch.tensor([golden["question_ids"]], device="cuda")
        with torch.inference_mode():
            for side in [0, 1, 2, 4]:
                ttft, (token, past, positions) = timed(
                    lambda: first_token(model, pixels, prefix, question, layer, strategy, side), args.reps)
                t = time.perf_counter()
                ids = decode(model, token, past, args.tokens)
                torch.cuda.synchronize()
                decode_s = time.perf_counter() - t
                v = side * side if side else None
                row = {"dtype": name, "compressor": "pool" if side else "full", "v": v, "ttft_ms": ttft, "positions": positions,
                       "decode_tok_s": (args.tokens - 1) / decode_s, "greedy_tokens": ids}
                report["runs"].append(row)
                print(f"torch {name:9} {row['compressor']:5} V={str(v or 'all'):4} ttft {ttft:8.2f} ms  decode "
                      f"{row['decode_tok_s']:7.1f} tok/s  greedy {ids[:8]}", flush=True)
        del model
        torch.cuda.empty_cache()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
