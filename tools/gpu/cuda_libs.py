"""Finds the CUDA libraries that ONNX Runtime's CUDA provider loads, and prints the folders to put on LD_LIBRARY_PATH.

ONNX Runtime 1.31's provider (libonnxruntime_providers_cuda.so) links libcudart.so.13, libcublas.so.13,
libcublasLt.so.13 and libcurand.so.10 (readelf -d), and loads cuDNN 9 (libcudnn.so.9 and its sub-libraries) when
a session starts; libcuda.so.1 is the driver's. On the GPU machine these come inside PyTorch's Python install
(the nvidia-* packages under site-packages/nvidia/), not from a system CUDA, so they are searched for there first.

  python3 tools/gpu/cuda_libs.py                       # prints DIR:DIR:... (search the default roots)
  python3 tools/gpu/cuda_libs.py --roots /opt/x /usr/local/cuda --report
  export LD_LIBRARY_PATH="$(python3 tools/gpu/cuda_libs.py)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

A required library found nowhere is one line on stderr and exit 2.
"""
import argparse
import glob
import os
import site
import sys
from pathlib import Path

REQUIRED = ["libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10", "libcudnn.so.9"]
# The driver's library: normally on the loader's own path already (ld.so.cache or /usr/local/nvidia/lib64).
DRIVER = "libcuda.so.1"
MAX_DEPTH = 6


def default_roots() -> list[Path]:
    roots = []
    for d in site.getsitepackages() + [site.getusersitepackages()]:
        roots += [Path(d) / "nvidia", Path(d) / "torch" / "lib"]
    roots += [Path(p) for p in sorted(glob.glob("/usr/local/cuda*/lib64"))]
    roots += [Path("/usr/local/nvidia/lib64"), Path("/usr/local/nvidia/lib"), Path("/usr/lib/x86_64-linux-gnu")]
    return roots


def find(roots: list[Path], names: list[str]) -> dict[str, Path]:
    """The first folder, in root order then path order, that holds each name (a file or a link to one)."""
    found: dict[str, Path] = {}
    for root in roots:
        if not root.is_dir():
            continue
        base = len(root.parts)
        for folder, dirs, files in os.walk(root, followlinks=False):
            here = Path(folder)
            if len(here.parts) - base >= MAX_DEPTH:
                dirs[:] = []
            dirs.sort()
            for name in names:
                if name not in found and name in files and (here / name).exists():
                    found[name] = here
        if len(found) == len(names):
            break
    return found


def driver_on_loader_path() -> bool:
    try:
        import ctypes
        ctypes.CDLL(DRIVER)
        return True
    except OSError:
        return False


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--roots", type=Path, nargs="+", help="folders to search, in order (default: this Python's "
                    "site-packages/nvidia and torch/lib, /usr/local/cuda*/lib64, /usr/local/nvidia, the system's)")
    ap.add_argument("--report", action="store_true", help="say on stderr where each library was found")
    args = ap.parse_args(argv)
    roots = args.roots or default_roots()
    found = find(roots, REQUIRED + [DRIVER])
    missing = [n for n in REQUIRED if n not in found]
    if missing:
        searched = ", ".join(str(r) for r in roots if r.is_dir()) or "no existing folder"
        print(f"error: the CUDA provider needs {', '.join(missing)}, found under none of: {searched[:300]}", file=sys.stderr)
        return 2
    if DRIVER not in found and not driver_on_loader_path():
        print(f"warning: {DRIVER} (the NVIDIA driver's library) is not on the loader's path: the provider will not start",
              file=sys.stderr)
    if args.report:
        for n in REQUIRED + [DRIVER]:
            print(f"cuda_libs: {n}: {found.get(n, 'loader path' if n == DRIVER else '?')}", file=sys.stderr)
    folders = []
    for n in REQUIRED + [DRIVER]:
        if n in found and str(found[n]) not in folders:
            folders.append(str(found[n]))
    print(":".join(folders))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
