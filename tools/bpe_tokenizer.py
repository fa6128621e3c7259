"""A byte-level BPE tokenizer written in the Qwen2 file format: vocab.json + merges.txt.

Training is the plain greedy algorithm (merge the most frequent adjacent pair, ties broken by the pair's
text so a corpus always gives the same merges). Encoding applies merges by rank, as Hugging Face's and
Microsoft.ML.Tokenizers' BPE do. Special tokens are not in vocab.json (as with Qwen2): they take the ids
after it and are listed in the manifest.
"""
import collections
import json
from pathlib import Path

import regex

# Qwen2's pre-tokenizer pattern.
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|vision_pad|>"]


def bytes_to_unicode() -> dict:
    """GPT-2's reversible map from bytes to printable characters (the alphabet of vocab.json)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, map(chr, chars)))


BYTE_CHARS = bytes_to_unicode()


# GPT-2's pattern, which SmolLM2's tokenizer (SmolVLM's) applies after splitting every digit off on its own.
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
SPLITS = ("qwen2", "smollm")


def split_words(text: str, split: str = "qwen2") -> list:
    """The pre-tokenizer's pieces: Qwen2's regex, or SmolLM2's Sequence of Digits (individual digits) and GPT-2's
    ByteLevel regex, which runs within each stretch of text between digits."""
    if split == "qwen2":
        return regex.findall(QWEN2_PATTERN, text)
    if split != "smollm":
        raise ValueError(f"pre-tokenizer split {split}")
    words = []
    for run in regex.findall(r"\p{N}|[^\p{N}]+", text):
        words += [run] if regex.fullmatch(r"\p{N}", run) else regex.findall(GPT2_PATTERN, run)
    return words


def pretokenize(text: str, split: str = "qwen2") -> list:
    return ["".join(BYTE_CHARS[b] for b in piece.encode("utf-8")) for piece in split_words(text, split)]


def train(corpus: list, vocab_size: int, split: str = "qwen2") -> tuple:
    """Returns (vocab: token -> id, merges: list of (a, b)); vocab_size counts special tokens too."""
    target = vocab_size - len(SPECIAL_TOKENS)
    assert target >= 256, "vocab_size must leave room for the 256 byte tokens and the special tokens"
    words = collections.Counter(w for line in corpus for w in pretokenize(line, split))
    splits = {w: list(w) for w in words}
    vocab = {BYTE_CHARS[b]: i for i, b in enumerate(sorted(BYTE_CHARS))}
    merges = []
    while len(vocab) < target:
        pairs = collections.Counter()
        for w, n in words.items():
            s = splits[w]
            for a, b in zip(s, s[1:]):
                pairs[a, b] += n
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        vocab[best[0] + best[1]] = len(vocab)
        for w in words:
            s, out, i = splits[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            splits[w] = out
    return vocab, merges


class BpeTokenizer:
    def __init__(self, vocab: dict, merges: list, split: str = "qwen2"):
        self.vocab = vocab
        self.split = split
        self.ranks = {tuple(m): r for r, m in enumerate(merges)}
        self.special = {t: len(vocab) + i for i, t in enumerate(SPECIAL_TOKENS)}

    @classmethod
    def load(cls, folder: Path) -> "BpeTokenizer":
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
        return cls(vocab, [tuple(line.split(" ")) for line in lines if line and not line.startswith("#")])

    def encode_word(self, word: str) -> list:
        parts = list(word)
        while len(parts) > 1:
            ranked = [(self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, i = min(ranked)
            if rank == 1 << 30:
                break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        return [self.vocab[p] for p in parts]

    def encode(self, text: str) -> list:
        """Plain text only: special-token strings in user text are not special (no prompt injection)."""
        return [i for w in pretokenize(text, self.split) for i in self.encode_word(w)]

    def save(self, folder: Path, merges: list) -> None:
        (folder / "vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
        (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
                                           encoding="utf-8")


def tiny_corpus() -> list:
    """A small fixed English corpus about shapes and scenes, enough for a few hundred merges."""
    colors = ["red", "green", "blue", "yellow", "purple", "orange", "white", "gray"]
    shapes = ["circle", "square", "triangle", "star", "cross", "diamond"]
    lines = []
    for c in colors:
        for s in shapes:
            lines += [f"What color is the {s}?", f"How many {c} {s}s are there?", f"Is there a {c} {s}?",
                      f"The {c} {s} is left of the big one.", f"Which shape is nearest to the {c} {s}?"]
    lines += ["Read the text on the screen.", "What does it say?", "yes", "no", "one two three four five six"]
    return lines
