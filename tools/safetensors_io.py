"""The safetensors file format, read and written without the safetensors package (not served by apt here).

A file is an 8-byte little-endian header length N, N bytes of JSON ({name: {"dtype", "shape",
"data_offsets": [begin, end]}, optional "__metadata__"}), then the tensor bytes, offsets relative to the end
of the header. Reading maps the file and converts one tensor at a time, so importing a checkpoint holds the
output plus one tensor, not the whole checkpoint twice.
"""
import json
import mmap
import os
import struct
from pathlib import Path

import numpy as np
import torch

# Element types this reader converts to float32 (or keeps as integers); anything else is refused by name.
FLOAT_DTYPES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}
INT_DTYPES = {"I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
MAX_HEADER = 100 << 20


def _printable(text: str, limit: int = 80) -> str:
    """A name from a header, fit for one line of a terminal: control characters escaped, cut at `limit`."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


class SafetensorsError(ValueError):
    """A file that is not a readable safetensors file; the message is one line naming the file."""


class SafetensorsFile:
    """One .safetensors file, mapped; `names` lists its tensors, `read(name)` converts one to a float32 tensor."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._file = open(self.path, "rb")
        except OSError as e:
            raise SafetensorsError(f"cannot open {self.path}: {e.strerror}") from e
        try:
            self._open_header()
        except BaseException:
            self._file.close()
            raise

    def _open_header(self) -> None:
        size = os.fstat(self._file.fileno()).st_size
        head = self._file.read(8)
        if len(head) < 8:
            raise SafetensorsError(f"{self.path} is not a safetensors file (shorter than its 8-byte header length)")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise SafetensorsError(f"{self.path} is not a safetensors file (header length {n} for a {size}-byte file)")
        try:
            header = json.loads(self._file.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SafetensorsError(f"{self.path} is not a safetensors file (its header is not JSON: {e})") from e
        except RecursionError as e:  # a header nested thousands deep: json's recursion, not a C stack overflow
            raise SafetensorsError(f"{self.path} is not a safetensors file (its header is nested too deep)") from e
        if not isinstance(header, dict):
            raise SafetensorsError(f"{self.path} is not a safetensors file (its header is not a JSON object)")
        metadata = header.pop("__metadata__", None) or {}
        self.metadata = metadata if isinstance(metadata, dict) else {}
        self._base = 8 + n
        self._entries = header
        for name, e in header.items():
            self._check_entry(name, e, size)
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size > 0 else None

    def _check_entry(self, name: str, e, size: int) -> None:
        """One header entry, judged before anything is read: integer offsets and dimensions (not strings, floats or
        booleans), each dimension below 2^40, and a byte range that holds exactly the tensor inside the file, with the
        element count computed exactly (a 10^30 dimension does not wrap)."""
        label = _printable(name)

        def whole(v) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if not isinstance(e, dict):
            raise SafetensorsError(f"{self.path}: tensor {label} has a malformed header entry (not an object)")
        offsets, dtype, shape = e.get("data_offsets"), e.get("dtype"), e.get("shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(whole(v) for v in offsets)):
            raise SafetensorsError(f"{self.path}: tensor {label} has malformed data_offsets (two integers expected)")
        if not (isinstance(shape, list) and len(shape) <= 8 and all(whole(d) and 0 <= d < 1 << 40 for d in shape)):
            raise SafetensorsError(f"{self.path}: tensor {label} has a malformed shape (at most 8 integers from 0 to 2^40 expected)")
        width = FLOAT_DTYPES.get(dtype) or INT_DTYPES.get(dtype) if isinstance(dtype, str) else None
        if width is None:
            raise SafetensorsError(f"{self.path}: tensor {label} has element type {_printable(repr(dtype))}, which this importer does not read")
        begin, end = offsets
        count = 1
        for d in shape:
            count *= d
        if begin < 0 or end - begin != width * count or self._base + end > size:
            raise SafetensorsError(f"{self.path}: tensor {label} ({dtype}{shape}) does not fit its byte range {begin}..{end}")

    @property
    def names(self) -> list:
        return list(self._entries)

    def dtype(self, name: str) -> str:
        return self._entries[name]["dtype"]

    def shape(self, name: str) -> list:
        return list(self._entries[name]["shape"])

    def read(self, name: str) -> torch.Tensor:
        """The tensor as float32 (floating types) or int64 (integer types); a copy, independent of the file."""
        e = self._entries[name]
        begin, end = e["data_offsets"]
        raw = np.frombuffer(self._map, dtype=np.uint8, count=end - begin, offset=self._base + begin)
        dtype, shape = e["dtype"], e["shape"]
        if dtype == "BF16":  # the top 16 bits of a float32
            out = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        elif dtype in FLOAT_DTYPES:
            out = raw.view({"F32": "<f4", "F16": "<f2", "F64": "<f8"}[dtype]).astype(np.float32)
        else:
            out = raw.view({"I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "u1"}[dtype]).astype(np.int64)
        return torch.from_numpy(out.reshape(shape).copy())

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
        self._file.close()


def tensor_bytes(t: torch.Tensor, dtype: str) -> bytes:
    """`t` (float) as little-endian bytes of `dtype` (F32, F16 or BF16; BF16 rounds to nearest even)."""
    a = t.detach().to(torch.float32).contiguous().numpy()
    if dtype == "F32":
        return a.astype("<f4").tobytes()
    if dtype == "F16":
        return a.astype("<f2").tobytes()
    if dtype == "BF16":
        bits = a.view(np.uint32).astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        return rounded.astype("<u2").tobytes()
    raise ValueError(f"cannot write element type {dtype}")


def write(path: Path, tensors: dict, dtype: str = "F32", metadata: dict | None = None) -> None:
    """Writes {name: tensor} as one safetensors file, every tensor in `dtype`."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        blob = tensor_bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
