"""Makes the world's LLaVA checkpoint: a model of the synthetic world (docs/WORLD.md) trained the way LLaVA is, with
every patch token and no compression, written exactly as a downloaded llava-hf checkpoint is laid out.

  /usr/bin/python3 tools/world_checkpoint.py --out models/world-llava-hf          # CPU, about an hour here
  /usr/bin/python3 tools/world_checkpoint.py --out /tmp/w --align-steps 20 --tune-steps 20 --scenes 512   # a smoke run

What stands for what (LLaVA-1.5's recipe, in miniature):
- the pretrained vision tower: the world set's encoder (models/default's vision.onnx, trained on patch labels: our
  stand-in for CLIP), rewritten as a CLIP vision model (its fused qkv split, its patch bias folded into the position
  embeddings, erf GELU as `hidden_act: gelu`), feature layer -1, the class token dropped;
- the pretrained language model: the set's medium decoder (a Qwen2-style model that knows the world's words), its
  vocabulary grown by one row for the `<image>` token;
- stage 1, alignment: a new two-layer MLP projector (LLaVA's `mlp2x_gelu`) trained alone, tower and language model
  frozen; stage 2, tuning: projector and language model together, the tower still frozen.
Every step is [<|im_start|>user\\n][64 visual tokens][\\nQUESTION<|im_end|>\\n<|im_start|>assistant\\n][ANSWER<|im_end|>]:
the Qwen2 chat template as llava-interleave-qwen renders one turn, encoded by the importer's own tokenizer code
(tools/checkpoint.py) from the tokenizer.json written here, so training and import cannot disagree about a token.
The loss is cross-entropy on the answer word and the end token.

The frozen tower's features are computed once per scene and kept (--scenes train scenes, --questions each). A run
checkpoints to --work every --save-every steps and resumes from it; --max-minutes caps each stage (the learning rate
follows the clock then). The checkpoint folder is written last, whole or not at all: config.json
(LlavaForConditionalGeneration), model.safetensors (F32), preprocessor_config.json (CLIPImageProcessor),
tokenizer.json (byte-level BPE, Qwen2's pre-tokenizer, the world's merges), tokenizer_config.json with the chat
template, generation_config.json and a README.md model card with the validation figures and this command.
"""
import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checkpoint  # noqa: E402
import inplace_decoder  # noqa: E402
import safetensors_io  # noqa: E402
import world  # noqa: E402
import world_data  # noqa: E402
from decoder import Decoder  # noqa: E402
from hf_llava import CLIP_MEAN, CLIP_STD, Projector, TowerConfig, VisionTower  # noqa: E402
from make_hf_checkpoint import write_qwen2_tokenizer  # noqa: E402
from train import Progress, lr_at, progress, save  # noqa: E402
from vision_encoder import VisionConfig, VisionEncoder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
IMAGE = "<image>"
TOLERANCE = 1e-4


def fail(message: str):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------- the pretrained parts, from the world set

def world_encoder(set_dir: Path, manifest: dict, golden: dict) -> VisionEncoder:
    """The set's vision encoder as its PyTorch module, from vision.onnx: named tensors by name, the MatMul weights (which
    the exporter stores transposed under made-up names) in the order the forward reads them, checked by the set's golden
    features."""
    v = manifest["vision"]
    cfg = VisionConfig(image_size=v["image_size"], patch_size=v["patch_size"], dim=v["dim"], layers=v["layers"],
                       heads=v["heads"], multi_layers=v["multi_layers"])
    enc = VisionEncoder(cfg).eval()
    graph = onnx.load(str(set_dir / v["file"]))
    inits = {t.name: numpy_helper.to_array(t) for t in graph.graph.initializer}
    state = enc.state_dict()
    new = {k: inits[k] for k in state if k in inits}
    products = [i for n in graph.graph.node if n.op_type == "MatMul" for i in n.input if i in inits and inits[i].ndim == 2]
    names = [f"blocks.{b}.{p}.weight" for b in range(cfg.layers) for p in ("attn.qkv", "attn.out", "mlp.0", "mlp.2")]
    if len(products) != len(names):
        fail(f"{v['file']}: {len(products)} MatMul weights, expected {len(names)} (not a tools/export.py tower?)")
    for name, init in zip(names, products):
        new[name] = inits[init].T
    missing = [k for k in state if k not in new]
    if missing:
        fail(f"{v['file']}: no weights for {', '.join(missing[:4])}")
    enc.load_state_dict({k: torch.from_numpy(np.array(w, dtype=np.float32)) for k, w in new.items()})
    pixels = torch.tensor(golden["pixel_values"], dtype=torch.float32).reshape(1, 3, cfg.image_size, cfg.image_size)
    with torch.no_grad():
        diff = float((enc(pixels)[0].flatten() - torch.tensor(golden["features"])).abs().max())
    if diff > TOLERANCE:
        fail(f"the rebuilt vision encoder's golden features are {diff:.3g} from the set's")
    return enc


