"""Model definitions: shapes, QueCC's query dependence, and the decoder's KV cache against recomputation."""
import torch

from decoder import Decoder, DecoderConfig
from quecc import QueCC, QueCCAtK, QueCCConfig
from tokenpacker import TokenPacker
from vision_encoder import VisionConfig, VisionEncoder


def test_vision_encoder_shapes():
    cfg = VisionConfig()
    f, fm = VisionEncoder(cfg)(torch.randn(2, 3, cfg.image_size, cfg.image_size))
    assert f.shape == (2, cfg.patches, cfg.dim)
    assert fm.shape == (2, cfg.patches, cfg.dim * len(cfg.multi_layers))


def test_vision_multi_features_include_the_feature_layer():
    cfg = VisionConfig()
    f, fm = VisionEncoder(cfg).eval()(torch.randn(1, 3, cfg.image_size, cfg.image_size))
    last = cfg.multi_layers.index(cfg.layers)
    assert torch.equal(fm[..., last * cfg.dim:(last + 1) * cfg.dim], f)


def test_quecc_tokens_for_every_kernel():
    cfg = QueCCConfig()
    comp = QueCC(cfg).eval()
    P = cfg.grid ** 2
    assert [cfg.tokens_for(k) for k in cfg.kernels()] == [1, 4, 16, 64]
    for k in cfg.kernels():
        out = comp(torch.randn(3, P, cfg.vision_dim), torch.randn(3, P, cfg.multi_dim), torch.randn(3, cfg.llm_dim), k)
        assert out.shape == (3, cfg.tokens_for(k), cfg.llm_dim)


def test_local_attention_only_sees_its_own_region():
    # Changing the key/value features of one k x k region may change only that region's token.
    torch.manual_seed(0)
    cfg = QueCCConfig()
    comp = QueCC(cfg).eval()
    P, k = cfg.grid ** 2, 4
    f, fm, q = torch.randn(1, P, cfg.vision_dim), torch.randn(1, P, cfg.multi_dim), torch.randn(1, cfg.llm_dim)
    base = comp(f, fm, q, k)
    fm2 = fm.clone().reshape(1, cfg.grid, cfg.grid, -1)
    fm2[:, :k, :k] += 5.0  # the top-left region
    out = comp(f, fm2.reshape(1, P, -1), q, k)
    changed = (out - base).abs().amax(-1)[0] > 1e-5
    assert changed.tolist() == [True, False, False, False]


def test_quecc_uses_the_query_and_tokenpacker_does_not():
    torch.manual_seed(0)
    cfg = QueCCConfig()
    P = cfg.grid ** 2
    f, fm = torch.randn(1, P, cfg.vision_dim), torch.randn(1, P, cfg.multi_dim)
    q1, q2 = torch.randn(1, cfg.llm_dim), torch.randn(1, cfg.llm_dim)
    quecc, packer = QueCC(cfg).eval(), TokenPacker(cfg).eval()
    assert not torch.allclose(QueCCAtK(quecc, 2)(f, fm, q1), QueCCAtK(quecc, 2)(f, fm, q2))
    assert torch.equal(QueCCAtK(packer, 2)(f, fm, q1), QueCCAtK(packer, 2)(f, fm, q2))


@torch.no_grad()
def test_decoder_kv_cache_matches_full_recompute():
    torch.manual_seed(0)
    cfg = DecoderConfig(vocab_size=50)
    dec = Decoder(cfg).eval()
    ids = torch.randint(0, 50, (1, 9))
    x = dec.embed_tokens(ids)
    full = dec(x, torch.ones(1, 9, dtype=torch.long), torch.arange(9)[None], *dec.empty_past())
    # prefix of 5, then one token at a time
    out = dec(x[:, :5], torch.ones(1, 5, dtype=torch.long), torch.arange(5)[None], *dec.empty_past())
    past, logits = list(out[2:]), [out[0]]
    for t in range(5, 9):
        out = dec(x[:, t:t + 1], torch.ones(1, t + 1, dtype=torch.long), torch.tensor([[t]]), *past)
        past = list(out[2:])
        logits.append(out[0])
    assert torch.allclose(torch.cat(logits, 1), full[0], atol=1e-5)
    assert past[0].shape == (1, cfg.kv_heads, 9, cfg.head_dim)


@torch.no_grad()
def test_decoder_is_causal():
    torch.manual_seed(0)
    dec = Decoder(DecoderConfig(vocab_size=50)).eval()
    x = torch.randn(1, 6, 64)
    a = dec(x, torch.ones(1, 6, dtype=torch.long), torch.arange(6)[None], *dec.empty_past())[0]
    x2 = x.clone()
    x2[:, 4:] += 1.0
    b = dec(x2, torch.ones(1, 6, dtype=torch.long), torch.arange(6)[None], *dec.empty_past())[0]
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)
    assert not torch.allclose(a[:, 4:], b[:, 4:])
