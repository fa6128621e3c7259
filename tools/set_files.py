"""A model set's files as the tools read them (quantize.py, genai_model.py): judged by where they really are, as the
engine's Inference/SetFile.cs judges them. A path the manifest names is relative, has no `..`, and leads (every link
followed, folders' links too) to a regular file inside the set's real folder; a set copied whole has nothing that
leads out or to a device. Before this, quantize.py followed a link to /dev/zero inside a set and wrote 5.3 GB, and
genai_model.py read graphs that a manifest named by absolute or `../` paths (issue 31, finding 7).
"""
import os
import stat
from pathlib import Path


# A graph whose weights pass this many bytes keeps them in `<file>.data` beside it (ONNX external data). ONNX Runtime
# maps external data and releases what its kernels pack, where weights inside the protobuf stay on the heap beside
# their packed copies: on the 0.5B shapes at q4, the int8 tower's session held 319 MB loaded this way against 517 MB
# inline (and loaded in 1.3 s, not 3.8), the 4-bit decoder's 473 MB against 617 (docs/PERFORMANCE.md, "Memory").
# It also keeps any graph under protobuf's 2 GB limit. The tests lower it (0: every graph external).
EXTERNAL_ABOVE = int(os.environ.get("ASSISTANT_IMPORT_EXTERNAL_ABOVE", 64 << 20))


class SetFileError(ValueError):
    """A set's file that a tool will not read; the message is one line for the user."""


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def named(set_dir: Path, relative, what: str) -> Path:
    """The file the manifest names as `relative` for `what` (e.g. "decoder text's embed graph"), checked."""
    if not isinstance(relative, str) or not relative or os.path.isabs(relative) or "\\" in relative \
            or ".." in relative.split("/") or "\0" in relative:
        raise SetFileError(f"manifest.json names {what} as {relative!r}: a set's files are relative paths inside it")
    path = Path(set_dir) / relative
    _regular_inside(path, os.path.realpath(set_dir), f"{what} ({relative})")
    return path


def _regular_inside(path: Path, root: str, what: str) -> None:
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        raise SetFileError(f"{what} is missing or a link to nothing") from None
    if not stat.S_ISREG(st.st_mode):
        raise SetFileError(f"{what} is not a regular file (it leads to {real}: a device, a pipe or a folder)")
    if not _inside(real, root):
        raise SetFileError(f"{what} links outside the set (to {real})")


def check_tree(set_dir: Path) -> None:
    """Every entry under the set, before a tool copies or reads it whole: files lead to regular files inside the set,
    folders (links to folders included) stay inside it. Links inside the set are allowed."""
    set_dir = Path(set_dir)
    if not (set_dir / "manifest.json").is_file():
        raise SetFileError(f"{set_dir} is not a model set (no manifest.json)")
    root = os.path.realpath(set_dir)
    for folder, dirs, files in os.walk(set_dir, followlinks=False):
        for name in dirs:
            d = Path(folder) / name
            if not _inside(os.path.realpath(d), root):
                raise SetFileError(f"{d.relative_to(set_dir)} links outside the set (to {os.path.realpath(d)})")
        for name in files:
            f = Path(folder) / name
            _regular_inside(f, root, str(f.relative_to(set_dir)))