def clip_tower(enc: VisionEncoder) -> tuple:
    """(the CLIP tower module, its llava-hf tensors): the same function as `enc`'s features, in CLIP's layout."""
    c = enc.cfg
    cfg = TowerConfig(kind="clip", image_size=c.image_size, patch_size=c.patch_size, hidden=c.dim,
                      intermediate=c.dim * c.mlp_ratio, heads=c.heads, layers=c.layers, feature_layers=[c.layers], act="gelu")
    e = {k: v.detach().clone() for k, v in enc.state_dict().items()}
    pos = e["pos"][0].clone()  # (1 + P, D)
    pos[1:] += e["patch.bias"]  # CLIP's patch convolution has no bias: the same constant, added per patch position
    t = {"embeddings.patch_embedding.weight": e["patch.weight"], "embeddings.class_embedding": e["cls"].reshape(-1),
         "embeddings.position_embedding.weight": pos, "pre_layrnorm.weight": e["ln_pre.weight"],
         "pre_layrnorm.bias": e["ln_pre.bias"]}
    D = c.dim
    for b in range(c.layers):
        p, q = f"encoder.layers.{b}.", f"blocks.{b}."
        qkv_w, qkv_b = e[q + "attn.qkv.weight"], e[q + "attn.qkv.bias"]
        for j, n in enumerate(("q_proj", "k_proj", "v_proj")):
            t[p + f"self_attn.{n}.weight"], t[p + f"self_attn.{n}.bias"] = qkv_w[j * D:(j + 1) * D], qkv_b[j * D:(j + 1) * D]
        t[p + "self_attn.out_proj.weight"], t[p + "self_attn.out_proj.bias"] = e[q + "attn.out.weight"], e[q + "attn.out.bias"]
        for ours, theirs in (("ln1", "layer_norm1"), ("ln2", "layer_norm2")):
            t[p + f"{theirs}.weight"], t[p + f"{theirs}.bias"] = e[q + f"{ours}.weight"], e[q + f"{ours}.bias"]
        t[p + "mlp.fc1.weight"], t[p + "mlp.fc1.bias"] = e[q + "mlp.0.weight"], e[q + "mlp.0.bias"]
        t[p + "mlp.fc2.weight"], t[p + "mlp.fc2.bias"] = e[q + "mlp.2.weight"], e[q + "mlp.2.bias"]
    tower = VisionTower(cfg).eval()
    tower.load_state_dict({k.replace("encoder.layers.", "layers."): v for k, v in t.items()})
    # CLIP's post_layernorm: LLaVA never reads it, but a CLIP vision model has one (identity here).
    t["post_layernorm.weight"], t["post_layernorm.bias"] = torch.ones(D), torch.zeros(D)
    return tower, {"vision_tower.vision_model." + k: v for k, v in t.items()}


def grown_decoder(dec: Decoder, rows: int) -> Decoder:
    """`dec` with its embedding table and output projection grown by `rows` new tokens (small random embeddings; output
    rows at zero, so no new token is ever the likeliest before training)."""
    c = dec.cfg
    c.vocab_size += rows
    grown = Decoder(c)
    state = dec.state_dict()
    gen = torch.Generator().manual_seed(0)
    state["embed_tokens.weight"] = torch.cat([state["embed_tokens.weight"],
                                              torch.randn(rows, c.dim, generator=gen) * state["embed_tokens.weight"].std()])
    state["lm_head.weight"] = torch.cat([state["lm_head.weight"], torch.zeros(rows, c.dim)])
    grown.load_state_dict(state)
    return grown


