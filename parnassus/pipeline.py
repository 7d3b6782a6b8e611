"""Reading in its own process: the truth reader runs in a child process and hands its batches over a pipe, so that
reading the input (pyhepmc holds the GIL: a thread gains nothing) overlaps with the generator, the objects and the
writer in the main process.

:class:`ReaderProcess` iterates like a :class:`~parnassus.io.hepmc.HepMCReader`: the same batches in the same
order (the child runs the same reader), while the main process's :class:`~parnassus.events.RunCounts` (read,
skipped, truncated) and :attr:`ReaderProcess.warnings` follow the child's, batch by batch. The child reads at
most ``depth`` batches ahead of the one it is handing over (memory does not grow with the number of events). A
:class:`ParnassusError` of the reader (a bad input) is raised again in the main process with its one-line message;
a child that dies is a one-line error too, never a hang.

The child is a fresh interpreter (``python -c``, started with :mod:`subprocess`; forking a process that runs torch
threads is unsafe, and multiprocessing's "spawn" would import the caller's main script again), with SIGINT and
SIGHUP blocked and ignored: a terminal's Ctrl-C or hang-up, sent to the whole process group, is for the main
process, which stops the child (SIGTERM, then SIGKILL) whenever its block ends, normally or not. If the main process
dies, the child's next send fails and it exits. The child shares the main process's standard streams, so it reads
standard input (``-``) and named pipes (FIFOs) like any file: the main process never reads its standard input.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection

from parnassus.card import JetFlavor, TruthCuts
from parnassus.errors import ParnassusError
from parnassus.events import RunCounts, TruthBatch
from parnassus.io.atomic import signals_deferred

# signals sent to a whole process group (Ctrl-C, a closed terminal) that the reader process leaves to the main one
_GROUP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGHUP") if hasattr(signal, name))


@dataclass(frozen=True)
class ReaderSpec:
    """What a truth reader is made from (picklable: a card is not, it holds compiled formulas)."""

    path: str
    cuts: TruthCuts
    batch_size: int
    max_events: int | None = None
    skip: int = 0
    seed: int = 0  # a Pythia card's
    history: JetFlavor | None = None
    record: bool = False  # keep each event's whole generator record (a card's ``output.truth: full``)

    def open(self, counts: RunCounts):
        """The reader of this input: a :class:`PythiaReader` for a ``.cmnd`` card, else a :class:`HepMCReader`.
        Opens the input (a Pythia card: initialises Pythia) now, so that a bad input fails at once."""
        from parnassus.io.hepmc import HepMCReader
        from parnassus.io.pythia import PythiaReader

        if self.path.endswith(".cmnd"):  # a Pythia card: generate the truth events on the fly
            return PythiaReader(self.path, self.cuts, self.batch_size, counts, max_events=self.max_events,
                                skip=self.skip, seed=self.seed, history=self.history, record=self.record)
        return HepMCReader(self.path, self.cuts, self.batch_size, counts, max_events=self.max_events,
                           skip=self.skip, history=self.history, record=self.record)


@contextlib.contextmanager
def open_reader(spec: ReaderSpec, counts: RunCounts, process: bool = False, depth: int = 2) -> Iterator:
    """The reader of ``spec`` for the block: in this process, or (``process``) a started :class:`ReaderProcess`,
    stopped when the block ends. Either iterates over :class:`TruthBatch` es, keeps ``counts`` and has
    ``warnings``."""
    if not process:
        yield spec.open(counts)
        return
    with ReaderProcess(spec, counts, depth) as reader:
        yield reader


class ReaderProcess:
    """The truth reader of ``spec`` in a child process, ``depth`` batches ahead (see the module docstring).

    A context manager: entering starts the child (it opens the input while the caller goes on), leaving stops it.
    :meth:`ready` waits until the child has opened the input (its error, if any); iterating yields the batches.
    """

    def __init__(self, spec: ReaderSpec, counts: RunCounts, depth: int = 2):
        self.spec = spec
        self.counts = counts
        self.depth = depth
        self.warnings: list[str] = []
        self._process: subprocess.Popen | None = None
        self._connection: Connection | None = None
        self._ready = False

    def __enter__(self) -> ReaderProcess:
        self._connection, child_end = multiprocessing.Pipe()
        command = [sys.executable, "-c", _CHILD, str(child_end.fileno())]
        try:
            # a signal during the start waits until the child is known, so that leaving the block stops it; the
            # child inherits the blocked signals
            with signals_deferred(), _blocked(_GROUP_SIGNALS):
                self._process = subprocess.Popen(command, pass_fds=[child_end.fileno()])
            child_end.close()  # once the child is gone, receiving ends (EOFError) instead of waiting
            try:
                self._connection.send_bytes(pickle.dumps(sys.path))  # the child imports what this process does
                self._connection.send_bytes(pickle.dumps((self.spec, self.depth)))
            except OSError:
                raise self._ended() from None
        except BaseException:
            child_end.close()
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child (if it still runs) and wait for it."""
        process = self._process
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
            process.wait()
        if self._connection is not None:
            self._connection.close()

    def ready(self) -> None:
        """Wait until the child has opened the input; raise its error if it could not."""
        if not self._ready:
            kind, _ = self._receive()
            assert kind == "ready", kind
            self._ready = True

    def __iter__(self) -> Iterator[TruthBatch]:
        self.ready()
        while True:
            kind, batch = self._receive()
            if kind == "end":
                return
            yield batch

    def _receive(self) -> tuple[str, object]:
        """The child's next message, its counts and warnings taken over; its error raised here."""
        assert self._connection is not None and self._process is not None, "use ReaderProcess in a with block"
        try:
            kind, payload, counts, warnings = pickle.loads(self._connection.recv_bytes())
        except (EOFError, ConnectionResetError):
            raise self._ended() from None
        self.counts.read, self.counts.truncated = counts.read, counts.truncated
        self.counts.skipped = Counter(counts.skipped)
        self.warnings = warnings
        if kind == "error":
            raise payload
        if kind == "crash":
            raise RuntimeError(f"the reader process failed:\n{payload}")
        return kind, payload

    def _ended(self) -> ParnassusError:
        """The error for a child that ended without a word (killed, out of memory)."""
        assert self._process is not None
        code = self._process.wait()
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return ParnassusError(f"{self.spec.path}: the reader process ended unexpectedly ({how})")


