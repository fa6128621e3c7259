"""Scratch folders that never outlive the tool that made them (tools/import_hf.py, quantize.py, genai_model.py).

A tool writes its output into a hidden folder beside the target, unique to the run (`.NAME.partial-XXXXXXXX`), and
renames it into place at the end: the target appears whole or not at all. Whatever ends the run early, an error,
Ctrl+C (SIGINT) or SIGTERM (`timeout`, a process manager, `assistant` ending its child), the folder is removed, and
so are the parent folders the run created for the target. `Interrupted` carries the exit code a shell expects
(130 for SIGINT, 143 for SIGTERM).
"""
import errno
import os
import shutil
import signal
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path


class Interrupted(BaseException):
    """The run was stopped by a signal; `code` is the shell's exit code for it. A BaseException, as KeyboardInterrupt is,
    so that a library's `except Exception` (PyTorch's exporter wraps what it catches) lets it through."""

    def __init__(self, signum: int):
        self.code = 128 + signum
        self.name = signal.Signals(signum).name
        super().__init__(f"stopped by {self.name}")


_received = None  # the first signal this process took, once it has taken one


def stopped():
    """The Interrupted for the signal this run took, or None. A signal that lands inside PyTorch's tracer comes back
    from it as a RuntimeError; the tool's last handler asks this to report it as what it was."""
    return Interrupted(_received) if _received is not None else None


def signal_exit(e: BaseException):
    """The exit code when `e` is this run's signal, raised as Interrupted (or KeyboardInterrupt) or wrapped by the
    library it landed in, after its one line on stderr; None when `e` is something else. Each tool's last handler."""
    stop = e if isinstance(e, Interrupted) else Interrupted(signal.SIGINT) if isinstance(e, KeyboardInterrupt) else stopped()
    if stop is None:
        return None
    print(f"error: {stop}; nothing was written", file=sys.stderr)
    return stop.code


def _raise(signum, _frame):
    global _received
    _received = signum
    # Later signals are ignored while the run unwinds and removes its scratch: a second Ctrl+C must not cut the cleanup short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted(signum)


def stop_on_signals() -> None:
    """SIGINT and SIGTERM raise Interrupted in the main thread, so `finally` blocks run and scratch is removed."""
    signal.signal(signal.SIGINT, _raise)
    signal.signal(signal.SIGTERM, _raise)


class Unplaceable(Exception):
    """`out` cannot be made or filled: it exists (a dangling link counts), a parent is a file, a parent is not
    writable, or another run put a folder there meanwhile. The message is one line for the user."""


def check_target(out: Path) -> None:
    """Refuses, before any work, an `out` that exists (a link to nothing included: renaming onto it would fail at the
    end, or replace what it points at), or whose nearest existing parent is a file or cannot be written."""
    out = Path(out)
    if os.path.lexists(out):
        what = "a link" if out.is_symlink() else "a file" if not out.is_dir() else "a folder"
        raise Unplaceable(f"{out} exists ({what}); choose a new folder (nothing is overwritten)")
    parent = out.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise Unplaceable(f"cannot make {out}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise Unplaceable(f"cannot make {out}: {parent} is not writable")


def _renameat2():
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return ctypes, getattr(libc, "renameat2", None)
    except OSError:
        return None, None


def place(scratch: Path, out: Path) -> None:
    """Renames the finished `scratch` to `out`, never over anything: on Linux with renameat2's RENAME_NOREPLACE (a plain
    rename replaces an empty folder that a second run made meanwhile), elsewhere after a last look."""
    taken = f"{out} appeared while this run was writing (another run?); this run's output was not kept"
    ctypes, rename = _renameat2()
    if rename is not None:
        at_fdcwd, rename_noreplace = -100, 1
        if rename(at_fdcwd, os.fsencode(scratch), at_fdcwd, os.fsencode(out), rename_noreplace) == 0:
            return
        err = ctypes.get_errno()
        if err in (errno.EEXIST, errno.ENOTEMPTY):
            raise Unplaceable(taken)
        if err not in (errno.ENOSYS, errno.EINVAL):  # a file system without the flag falls through to a plain rename
            raise Unplaceable(f"cannot move the finished output to {out}: {os.strerror(err)}")
    if os.path.lexists(out):
        raise Unplaceable(taken)
    os.rename(scratch, out)


@contextmanager
def folder_for(out: Path, keep_finished: bool = False):
    """Yields a new, empty, uniquely named folder beside `out`, for the tool to fill and then rename to `out` (`place`).
    On any exception (Interrupted included) the folder, and every parent of `out` this call created, is removed; with
    `keep_finished` a body that ends normally leaves it for a caller that checks it and places it itself (`assistant
    models import`, which loads the set with the engine's own checks first)."""
    out = Path(out)
    check_target(out)
    created = []
    parent = out.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    scratch = None
    finished = False
    try:
        try:
            for folder in reversed(created):
                folder.mkdir()
            scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
            scratch.chmod(0o777 & ~umask())  # mkdtemp's 0700 would become the finished folder's mode
        except OSError as e:  # a read-only file system, /proc, a parent another user owns
            raise Unplaceable(f"cannot make {out}: {e.strerror or e}") from e
        yield scratch
        finished = True
    finally:
        if scratch is not None and scratch.exists() and not (finished and keep_finished):  # not placed: an error, a signal
            shutil.rmtree(scratch, ignore_errors=True)
        if not finished:
            for folder in created:  # innermost first, and only while empty
                try:
                    folder.rmdir()
                except OSError:
                    break


def umask() -> int:
    """The process's file mode mask (read by setting it, then put back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def scratch_folders(out: Path) -> list:
    """The scratch folders of runs for `out` that are still there (for tests and cleanup)."""
    out = Path(out)
    return sorted(out.parent.glob(f".{out.name}.partial-*")) if out.parent.is_dir() else []