# ---------------------------------------------------------------- the checkpoint's files

def write_tokenizer(out: Path, set_dir: Path, manifest: dict) -> dict:
    """tokenizer.json (Qwen2's format, the world's vocabulary and merges, its special tokens where the set has them and
    <image> after them), tokenizer_config.json with the chat template; returns {added token: id}."""
    tok = manifest["tokenizer"]
    vocab = json.loads((set_dir / tok["vocab"]).read_text(encoding="utf-8"))
    merges = [line for line in (set_dir / tok["merges"]).read_text(encoding="utf-8").splitlines()
              if line and not line.startswith("#version")]
    added = dict(tok["special_tokens"])
    added[IMAGE] = max(added.values()) + 1
    write_qwen2_tokenizer(out, vocab, merges, added, max_length=4096)
    return added


def write_config(out: Path, tower, dec: Decoder, added: dict) -> None:
    tc, dc = tower.cfg, dec.cfg
    config = {
        "architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
        "image_token_index": added[IMAGE], "projector_hidden_act": "gelu",
        "vision_feature_layer": -1, "vision_feature_select_strategy": "default",
        "image_seq_length": tc.patches, "tie_word_embeddings": False, "torch_dtype": "float32",
        "vision_config": {"model_type": "clip_vision_model", "hidden_act": "gelu", "layer_norm_eps": 1e-5,
                          "hidden_size": tc.hidden, "intermediate_size": tc.intermediate,
                          "num_hidden_layers": tc.layers, "num_attention_heads": tc.heads,
                          "image_size": tc.image_size, "patch_size": tc.patch_size, "projection_dim": tc.hidden},
        "text_config": {"model_type": "qwen2", "hidden_act": "silu", "hidden_size": dc.dim,
                        "intermediate_size": dc.intermediate, "num_hidden_layers": dc.layers,
                        "num_attention_heads": dc.heads, "num_key_value_heads": dc.kv_heads, "rope_theta": dc.rope_theta,
                        "rms_norm_eps": dc.rms_eps, "vocab_size": dc.vocab_size, "max_position_embeddings": 4096,
                        "tie_word_embeddings": False},
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    S = tc.image_size
    (out / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": S}, "resample": 3,
        "do_center_crop": True, "crop_size": {"height": S, "width": S}, "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD)}, indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps(
        {"eos_token_id": [added["<|im_end|>"], added["<|endoftext|>"]], "max_new_tokens": 4}) + "\n")


def trained_tensors(projector: Projector, dec: Decoder) -> dict:
    """The projector's and language model's tensors under their llava-hf names (their storage, not copies)."""
    t = {f"multi_modal_projector.{k}": v for k, v in projector.state_dict().items()}
    for k, v in dec.state_dict().items():
        t["language_model.lm_head.weight" if k == "lm_head.weight" else f"language_model.model.{k}"] = v
    return t


def checkpoint_tensors(tower_tensors: dict, projector: Projector, dec: Decoder) -> dict:
    t = {**tower_tensors, **trained_tensors(projector, dec)}
    return {k: v.detach().float().contiguous() for k, v in t.items()}


# ---------------------------------------------------------------- training

class Prompts:
    """Questions as the importer will prompt them: [before image][image x P][before question, question, after]."""

    def __init__(self, folder: Path, patches: int):
        self.tok = checkpoint.read_tokenizer(folder)
        self.prompt = checkpoint.chat_prompt(folder, self.tok, IMAGE)
        self.image, self.end, self.patches = self.tok.added[IMAGE], self.tok.added["<|im_end|>"], patches
        self.prefix, _ = checkpoint.encode_pieces(self.tok, [("text", self.prompt["before_image"])])
        self.cache = {}

    def ids(self, question: str) -> list:
        if question not in self.cache:
            after, _ = checkpoint.encode_pieces(self.tok, [("text", self.prompt["before_question"]), ("question", question),
                                                           ("text", self.prompt["after_question"])])
            self.cache[question] = self.prefix + [self.image] * self.patches + after
        return self.cache[question]

    def answer(self, word: str) -> int:
        ids = self.tok.encode(word, True)
        if len(ids) != 1:
            fail(f"the answer '{word}' is {len(ids)} tokens; the world's tokenizer makes every answer one")
        return ids[0]

    def encode(self, qs):
        """Pregenerated's encoder: left-padded prompt ids (the pad is the end token, masked), mask, answers, families."""
        rows = [(self.ids(t), self.answer(a), fam) for scene in qs for t, a, fam in scene]
        T = max(len(r[0]) for r in rows)
        ids = torch.full((len(rows), T), self.end, dtype=torch.long)
        mask = torch.zeros(len(rows), T, dtype=torch.long)
        for i, (q, _, _) in enumerate(rows):
            ids[i, T - len(q):], mask[i, T - len(q):] = torch.tensor(q), 1
        return ids, mask, torch.tensor([r[1] for r in rows]), [r[2] for r in rows]


