"""tools/decoder.py: the fused attention (ONNX Runtime's GroupQueryAttention when exported) against the operator
graph it replaces, in PyTorch and in the exported graph's structure. ONNX Runtime runs the fused graphs in
tests/Engine.Tests/ImportedSetTests (1e-4 against the importer's PyTorch) and tests/LlamaCpp.Tests."""
import sys
from pathlib import Path

import onnx
import pytest
import torch

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

import decoder  # noqa: E402
import export  # noqa: E402


def pair(**kw):
    plain = decoder.Decoder(decoder.DecoderConfig(**kw)).eval()
    fused = decoder.Decoder(decoder.DecoderConfig(fused_attention=True, **kw)).eval()
    fused.load_state_dict(plain.state_dict())
    return plain, fused


# kv_heads = heads: no grouping, as Qwen1.5 (llava-interleave-qwen-0.5b) has
@pytest.mark.parametrize("kv_heads", [2, 6])
@pytest.mark.parametrize("past,new", [(0, 5), (3, 1), (4, 3)])  # a first prompt, a decode step, a prompt on a cache
def test_fused_attention_equals_the_operator_graph(past, new, kv_heads):
    torch.manual_seed(past * 10 + new)
    plain, fused = pair(heads=6, kv_heads=kv_heads, dim=48)
    cache = [torch.randn(1, kv_heads, past, 8) for _ in range(4)]
    args = (torch.randn(1, new, 48), torch.ones(1, past + new, dtype=torch.long), torch.arange(past, past + new)[None], *cache)
    with torch.no_grad():
        a, b = plain(*args), fused(*args)
    for x, y in zip(a, b):
        assert x.shape == y.shape and torch.allclose(x, y, atol=1e-5)


# kv_heads = heads once stopped torch 1.13's export (its peephole pass failed on the no-op grouping reshapes)
@pytest.mark.parametrize("kv_heads", [2, 4])
def test_the_fused_export_is_one_group_query_attention_a_layer(tmp_path, kv_heads):
    _, fused = pair(layers=3, kv_heads=kv_heads)
    spec = export.decoder_io(fused.cfg)
    past = [torch.randn(1, kv_heads, 3, 16) for _ in range(6)]
    path = tmp_path / "decoder.onnx"
    export.export_graph(fused, (torch.randn(1, 2, 64), torch.ones(1, 5, dtype=torch.long), torch.tensor([[3, 4]]), *past), path, spec)
    m = onnx.load(str(path))
    gqa = [n for n in m.graph.node if n.op_type == "GroupQueryAttention"]
    assert len(gqa) == 3 and all(n.domain == "com.microsoft" for n in gqa)
    attrs = {a.name: a.i for a in gqa[0].attribute}
    assert attrs == {"num_heads": 4, "kv_num_heads": kv_heads}
    assert gqa[0].input[3:5] == ["past_key_values.0.key", "past_key_values.0.value"]
    assert not any(n.op_type == "Softmax" for n in m.graph.node)  # no attention left outside the fused kernels
    assert any(o.domain == "com.microsoft" for o in m.opset_import)
