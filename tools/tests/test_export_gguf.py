"""tools/export_gguf.py's ggml blocks (Q8_0, Q4_0): the bytes of hand-worked blocks, the round trip's error, and
the tensor info a quantized tensor gets in the file. That llama.cpp reads them as meant is
tests/LlamaCpp.Tests/QuantizedMmprojTests."""
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

import export_gguf  # noqa: E402


def test_a_q8_0_block_is_its_f16_scale_then_32_signed_bytes():
    x = np.full((1, 32), 1.27, np.float32)
    x[0, 31] = -1.27
    kind, data = export_gguf.quantize_rows(x, "q8_0")
    assert kind == 8 and len(data) == 34
    assert data[:2] == np.float16(1.27 / 127).tobytes()
    assert list(data[2:33]) == [127] * 31 and data[33] == 0x81  # -127 as a byte


def test_a_q4_0_block_packs_values_j_and_j_plus_16_into_byte_j():
    # -16 .. 15: the largest magnitude is -16, so d = -16 / -8 = 2 and codes are floor(x / 2 + 8.5), at most 15.
    x = (np.arange(32, dtype=np.float32) - 16)[None, :]
    kind, data = export_gguf.quantize_rows(x, "q4_0")
    assert kind == 2 and len(data) == 18
    assert data[:2] == b"\x00\x40"  # 2.0 as float16
    # byte 0: x = -16 -> 0 (low), x = 0 -> 8 (high); byte 1: -15 -> 1, 1 -> 9; byte 15: -1 -> 8, 15 -> 16, kept at 15.
    assert data[2] == 0x80 and data[3] == 0x91 and data[17] == 0xF8


@pytest.mark.parametrize("quant", ["q8_0", "q4_0"])
def test_the_round_trip_moves_each_value_by_at_most_a_step(quant):
    x = np.random.default_rng(1).standard_normal((8, 96)).astype(np.float32)
    kind, data = export_gguf.quantize_rows(x, quant)
    y = export_gguf.dequantize_rows(data, kind, x.shape)
    blocks = np.abs(x.reshape(8, 3, 32)).max(axis=2)
    step = np.repeat(blocks / (127 if quant == "q8_0" else 8), 32, axis=1)
    # Half a step from rounding (Q4_0's far side, +|m| against codes up to 7 d, a whole step), plus the scale's
    # float16 rounding (relative 2^-11) times the largest code (127 or 8).
    bound = step * (0.5 + 127 / 2048 if quant == "q8_0" else 1 + 8 / 2048) + 1e-6
    assert np.all(np.abs(y - x) <= bound)
    assert np.abs(y - x).max() > 0
    # The value of largest magnitude in each Q4_0 block comes back exactly (up to the float16 scale).
    if quant == "q4_0":
        at = np.abs(x.reshape(8, 3, 32)).argmax(axis=2)
        m = np.take_along_axis(x.reshape(8, 3, 32), at[..., None], 2)
        assert np.allclose(np.take_along_axis(y.reshape(8, 3, 32), at[..., None], 2), m, rtol=1e-3)


def test_a_zero_block_and_rows_that_are_not_whole_blocks():
    kind, data = export_gguf.quantize_rows(np.zeros((2, 32), np.float32), "q4_0")
    assert np.all(export_gguf.dequantize_rows(data, kind, (2, 32)) == 0)
    with pytest.raises(ValueError, match="not whole 32-value blocks"):
        export_gguf.quantize_rows(np.zeros((2, 48), np.float32), "q8_0")
    with pytest.raises(ValueError, match="unknown block type"):
        export_gguf.quantize_rows(np.zeros((2, 32), np.float32), "q5_1")


