import bpe_tokenizer as bpe


def test_training_is_deterministic_and_sized():
    v1, m1 = bpe.train(bpe.tiny_corpus(), 512)
    v2, m2 = bpe.train(bpe.tiny_corpus(), 512)
    assert (v1, m1) == (v2, m2)
    assert len(v1) == 256 + len(m1)
    assert len(v1) + len(bpe.SPECIAL_TOKENS) <= 512


def test_encode_roundtrips_through_bytes():
    vocab, merges = bpe.train(bpe.tiny_corpus(), 512)
    tok = bpe.BpeTokenizer(vocab, merges)
    inv = {i: t for t, i in vocab.items()}
    unmap = {c: b for b, c in bpe.BYTE_CHARS.items()}
    for text in ["What color is the red square?", "café 🙂 12 ok", "  spaces\n\nnewlines"]:
        ids = tok.encode(text)
        assert bytes(unmap[c] for i in ids for c in inv[i]).decode("utf-8") == text


def test_merges_shorten_common_words():
    vocab, merges = bpe.train(bpe.tiny_corpus(), 512)
    tok = bpe.BpeTokenizer(vocab, merges)
    assert len(tok.encode(" square")) < len(" square".encode())


def test_special_tokens_follow_the_vocabulary():
    vocab, merges = bpe.train(bpe.tiny_corpus(), 512)
    tok = bpe.BpeTokenizer(vocab, merges)
    assert sorted(tok.special.values()) == list(range(len(vocab), len(vocab) + len(bpe.SPECIAL_TOKENS)))
    assert tok.special["<|im_end|>"] not in tok.encode("<|im_end|>")
