"""Files that appear whole or not at all: write to a temporary file in the same folder, then rename."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP in the block (this thread); they are delivered when it ends."""
    numbers = {getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)}
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, numbers)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def make_temporary(path: Path) -> Path:
    """A new empty file ``.<name>.<random>.part<last suffix>`` next to ``path`` (the suffix keeps, e.g., the
    compression that a writer infers from ``.gz``), with the permissions a plain new file would get."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + "".join(path.suffixes[-1:]),
                                         dir=path.parent if str(path.parent) else ".")
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp creates 0600
    return Path(temporary)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``path``, on any error or interruption
    (Ctrl-C, a signal the caller turns into an exception) it is removed and ``path`` is left as it was."""
    path = Path(path)
    temporary = None
    try:
        with signals_deferred():  # a signal between creating the file and knowing its name would orphan it
            temporary = make_temporary(path)
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