def answer_logits(projector, dec, features, ids, mask, answers, image: int):
    """Logits at the answer position and at the end-token position, (B, vocab) each; the hidden state at the answer
    position (B, D) and the visual tokens (B, P, D), for the relational stage's heads."""
    x = dec.embed_tokens(ids)
    slots = ids == image  # (B, T): each row's P image positions, in order
    vis = projector(features)
    x = x.masked_scatter(slots[..., None], vis.to(x.dtype))
    x = torch.cat([x, dec.embed_tokens(answers)[:, None]], dim=1)
    mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    out = dec(x, mask, positions, *[p.to(ids.device) for p in dec.empty_past(ids.shape[0])])
    return out[0][:, -2], out[0][:, -1], out[1][:, -2], vis


def validate(projector, dec, val: dict, image: int, end: int) -> dict:
    """First-token accuracy and end-token accuracy on the validation questions, overall and per family."""
    projector.eval(), dec.eval()
    with torch.no_grad():
        at_answer, at_end, _, _ = answer_logits(projector, dec, val["features"], val["ids"], val["mask"], val["answers"], image)
    projector.train(), dec.train()
    right = (at_answer.argmax(-1) == val["answers"]) & (at_end.argmax(-1) == end)
    out = {"overall": right.float().mean().item()}
    for fam in world.FAMILIES:
        sel = torch.tensor([f == fam for f in val["families"]])
        if sel.any():
            out[fam] = right[sel].float().mean().item()
    return out


class RelationalHeads(torch.nn.Module):
    """Training-only heads of the relational stage (docs/WORLD.md, "How the relational families were learned"), never
    written to the checkpoint: `name` asks the answer position where the objects the question names are, `position`
    asks each visual token where the object reaching its patch is."""

    def __init__(self, dim: int):
        super().__init__()
        self.name, self.position = torch.nn.Linear(dim, 4), torch.nn.Linear(dim, 2)

    def losses(self, hidden, vis, named, centres, has):
        given = named[:, 4:].repeat_interleave(2, 1)  # (B, 4): which of the two named positions the question has
        name = (((self.name(hidden) - named[:, :4]) ** 2) * given).sum() / given.sum().clamp(min=1)
        sel = has.flatten(1)  # (B, P)
        position = F.mse_loss(self.position(vis)[sel], centres.flatten(1, 2)[sel]) if sel.any() else vis.sum() * 0
        return name, position


