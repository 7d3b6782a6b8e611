"""Files that appear whole or not at all (a temporary file in the same folder, then a rename), and blocks that
signals wait for."""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from parnassus.errors import OutputError

_deferring = 0  # depth of nested signals_deferred blocks
_pending: list[int] = []  # signals whose handler deferred itself


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Signals whose handler asks :func:`deferred` wait until the block ends, then are raised again.

    For code during which an exception raised by a signal handler would be lost or do harm: pyhepmc's C++
    writers call Python (gzip) to write, and swallow an exception raised in there; a temporary file must be
    known by name before an interruption can remove it. (Blocking the signal in this thread is not enough:
    another thread, e.g. a BLAS pool, would take it, and Python still runs the handler here.)
    """
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _pending:
            signum = _pending[0]
            _pending.clear()
            signal.raise_signal(signum)  # its handler runs now, outside the block


def deferred(signum: int) -> bool:
    """For a signal handler: whether ``signum`` came inside :func:`signals_deferred` (it is then kept and raised
    again when the block ends, and the handler should return at once)."""
    if _deferring:
        _pending.append(signum)
        return True
    return False


def make_temporary(path: Path) -> Path:
    """A new empty file ``.<name>.<random>.part<last suffix>`` next to ``path`` (the suffix keeps, e.g., the
    compression that a writer infers from ``.gz``), with the permissions a plain new file would get."""
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + "".join(path.suffixes[-1:]),
                                             dir=path.parent if str(path.parent) else ".")
    except OSError as error:  # a missing or read-only folder, a full disk
        raise OutputError(f"{path}: cannot write ({error.strerror or error})") from None
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp creates 0600
    return Path(temporary)


def temporaries(path: str | Path) -> list[Path]:
    """The temporary files that :func:`make_temporary` made for ``path`` and that are still there (a writer that
    was killed leaves its own)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    return sorted(folder.glob(f".{glob.escape(path.name)}.*.part*"))


def make_folder(folder: Path) -> Path:
    """``folder`` and its missing parents; a one-line :class:`OutputError` if it cannot be made (read-only or full
    file system, a file in the way)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{folder}: cannot create the folder ({error.strerror or error})") from None
    return folder


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