@contextlib.contextmanager
def _blocked(signals: tuple[int, ...]) -> Iterator[None]:
    """``signals`` blocked in this thread for the block (they are delivered when it ends)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# the child's command (``python -c``; its argument: the file descriptor of its end of the pipe): it takes the main
# process's sys.path, then runs :func:`_child`
_CHILD = """
import pickle, sys
from multiprocessing.connection import Connection
connection = Connection(int(sys.argv[1]))
try:
    sys.path[:] = pickle.loads(connection.recv_bytes())
except (EOFError, OSError):  # the main process is gone
    sys.exit()
from parnassus.pipeline import _child
_child(connection)
"""


def _child(connection: Connection) -> None:
    """The reader process: receive (spec, depth) on ``connection``, then :func:`_read`."""
    for number in _GROUP_SIGNALS:  # already blocked (inherited); ignored too, should they be unblocked
        signal.signal(number, signal.SIG_IGN)
    try:
        spec, depth = pickle.loads(connection.recv_bytes())
    except (EOFError, OSError):  # the main process is gone
        return
    _read(spec, connection, depth)


def _read(spec: ReaderSpec, connection: Connection, depth: int) -> None:
    """Read ``spec`` and send ("ready" | "batch" | "end" | "error" | "crash", payload, counts, warnings)
    messages, pickled here (the counts as they are when the batch is read), sent by a thread at most ``depth``
    ahead."""
    outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
    sender = threading.Thread(target=_send, args=(outbox, connection), daemon=True)
    sender.start()
    counts = RunCounts()
    reader = None

    def message(kind: str, payload: object = None) -> bytes:
        warnings = list(reader.warnings) if reader is not None else []
        return pickle.dumps((kind, payload, counts, warnings), protocol=pickle.HIGHEST_PROTOCOL)

    try:
        reader = spec.open(counts)
        outbox.put(message("ready"))
        for batch in reader:
            outbox.put(message("batch", batch))
        outbox.put(message("end"))
    except ParnassusError as error:
        outbox.put(message("error", error))
    except Exception:
        outbox.put(message("crash", traceback.format_exc()))
    outbox.put(None)
    sender.join()


def _send(outbox: queue.Queue[bytes | None], connection: Connection) -> None:
    """The child's sending thread: send the messages of ``outbox`` until None; exit if the main process is gone."""
    while (data := outbox.get()) is not None:
        try:
            connection.send_bytes(data)
        except OSError:  # the main process is gone (broken pipe): nobody waits for the rest
            os._exit(0)
    connection.close()
