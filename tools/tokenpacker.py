"""The query-agnostic baseline: QueCC's local cross-attention without query injection (TokenPacker-style).

At 1-4 visual tokens this is what QueCC is measured against; its exported graphs take no query input.
"""
from quecc import QueCC, QueCCConfig


def TokenPacker(cfg: QueCCConfig) -> QueCC:
    return QueCC(cfg, query_aware=False)
