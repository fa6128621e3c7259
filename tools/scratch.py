"""Scratch folders that never outlive the tool that made them (tools/import_hf.py, quantize.py, genai_model.py).

A tool writes its output into a hidden folder beside the target, unique to the run (`.NAME.partial-XXXXXXXX`), and
renames it into place at the end: the target appears whole or not at all. Whatever ends the run early, an error,
Ctrl+C (SIGINT) or SIGTERM (`timeout`, a process manager, `assistant` ending its child), the folder is removed, and
so are the parent folders the run created for the target. `Interrupted` carries the exit code a shell expects
(130 for SIGINT, 143 for SIGTERM).
"""
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


@contextmanager
def folder_for(out: Path):
    """Yields a new, empty, uniquely named folder beside `out`, for the tool to fill and then rename to `out`. On any
    exception (Interrupted included) the folder, and every parent of `out` this call created, is removed."""
    out = Path(out)
    created = []
    parent = out.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    for folder in reversed(created):
        folder.mkdir()
    scratch = None
    finished = False
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        yield scratch
        finished = True
    finally:
        if scratch is not None and scratch.exists():  # not renamed into place: an error, a signal, or a body that stopped
            shutil.rmtree(scratch, ignore_errors=True)
        if not finished:
            for folder in created:  # innermost first, and only while empty
                try:
                    folder.rmdir()
                except OSError:
                    break


def scratch_folders(out: Path) -> list:
    """The scratch folders of runs for `out` that are still there (for tests and cleanup)."""
    out = Path(out)
    return sorted(out.parent.glob(f".{out.name}.partial-*")) if out.parent.is_dir() else []
