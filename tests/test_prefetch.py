"""Read-ahead in a background thread: order, errors and early stops."""

import threading
import time

import pytest

from parnassus.errors import InputError
from parnassus.io.prefetch import prefetched


def test_items_come_in_order_and_reading_runs_ahead():
    produced = []

    def items():
        for i in range(10):
            produced.append(i)
            yield i

    seen = []
    for item in prefetched(items(), depth=3):
        if item == 0:
            time.sleep(0.2)  # the reader fills the queue meanwhile
            assert len(produced) >= 4
        seen.append(item)
    assert seen == list(range(10))


def test_a_reader_error_is_raised_in_the_consumer_after_the_good_items():
    def items():
        yield 1
        yield 2
        raise InputError("in.hepmc: event 3: malformed")

    seen = []
    with pytest.raises(InputError, match="event 3"):
        for item in prefetched(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_stopping_early_stops_the_reader_thread():
    closed = threading.Event()

    def items():
        try:
            yield from range(10_000)
        finally:
            closed.set()

    stream = prefetched(items(), depth=2)
    assert next(stream) == 0
    stream.close()
    assert closed.wait(2.0)
    assert not any(t.name == "parnassus-reader" for t in threading.enumerate())