def test_a_quantized_tensor_is_written_with_its_type_and_block_bytes(tmp_path):
    g = export_gguf.GGUFWriter()
    g.tensor("m", torch.randn(3, 64), "q4_0")
    g.tensor("b", torch.randn(3))
    path = tmp_path / "t.gguf"
    g.write(path)
    raw = path.read_bytes()
    assert raw[:4] == b"GGUF" and struct.unpack_from("<IQQ", raw, 4) == (3, 2, 0)
    at = 24
    infos = []
    for _ in range(2):
        (n,) = struct.unpack_from("<Q", raw, at)
        name = raw[at + 8:at + 8 + n].decode()
        at += 8 + n
        (dims,) = struct.unpack_from("<I", raw, at)
        shape = struct.unpack_from(f"<{dims}Q", raw, at + 4)
        kind, offset = struct.unpack_from("<IQ", raw, at + 4 + 8 * dims)
        at += 4 + 8 * dims + 12
        infos.append((name, shape, kind, offset))
    assert infos[0] == ("m", (64, 3), 2, 0)  # innermost dimension first
    assert infos[1] == ("b", (3,), 0, 128)  # after 3 rows x 2 blocks x 18 bytes = 108, aligned to 32
    data = -(-at // 32) * 32
    assert len(raw) == data + 128 + 32


def test_as_f32_needs_mmproj_quant(capsys):
    assert export_gguf.main(["/nonexistent", "--out", "/tmp/x", "--as-f32"]) == 2
    assert "--as-f32 goes with --mmproj-quant" in capsys.readouterr().err


def test_an_export_that_fails_part_way_leaves_nothing(tmp_path):
    # Issue 31, finding 7: text.gguf written, then the mmproj fails: no text.gguf, no partial, no folder the run made.
    out = tmp_path / "a" / "gguf"

    def broken():
        raise RuntimeError("mmproj failed")
    with pytest.raises(RuntimeError):
        export_gguf.write_all(out, {"text.gguf": export_gguf.GGUFWriter, "mmproj.gguf": broken})
    assert not (tmp_path / "a").exists()
    existing = tmp_path / "kept"
    existing.mkdir()
    (existing / "text.gguf").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        export_gguf.write_all(existing, {"text.gguf": export_gguf.GGUFWriter, "mmproj.gguf": broken})
    assert sorted(p.name for p in existing.iterdir()) == ["text.gguf"] and (existing / "text.gguf").read_bytes() == b"old"
    export_gguf.write_all(existing, {"text.gguf": export_gguf.GGUFWriter, "mmproj.gguf": export_gguf.GGUFWriter})
    assert sorted(p.name for p in existing.iterdir()) == ["mmproj.gguf", "text.gguf"]


def test_one_block_quantizer_with_ggmls_tie_rules_for_the_gguf_and_the_engine():
    # Issue 26, item 5: the GGUF writer and the engine's MatMulNBits take their codes from one function, with ggml's
    # tie rules (Q8_0: roundf, a tie away from zero; Q4_0: floor(x / d + 8.5), a tie up). Rows built so that x / d
    # lands exactly on halves: d = 1 (Q8_0: the block's max 127), d = -1 (Q4_0: the block's largest magnitude is -8).
    import quantize
    q8 = np.zeros((1, 32), np.float32)
    q8[0, :5] = [127, 2.5, -2.5, 0.5, -0.5]
    codes, d = quantize._codes(q8, 8)
    assert d[0, 0] == 1 and list(codes[0, :5].astype(int) - 128) == [127, 3, -3, 1, -1]
    kind, data = export_gguf.quantize_rows(q8, "q8_0")
    block = np.frombuffer(data, np.uint8)
    assert block[:2].view("<f2")[0] == 1 and list(block[2:7].view(np.int8)) == [127, 3, -3, 1, -1]
    q4 = np.zeros((1, 32), np.float32)
    q4[0, :5] = [-8, 2.5, -2.5, 0.5, -0.5]  # d = m / -8 = 1, so x / d = x
    codes, d = quantize._codes(q4, 4)
    assert d[0, 0] == 1 and list(codes[0, :5]) == [0, 11, 6, 9, 8]  # floor(x + 8.5): 2.5 -> 11, -0.5 -> 8 (ties up)
    kind, data = export_gguf.quantize_rows(q4, "q4_0")
    block = np.frombuffer(data, np.uint8)
    assert list(block[2:5] & 15) == [0, 11, 6] and block[2] >> 4 == 8  # value j in byte j's low nibble, value j + 16 (0: code 8) in its high
    assert np.array_equal(export_gguf.dequantize_rows(data, kind, (1, 32)), quantize.round_trip(q4, 4))
