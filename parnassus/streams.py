"""Per-event random streams: an event's random numbers depend on the run's seed and its position in the input only.

Every generator draws through :class:`EventRandom`, whose methods are those of :class:`numpy.random.Generator`
with the ``size`` argument replaced by ``event``: the batch position of the event each value belongs to. Event
``i`` of a batch draws from its own generator, seeded with ``(seed, index[i])`` where ``index`` is the event's
position in the input, and the values of one call are handed out event by event in the order they appear. So an
event's output does not depend on which events share its batch (batch size, worker count, --skip, a skipped bad
neighbour): its stream advances only by its own draws, and the code path its draws take depends only on its own
particles.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class EventRandom:
    """One independent random stream per event of a batch (see module docstring).

    Array parameters have one value per draw (broadcast against ``event``); scalar parameters are shared.
    """

    def __init__(self, seed: int, index: Sequence[int] | np.ndarray):
        self.seed = int(seed)
        self.index = np.asarray(index, dtype=np.int64)
        self._generators: list[np.random.Generator | None] = [None] * len(self.index)

    def generator(self, event: int) -> np.random.Generator:
        """The stream of the batch's event ``event`` (made on first use)."""
        stream = self._generators[event]
        if stream is None:
            stream = self._generators[event] = np.random.default_rng([self.seed, int(self.index[event])])
        return stream

    def _draw(self, method: str, event: np.ndarray, *params, out_type: type = np.float64, **options) -> np.ndarray:
        """``method`` of each event's stream, for the draws of that event, placed where ``event`` says."""
        event = np.asarray(event, dtype=np.int64).ravel()
        out = np.empty(len(event), dtype=out_type)
        if len(event) == 0:
            return out
        shared = [np.ndim(p) == 0 for p in params]
        params = [p if scalar else np.broadcast_to(np.asarray(p), event.shape)
                  for p, scalar in zip(params, shared, strict=True)]
        order = np.argsort(event, kind="stable")
        ordered = event[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        stops = np.r_[starts[1:], len(event)]
        for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
            where = order[start:stop]
            args = [p if scalar else p[where] for p, scalar in zip(params, shared, strict=True)]
            out[where] = getattr(self.generator(int(ordered[start])), method)(*args, size=stop - start, **options)
        return out

    def random(self, event: np.ndarray) -> np.ndarray:
        """Uniform in [0, 1)."""
        return self._draw("random", event)

    def uniform(self, event: np.ndarray, low=0.0, high=1.0) -> np.ndarray:
        return self._draw("uniform", event, low, high)

    def standard_normal(self, event: np.ndarray, dtype: type = np.float64) -> np.ndarray:
        return self._draw("standard_normal", event, out_type=dtype, dtype=dtype)

    def normal(self, event: np.ndarray, loc=0.0, scale=1.0) -> np.ndarray:
        return self._draw("normal", event, loc, scale)

    def lognormal(self, event: np.ndarray, mean=0.0, sigma=1.0) -> np.ndarray:
        return self._draw("lognormal", event, mean, sigma)

    def exponential(self, event: np.ndarray, scale=1.0) -> np.ndarray:
        return self._draw("exponential", event, scale)

    def gamma(self, event: np.ndarray, shape, scale=1.0) -> np.ndarray:
        return self._draw("gamma", event, shape, scale)

    def beta(self, event: np.ndarray, a, b) -> np.ndarray:
        return self._draw("beta", event, a, b)

    def poisson(self, event: np.ndarray, lam=1.0) -> np.ndarray:
        return self._draw("poisson", event, lam, out_type=np.int64)

    def integers(self, event: np.ndarray, low, high) -> np.ndarray:
        """Integers in [low, high)."""
        return self._draw("integers", event, low, high, out_type=np.int64)

    def sign(self, event: np.ndarray) -> np.ndarray:
        """-1 or +1 with equal probability."""
        return 2 * self.integers(event, 0, 2) - 1
