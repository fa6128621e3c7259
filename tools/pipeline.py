"""The reference ask path in PyTorch: the same steps the C# engine runs, used for golden outputs.

Prompt layout ([query][visual tokens][answer]):
  <|im_start|> query-text-tokens | <|vision_start|> V visual tokens <|vision_end|> | answer ... <|im_end|>
The query part is prefilled once; its last hidden state at the last query token is QueCC's query embedding.
"""
import numpy as np
import torch
import torch.nn.functional as F

from bpe_tokenizer import BpeTokenizer


def preprocess(rgb: np.ndarray, size: int, mean, std) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, size, size) float: bilinear resize (half-pixel centres, no antialias),
    scale to [0, 1], normalise per channel. The C# kernel in Shaders/ does exactly this."""
    x = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None]  # (1, 3, H, W)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    x = x / 255.0
    return (x - torch.tensor(mean)[None, :, None, None]) / torch.tensor(std)[None, :, None, None]


def query_ids(tok: BpeTokenizer, query: str) -> list:
    return [tok.special["<|im_start|>"]] + tok.encode(query)


@torch.no_grad()
def ask(vision, compressor_at_k, embed, decoder, tok: BpeTokenizer, pixel_values, query: str, max_new: int,
        stop_ids=()):
    """Returns a dict of every intermediate the C# parity test checks."""
    features, features_multi = vision(pixel_values)  # (1, P, Dv), (1, P, Dm)
    ids = torch.tensor([query_ids(tok, query)])  # (1, Tq)
    Tq = ids.shape[1]
    past = decoder.empty_past()
    out = decoder(embed(ids), torch.ones(1, Tq, dtype=torch.long), torch.arange(Tq)[None], *past)
    query_hidden, past = out[1], list(out[2:])
    query_embedding = query_hidden[:, -1]  # (1, D)
    visual = compressor_at_k(features, features_multi, query_embedding)  # (1, V, D)
    V = visual.shape[1]
    start = embed(torch.tensor([[tok.special["<|vision_start|>"]]]))
    end = embed(torch.tensor([[tok.special["<|vision_end|>"]]]))
    vis_in = torch.cat([start, visual, end], dim=1)  # (1, V+2, D)
    T = V + 2
    out = decoder(vis_in, torch.ones(1, Tq + T, dtype=torch.long), torch.arange(Tq, Tq + T)[None], *past)
    logits, past = out[0][:, -1], list(out[2:])  # (1, vocab)
    prefill_logits = logits[0].clone()
    tokens, pos = [], Tq + T
    for _ in range(max_new):
        nxt = int(logits[0].argmax())
        if nxt in stop_ids:
            break
        tokens.append(nxt)
        out = decoder(embed(torch.tensor([[nxt]])), torch.ones(1, pos + 1, dtype=torch.long),
                      torch.tensor([[pos]]), *past)
        logits, past = out[0][:, -1], list(out[2:])
        pos += 1
    return dict(features=features[0], features_multi=features_multi[0], query_ids=ids[0].tolist(),
                query_embedding=query_embedding[0], visual_tokens=visual[0], prefill_logits=prefill_logits,
                greedy_tokens=tokens)
