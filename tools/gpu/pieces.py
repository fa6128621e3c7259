"""A build folder carried to the GPU machine in numbered, checksummed pieces (tools/gpu/README.md).

The device tool sends at most 64 MiB a call, the repository's tracked files included, while the CUDA build is about
400 MB; a git-ignored folder stays on that machine between calls that follow each other within its warm time. So
this side packs the build as one .tar.xz cut into pieces with a manifest of their SHA-256 sums, and each call sends
one piece; the other side checks each piece as it arrives, copies it into a store outside the checkout, and once all
are there joins them, checks the whole archive's sum and unpacks it.

  python3 tools/gpu/pieces.py pack APP_DIR --out .build/gpu/pieces [--piece-mib 48] [--preset 9]
  python3 tools/gpu/pieces.py receive .build/gpu/pieces --store /var/tmp/assistant-gpu/pieces [--assemble-into DIR]
  python3 tools/gpu/pieces.py assemble --store /var/tmp/assistant-gpu/pieces --into DIR

Every failure is one line on stderr starting "error:" and exit 2.
"""
import argparse
import hashlib
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

MANIFEST = "pieces.json"
ASSEMBLED = ".assembled-from"  # in an unpacked build: the archive's sum, so the same build is not unpacked twice
CHUNK = 1 << 20


class Refused(Exception):
    """A one-line reason the command cannot go on."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def piece_name(index: int, count: int) -> str:
    width = max(2, len(str(count)))
    return f"piece-{index:0{width}d}-of-{count:0{width}d}.bin"


def compress_folder(src: Path, archive: Path, preset: int) -> None:
    """src's contents as a .tar.xz (paths relative to src). xz's own program when there is one (it uses every
    core), else Python's lzma (one core, the same format)."""
    xz = shutil.which("xz")
    if xz:
        with open(archive, "wb") as out:
            proc = subprocess.Popen([xz, "-T0", f"-{preset}", "-c"], stdin=subprocess.PIPE, stdout=out)
            with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
                for entry in sorted(src.iterdir()):
                    tar.add(entry, arcname=entry.name)
            proc.stdin.close()
            if proc.wait() != 0:
                raise Refused(f"xz failed ({proc.returncode}) compressing {src}")
    else:
        with tarfile.open(archive, mode="w:xz", preset=preset) as tar:
            for entry in sorted(src.iterdir()):
                tar.add(entry, arcname=entry.name)


