"""Read ahead: the next batches are read and decoded in a background thread while the current one is simulated.

The reader's heavy parts (decompression, numpy, awkward) and the generator's (torch) release the GIL, so the two
overlap on different cores. Order is kept (one reader, a FIFO queue), memory is bounded (``depth`` batches), an
error in the reader is raised where the consumer asks for the next batch, and a consumer that stops early (an
error, Ctrl-C) stops the thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """The items of ``items`` in order, produced up to ``depth`` ahead in a background thread."""
    pending: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            offer(_Failure(error))
            return
        offer(_END)

    thread = threading.Thread(target=produce, name="parnassus-reader", daemon=True)
    thread.start()
    try:
        while (item := pending.get()) is not _END:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join(timeout=1.0)  # a reader blocked on its input (a FIFO) is a daemon: it ends with the process
