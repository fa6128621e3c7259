"""tools/genai_model.py: the joined graph's interface and weights, the GenAI config, and its refusals.

GenAI itself runs the folder in tests/LlamaCpp.Tests/GenAiAgreementTests (against the engine's logits and tokens)."""
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

import genai_model  # noqa: E402
import make_hf_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    base = tmp_path_factory.mktemp("genai")
    assert make_hf_checkpoint.main(["--out", str(base / "hf"), "--text", "llama", "--untied"]) == 0
    p = subprocess.run([sys.executable, str(TOOLS / "import_hf.py"), str(base / "hf"), "--out", str(base / "set")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return base / "set"


def run(*args):
    p = subprocess.run([sys.executable, str(TOOLS / "genai_model.py"), *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def test_joined_graph_takes_ids_and_keeps_every_weight_once(imported, tmp_path):
    out = tmp_path / "genai"
    code, _, err = run(imported, "--out", out, "--context", "512")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["genai_config.json", "model.onnx", "model.onnx.data"]
    model = onnx.load(str(out / "model.onnx"))
    onnx.checker.check_model(model)
    m = json.loads((imported / "manifest.json").read_text())
    spec = m["decoders"][0]
    layers = spec["layers"]
    past = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    present = [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask", "position_ids", *past]
    assert [o.name for o in model.graph.output] == ["logits", *present]
    embed = onnx.load(str(imported / spec["embed"]["file"]))
    decoder = onnx.load(str(imported / spec["decoder"]["file"]))
    names = [t.name for t in model.graph.initializer]
    assert len(names) == len(set(names)) == len(embed.graph.initializer) + len(decoder.graph.initializer)
    assert len(model.graph.node) == len(embed.graph.node) + len(decoder.graph.node)
    # the embedding's output now feeds the decoder inside the graph
    assert any("inputs_embeds" in n.input for n in model.graph.node)
    assert any("inputs_embeds" in n.output for n in model.graph.node)

    c = json.loads((out / "genai_config.json").read_text())
    d = c["model"]["decoder"]
    assert c["model"]["type"] == "llama" and c["model"]["context_length"] == 512 and c["search"]["max_length"] == 512
    assert (d["num_hidden_layers"], d["num_attention_heads"], d["num_key_value_heads"], d["head_size"], d["hidden_size"]) == \
        (layers, spec["heads"], spec["kv_heads"], spec["head_dim"], spec["dim"])
    assert c["model"]["vocab_size"] == spec["vocab_size"]
    special = m["tokenizer"]["special_tokens"]
    assert c["model"]["eos_token_id"] == [special[s] for s in m["prompt"]["stop"]]
    # the importer's default decoder writes its cache in place, and GenAI is told to run it so
    assert spec["kv_cache"] == "in_place"
    assert c["search"]["past_present_share_buffer"] is True and c["search"]["do_sample"] is False


def test_an_existing_folder_is_refused_and_left_alone(imported, tmp_path):
    out = tmp_path / "genai"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run(imported, "--out", out)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_an_unknown_decoder_is_refused_with_nothing_written(imported, tmp_path):
    out = tmp_path / "genai"
    code, _, err = run(imported, "--out", out, "--decoder", "nope")
    assert code == 2 and "nope" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not list(tmp_path.glob(".genai.partial"))


def test_join_refuses_a_graph_that_is_not_an_embed_graph(imported):
    m = json.loads((imported / "manifest.json").read_text())
    decoder = onnx.load(str(imported / m["decoders"][0]["decoder"]["file"]))
    with pytest.raises(ValueError, match="embed graph"):
        genai_model.join(decoder, decoder)


# Issue 31, finding 7: the graphs a manifest names are judged as the engine judges them.
@pytest.mark.parametrize("case", ["absolute", "dotdot", "device"])
def test_a_manifest_naming_a_graph_outside_the_set_is_refused(imported, tmp_path, case):
    import shutil
    src = tmp_path / "set"
    shutil.copytree(imported, src)
    m = json.loads((src / "manifest.json").read_text())
    spec = m["decoders"][0]
    if case == "absolute":
        spec["embed"]["file"] = str((imported / spec["embed"]["file"]).resolve())
    elif case == "dotdot":
        shutil.copy(imported / spec["embed"]["file"], tmp_path / "embed.onnx")
        spec["embed"]["file"] = "../embed.onnx"
    else:
        (src / spec["embed"]["file"]).unlink()
        (src / spec["embed"]["file"]).symlink_to("/dev/zero")
    (src / "manifest.json").write_text(json.dumps(m))
    out = tmp_path / "genai"
    code, _, err = run(src, "--out", out)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert ("relative paths inside it" if case != "device" else "not a regular file") in err
    assert not out.exists()