def train(a, tower, projector, dec, prompts: Prompts, work: Path) -> dict:
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    image, end = prompts.image, prompts.end
    heads = RelationalHeads(dec.cfg.dim)
    everything = list(projector.parameters()) + list(dec.parameters())
    stages = [("align", a.align_steps, a.align_lr, list(projector.parameters())),
              ("tune", a.tune_steps, a.tune_lr, everything),
              ("relational", a.relational_steps, a.tune_lr, everything + list(heads.parameters()))]
    stages = [s for s in stages if s[1] > 0]  # a run from --init may skip the first two
    ck_path = work / "train.pt"
    state = {"stage": 0, "step": 0, "elapsed": 0.0, "stage_elapsed": 0.0, "opt": None, "history": []}
    if ck_path.exists():
        ck = torch.load(ck_path, map_location="cpu", weights_only=False)
        projector.load_state_dict(ck["projector"]), dec.load_state_dict(ck["decoder"])
        if "heads" in ck:
            heads.load_state_dict(ck["heads"])
        state = {"stage_elapsed": 0.0, **ck["state"]}
        print(f"resuming {ck_path}: stage {stages[state['stage']][0] if state['stage'] < len(stages) else 'done'}, "
              f"step {state['step']}", flush=True)
    mean, std = list(CLIP_MEAN), list(CLIP_STD)
    S = tower.cfg.image_size

    def features_of(images):
        with torch.no_grad():
            return tower(world_data.to_pixels(images, mean, std, "cpu"))

    val_seeds = range(world.SPLITS["val"][0], world.SPLITS["val"][0] + a.val_scenes)
    val_images, _, val_qs = world_data.Batches("val", 1, S, tower.cfg.grid, questions=1, workers=1).fixed(val_seeds)
    ids, mask, answers, fams = prompts.encode(val_qs)
    val = {"features": features_of(torch.from_numpy(val_images)), "ids": ids, "mask": mask, "answers": answers, "families": fams}
    if state["stage"] >= len(stages):
        return {"validation": validate(projector, dec, val, image, end), "history": state["history"],
                "steps": state.get("steps_done", {})}

    data = world_data.Pregenerated(a.scenes, a.questions, S, tower.cfg.grid, a.workers, a.seed, prompts.encode, "cpu",
                                   a.batch, 1.0)
    t_cache = time.time()
    data.cache_features(lambda images: (features_of(images), torch.zeros(len(images), 0)))
    data.images = None
    print(f"cached the frozen tower's features of {a.scenes} scenes in {time.time() - t_cache:.1f}s", flush=True)
    batches = iter(data)

    while state["stage"] < len(stages):
        name, steps, peak, params = stages[state["stage"]]
        for p in dec.parameters():
            p.requires_grad_(name != "align")
        opt = torch.optim.AdamW(params, lr=peak, weight_decay=0.0 if name == "align" else 0.01)
        if state["opt"] is not None:
            opt.load_state_dict(state["opt"])
        prog, t0, step0 = Progress(steps, state["step"], a.log_every), time.time(), state["step"]
        minutes = lambda: (state["stage_elapsed"] + time.time() - t0) / 60  # this stage's: --max-minutes caps each

        def snapshot():
            return {"projector": projector.state_dict(), "decoder": dec.state_dict(), "heads": heads.state_dict(),
                    "state": {**state, "elapsed": state["elapsed"] + time.time() - t0,
                              "stage_elapsed": state["stage_elapsed"] + time.time() - t0, "opt": opt.state_dict()}}

        print(f"stage {name}: {steps} steps at lr {peak:g}, batch {a.batch}", flush=True)
        while progress(state["step"], steps, minutes(), a.max_minutes) < 1:
            (feats, _), q_ids, q_mask, ans, (centres, has), named = next(batches)
            for g in opt.param_groups:
                g["lr"] = lr_at(state["step"], progress(state["step"], steps, minutes(), a.max_minutes), peak,
                                warmup=min(200, max(steps // 10, 1)))
            at_answer, at_end, hidden, vis = answer_logits(projector, dec, feats, q_ids, q_mask, ans, image)
            loss = F.cross_entropy(at_answer, ans) + F.cross_entropy(at_end, torch.full_like(ans, end))
            extra = {}
            if name == "relational":
                name_loss, position_loss = heads.losses(hidden, vis, named, centres, has)
                loss = loss + a.name_loss * name_loss + a.position_loss * position_loss
                extra = {"name_loss": name_loss.item(), "pos_loss": position_loss.item()}
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            state["step"] += 1
            acc = (at_answer.argmax(-1) == ans).float().mean().item()
            prog.report(state["step"], loss=loss.item(), answer_acc=acc, **extra)
            if state["step"] % a.save_every == 0:
                save(ck_path, snapshot())
            if state["step"] % a.val_every == 0 or progress(state["step"], steps, minutes(), a.max_minutes) >= 1:
                v = validate(projector, dec, val, image, end)
                state["history"].append({"stage": name, "step": state["step"], **{k: round(x, 4) for k, x in v.items()}})
                print("  val " + " ".join(f"{k} {x:.3f}" for k, x in v.items()), flush=True)
        state["elapsed"] += time.time() - t0
        state.setdefault("steps_done", {})[name] = state["step"]  # fewer than asked where --max-minutes stopped it
        state.update(stage=state["stage"] + 1, step=0, opt=None, stage_elapsed=0.0)
        print(f"stage {name}: {state['steps_done'][name] - step0} steps done here ({state['steps_done'][name]} in all), "
              f"{(time.time() - t0) / 60:.1f} min", flush=True)
        save(ck_path, {"projector": projector.state_dict(), "decoder": dec.state_dict(), "heads": heads.state_dict(), "state": state})
    data.close()
    return {"validation": validate(projector, dec, val, image, end), "history": state["history"],
            "steps": state.get("steps_done", {})}


MODEL_CARD = """# {name}

A LLaVA model of the assistant's synthetic world (docs/WORLD.md), in the llava-hf layout that
`assistant models import` reads like any download. It answers a world question about a 64 x 64 scene with one
word. It is the miniature of a real checkpoint: trained with every patch token (64 here), no compression.

- vision: CLIP vision model, 64 px, patch 8, width {vdim}, {vlayers} layers (the world set's encoder, models/default,
  rewritten as CLIP), feature layer -1, class token dropped; frozen throughout
- projector: two-layer MLP with GELU ({vdim} -> {ddim} -> {ddim})
- language model: Qwen2-style, width {ddim}, {dlayers} layers, {heads} heads / {kv} KV heads (the world set's medium
  decoder), vocabulary {vocab} (the world's byte-level BPE and `<image>`)
- training: {init}stage 1 (alignment) {align} steps of the projector alone; stage 2 (tuning) {tune} steps of projector and
  language model;{relational} batch {batch}, {scenes:,} train scenes x {questions} questions, {minutes:.0f} min on {device}
- validation ({val_n} val scenes, one question each, answer and end token both right): {overall:.1%}
  ({families})

Remade by:

    {command}
"""


def load_init(hf: Path, projector: Projector, dec: Decoder) -> None:
    """The projector and language model of an earlier checkpoint of this tool (its model.safetensors, under the names
    trained_tensors gives), so a run can continue one: --init DIR --align-steps 0 --tune-steps 0 --relational-steps N."""
    path = hf / "model.safetensors"
    if not path.is_file():
        fail(f"--init {hf}: no model.safetensors there (give a folder this tool wrote)")
    f = safetensors_io.SafetensorsFile(path)
    names = set(f.names)
    with torch.no_grad():
        for key, v in trained_tensors(projector, dec).items():
            if key not in names or list(f.shape(key)) != list(v.shape):
                fail(f"--init {hf}: {key} is missing or has another shape; it is not a checkpoint of this model")
            v.copy_(f.read(key))
    f.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="checkpoint folder to write (must not exist)")
    ap.add_argument("--from", dest="source", type=Path, default=REPO / "models" / "default",
                    help="the world set whose encoder and decoder start it (default: models/default)")
    ap.add_argument("--decoder", default="medium-d128-l3", help="the set's decoder to start the language model from")
    ap.add_argument("--work", type=Path, help="checkpoints of the run (default: OUT.work beside --out); resumed when present")
    ap.add_argument("--init", type=Path, help="start the projector and language model from a checkpoint this tool wrote "
                                              "(with --align-steps 0 --tune-steps 0: only the relational stage runs)")
    ap.add_argument("--align-steps", type=int, default=1500)
    ap.add_argument("--tune-steps", type=int, default=4000)
    ap.add_argument("--relational-steps", type=int, default=0,
                    help="a third stage: tuning with the relational heads (--name-loss, --position-loss) that taught the "
                         "world sets the spatial and nearest families (docs/WORLD.md)")
    ap.add_argument("--name-loss", type=float, default=30.0)
    ap.add_argument("--position-loss", type=float, default=5.0)
    ap.add_argument("--align-lr", type=float, default=1e-3)
    ap.add_argument("--tune-lr", type=float, default=3e-4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--scenes", type=int, default=20000)
    ap.add_argument("--questions", type=int, default=4, help="questions per train scene")
    ap.add_argument("--val-scenes", type=int, default=500)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--save-every", type=int, default=250)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--max-minutes", type=float, default=1e9, help="cap on each stage's minutes")
    ap.add_argument("--threads", type=int, default=max(os.cpu_count() or 1, 1))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.out.exists():
        fail(f"{a.out} exists: give a new folder")
    work = a.work or a.out.with_name(a.out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((a.source / "manifest.json").read_text())
    if not manifest.get("world"):
        fail(f"{a.source} is not a world set")
    golden = json.loads((a.source / manifest["golden"]).read_text())
    spec = next((d for d in manifest["decoders"] if d["name"] == a.decoder), None)
    if spec is None:
        fail(f"{a.source} has no decoder {a.decoder}: {', '.join(d['name'] for d in manifest['decoders'])}")

    enc = world_encoder(a.source, manifest, golden)
    tower, tower_tensors = clip_tower(enc)
    pixels = torch.tensor(golden["pixel_values"], dtype=torch.float32).reshape(1, 3, enc.cfg.image_size, enc.cfg.image_size)
    with torch.no_grad():
        diff = float((tower(pixels) - enc(pixels)[0]).abs().max())
    if diff > TOLERANCE:
        fail(f"the CLIP rewrite of the encoder is {diff:.3g} from it")
    dec = inplace_decoder.rebuild(a.source, spec)
    inplace_decoder.check_golden(dec, golden["decoders"][spec["name"]], manifest["tokenizer"]["special_tokens"])
    print(f"from {a.source}: encoder (CLIP rewrite within {diff:.2g}) and decoder {a.decoder} (golden logits match)", flush=True)

    files = work / "files"
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir()
    added = write_tokenizer(files, a.source, manifest)
    dec = grown_decoder(dec, max(added.values()) + 1 - dec.cfg.vocab_size)
    write_config(files, tower, dec, added)
    (files / "world.json").write_text(json.dumps({"definition": "tools/world.py"}) + "\n")  # the importer's cue (import_hf.world_spec)
    prompts = Prompts(files, tower.cfg.patches)
    torch.manual_seed(a.seed)
    projector = Projector(tower.cfg.feature_dim, dec.cfg.dim, "gelu")
    if a.init is not None:
        load_init(a.init, projector, dec)
        print(f"projector and language model from {a.init}", flush=True)
    t0 = time.time()
    result = train(a, tower, projector, dec, prompts, work)
    minutes = (time.time() - t0) / 60
    v = result["validation"]
    print("validation: " + " ".join(f"{k} {x:.3f}" for k, x in v.items()), flush=True)

    safetensors_io.write(files / "model.safetensors", checkpoint_tensors(tower_tensors, projector.eval(), dec.eval()), "F32",
                         {"format": "pt"})
    (files / "training.json").write_text(json.dumps({"validation": v, "history": result["history"], "steps": result["steps"],
                                                     "args": {k: str(x) for k, x in vars(a).items()}}, indent=1) + "\n")
    given = list(sys.argv[1:] if argv is None else argv)
    for i, arg in reversed(list(enumerate(given))):  # where the run kept its checkpoints does not shape the model
        if arg == "--work":
            del given[i:i + 2]
        elif arg.startswith("--work="):
            del given[i]
    command = "/usr/bin/python3 tools/world_checkpoint.py " + " ".join(given)
    fam = ", ".join(f"{f} {v[f]:.0%}" for f in world.FAMILIES if f in v)
    c = dec.cfg
    done = result["steps"]
    (files / "README.md").write_text(MODEL_CARD.format(
        name=a.out.name, vdim=tower.cfg.hidden, vlayers=tower.cfg.layers, ddim=c.dim, dlayers=c.layers, heads=c.heads,
        kv=c.kv_heads, vocab=c.vocab_size, init=(f"from `{a.init}`'s projector and language model (--init; its README gives its own training), then " if a.init else ""),
        align=done.get("align", a.align_steps), tune=done.get("tune", a.tune_steps),
        relational=(f" stage 3 (relational) {done.get('relational', a.relational_steps)} steps of both with the training-only name (x{a.name_loss:g}) "
                    f"and position (x{a.position_loss:g}) heads;" if a.relational_steps else ""), batch=a.batch, scenes=a.scenes,
        questions=a.questions, minutes=minutes, device="a 2-core CPU" if (os.cpu_count() or 0) <= 2 else f"{os.cpu_count()} CPU threads",
        val_n=a.val_scenes, overall=v["overall"], families=fam, command=command))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(files, a.out)  # the folder appears whole
    print(f"wrote {a.out}: {sum(p.numel() for p in tower.parameters()) + sum(p.numel() for p in projector.parameters()) + sum(p.numel() for p in dec.parameters()):,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