def pack(src: Path, out: Path, piece_mib: float, preset: int) -> dict:
    if not src.is_dir():
        raise Refused(f"no build folder at {src}")
    if out.exists() and any(out.iterdir()):
        raise Refused(f"{out} is not empty: remove it first (pieces of another build would mix with these)")
    piece_bytes = int(piece_mib * (1 << 20))
    if piece_bytes < 1:
        raise Refused(f"--piece-mib must be positive, got {piece_mib}")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        archive = Path(scratch) / "build.tar.xz"
        compress_folder(src, archive, preset)
        size = archive.stat().st_size
        count = max(1, -(-size // piece_bytes))
        whole = hashlib.sha256()
        pieces = []
        with open(archive, "rb") as f:
            for i in range(1, count + 1):
                data = f.read(piece_bytes)
                whole.update(data)
                name = piece_name(i, count)
                (out / name).write_bytes(data)
                pieces.append({"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    manifest = {"format": "assistant-gpu-pieces/1", "archive": "build.tar.xz", "archive_bytes": size,
                "archive_sha256": whole.hexdigest(), "source": str(src), "piece_bytes": piece_bytes, "pieces": pieces}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text())
        pieces = manifest["pieces"]
        if manifest.get("format") != "assistant-gpu-pieces/1" or not pieces:
            raise ValueError
        for p in pieces:
            if not isinstance(p["name"], str) or "/" in p["name"] or p["name"] in ("", ".", "..") or \
                    not isinstance(p["bytes"], int) or not isinstance(p["sha256"], str):
                raise ValueError
        return manifest
    except FileNotFoundError:
        raise Refused(f"no {MANIFEST} in {path.parent}: send the manifest with every piece") from None
    except (ValueError, KeyError, TypeError):
        raise Refused(f"{path} is not a pieces manifest") from None


def status_line(manifest: dict, store: Path) -> tuple[list[int], str]:
    names = [p["name"] for p in manifest["pieces"]]
    missing = [i + 1 for i, n in enumerate(names) if not (store / n).is_file()]
    have = len(names) - len(missing)
    line = f"have {have} of {len(names)} pieces" + (f"; missing {', '.join(map(str, missing))}" if missing else "; all here")
    return missing, line


def receive(incoming: Path, store: Path) -> tuple[dict, list[int]]:
    """Checks every piece in `incoming` against its manifest and copies the good ones into `store`. A store holding
    another build's pieces (another manifest) is emptied first. A piece whose size or sum is wrong is refused."""
    manifest = read_manifest(incoming / MANIFEST)
    store.mkdir(parents=True, exist_ok=True)
    stored = store / MANIFEST
    if stored.is_file() and stored.read_bytes() != (incoming / MANIFEST).read_bytes():
        print(f"pieces: {store} held another build's pieces; starting again", file=sys.stderr)
        for child in store.iterdir():
            child.unlink()
    shutil.copyfile(incoming / MANIFEST, stored)
    count = len(manifest["pieces"])
    for i, p in enumerate(manifest["pieces"], 1):
        arrived = incoming / p["name"]
        if not arrived.is_file():
            continue
        kept = store / p["name"]
        if arrived.stat().st_size != p["bytes"] or sha256_of(arrived) != p["sha256"]:
            raise Refused(f"piece {i} of {count} ({p['name']}) is corrupt (size or SHA-256 differs from the manifest): send it again")
        if kept.is_file():
            print(f"pieces: piece {i} of {count} was here already", file=sys.stderr)
        tmp = store / (p["name"] + ".partial")
        shutil.copyfile(arrived, tmp)  # copied, not moved: the incoming folder is the sender's (here, a copy)
        os.replace(tmp, kept)
    missing, line = status_line(manifest, store)
    print(f"pieces: {line}", file=sys.stderr)
    return manifest, missing


def safe_extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Unpacks regular files and folders only, each inside `dest`: Python's 'data' filter where this Python has it
    (3.12, and 3.11.4 on), else the same refusals made here."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")  # refuses absolute paths, '..', links out and devices
        return
    root = dest.resolve()
    members = tar.getmembers()
    for m in members:
        target = (dest / m.name).resolve()
        if not (m.isfile() or m.isdir()) or os.path.isabs(m.name) or (target != root and root not in target.parents):
            raise Refused(f"the archive holds {m.name!r}, which is not a plain file or folder inside the build")
    tar.extractall(dest, members=members)


def assemble(store: Path, into: Path) -> None:
    """Joins the store's pieces, checks each and the whole against the manifest and unpacks into `into` (replaced
    whole: unpacked beside it, then renamed). Archive members that would land outside `into` are refused."""
    manifest = read_manifest(store / MANIFEST)
    missing, line = status_line(manifest, store)
    if missing:
        raise Refused(f"cannot assemble: {line}")
    count = len(manifest["pieces"])
    into.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=into.parent, prefix=f".{into.name}.partial-") as scratch:
        archive = Path(scratch) / manifest["archive"]
        whole = hashlib.sha256()
        with open(archive, "wb") as out:
            for i, p in enumerate(manifest["pieces"], 1):
                data = (store / p["name"]).read_bytes()
                if len(data) != p["bytes"] or hashlib.sha256(data).hexdigest() != p["sha256"]:
                    raise Refused(f"piece {i} of {count} ({p['name']}) changed in the store: send it again")
                whole.update(data)
                out.write(data)
        if whole.hexdigest() != manifest["archive_sha256"]:
            raise Refused("the joined pieces do not match the manifest's archive sum: pack the build again")
        unpacked = Path(scratch) / "app"
        unpacked.mkdir()
        try:
            with tarfile.open(archive, mode="r:xz") as tar:
                safe_extract(tar, unpacked)
        except (tarfile.TarError, lzma.LZMAError, OSError) as e:
            raise Refused(f"the archive does not unpack: {str(e)[:200]}") from None
        archive.unlink()
        (unpacked / ASSEMBLED).write_text(manifest["archive_sha256"] + "\n")
        if into.exists():
            shutil.rmtree(into)
        os.replace(unpacked, into)
    print(f"pieces: unpacked {count} pieces ({manifest['archive_bytes']:,} bytes) into {into}", file=sys.stderr)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="compress a build folder and cut it into pieces")
    p.add_argument("src", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--piece-mib", type=float, default=48)
    p.add_argument("--preset", type=int, choices=range(0, 10), default=9, metavar="0-9")
    r = sub.add_parser("receive", help="check arrived pieces and keep them in the store")
    r.add_argument("incoming", type=Path)
    r.add_argument("--store", type=Path, required=True)
    r.add_argument("--assemble-into", type=Path, help="once every piece is here, unpack the build into this folder")
    a = sub.add_parser("assemble", help="join the store's pieces and unpack them")
    a.add_argument("--store", type=Path, required=True)
    a.add_argument("--into", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        if args.command == "pack":
            m = pack(args.src, args.out, args.piece_mib, args.preset)
            print(f"pieces: {len(m['pieces'])} pieces of at most {args.piece_mib:g} MiB, {m['archive_bytes']:,} bytes in all, in {args.out}")
        elif args.command == "receive":
            manifest, missing = receive(args.incoming, args.store)
            if args.assemble_into and not missing:
                marker = args.assemble_into / ASSEMBLED
                if marker.is_file() and marker.read_text().strip() == manifest["archive_sha256"]:
                    print(f"pieces: {args.assemble_into} holds this build already", file=sys.stderr)
                else:
                    assemble(args.store, args.assemble_into)
        else:
            assemble(args.store, args.into)
    except Refused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
