"""1-Wasserstein distances between samples, with a split-half noise floor and bootstrap uncertainties.

A :class:`Sample` is the values of one observable with the index of the event each value belongs to, so that
bootstrap replicas resample *events* (every value of a drawn event comes with it) and the noise floor splits
the target by event (the mean over random halvings of its events). Replicas and halvings are drawn once per report
and shared by all files (paired bootstrap: the files hold the same truth events).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import wasserstein_distance

_BLOCK_ELEMENTS = 20_000_000  # replicas × values handled at once (bounds memory: ~160 MB of float64)


@dataclass
class Sample:
    """Values of one observable and the event (0 … n_events-1) each value comes from."""

    values: np.ndarray
    events: np.ndarray

    def __len__(self) -> int:
        return len(self.values)


def wasserstein(u: np.ndarray, v: np.ndarray, u_weights: np.ndarray | None = None,
                v_weights: np.ndarray | None = None) -> float:
    """``scipy.stats.wasserstein_distance``; NaN when either sample is empty (or has zero total weight)."""
    if len(u) == 0 or len(v) == 0:
        return math.nan
    if (u_weights is not None and u_weights.sum() <= 0) or (v_weights is not None and v_weights.sum() <= 0):
        return math.nan
    return float(wasserstein_distance(u, v, u_weights, v_weights))


def wasserstein_replicas(u: np.ndarray, v: np.ndarray, u_weights: np.ndarray, v_weights: np.ndarray) -> np.ndarray:
    """W1 of ``u`` and ``v`` for many weightings at once (weights of shape (replicas, len)): one sort for all.

    The same quantity as :func:`wasserstein` row by row (the integral of |F_u - F_v| over the merged, sorted
    values); NaN for a replica in which either sample has zero total weight.
    """
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    replicas = len(u_weights)
    if len(u) == 0 or len(v) == 0:
        return np.full(replicas, math.nan)
    merged = np.concatenate([u, v])
    order = np.argsort(merged, kind="stable")
    steps = np.diff(merged[order])
    result = np.empty(replicas)
    block = max(1, _BLOCK_ELEMENTS // len(merged))
    for start in range(0, replicas, block):
        wu = np.asarray(u_weights[start:start + block], np.float64)
        wv = np.asarray(v_weights[start:start + block], np.float64)
        su, sv = wu.sum(axis=1, keepdims=True), wv.sum(axis=1, keepdims=True)
        valid = (su[:, 0] > 0) & (sv[:, 0] > 0)
        signed = np.concatenate([wu / np.where(su > 0, su, 1.0), -wv / np.where(sv > 0, sv, 1.0)], axis=1)
        cdf_difference = np.cumsum(signed[:, order], axis=1)[:, :-1]
        result[start:start + block] = np.where(valid, np.abs(cdf_difference) @ steps, math.nan)
    return result


def bootstrap_counts(n_events: int, replicas: int, seed: int) -> np.ndarray:
    """How often each event is drawn in each replica (events resampled with replacement): (replicas, n_events)."""
    rng = np.random.default_rng(seed)
    if n_events == 0:
        return np.zeros((replicas, 0), dtype=np.int32)
    return rng.multinomial(n_events, np.full(n_events, 1.0 / n_events), size=replicas).astype(np.int32)


def _summary(value: float, replicas: np.ndarray) -> dict[str, float]:
    finite = replicas[np.isfinite(replicas)]
    mean = float(finite.mean()) if len(finite) else math.nan
    std = float(finite.std(ddof=1)) if len(finite) > 1 else math.nan
    return {"value": value, "mean": mean, "std": std}


def compare(u: Sample, v: Sample, counts: np.ndarray) -> dict[str, float]:
    """W1(u, v) (``value``) and the mean and std of W1 over the bootstrap replicas ``counts``."""
    value = wasserstein(u.values, v.values)
    return _summary(value, wasserstein_replicas(u.values, v.values, counts[:, u.events], counts[:, v.events]))


def random_halves(n_events: int, splits: int, seed: int) -> np.ndarray:
    """``splits`` random halvings of the events: (splits, n_events) booleans, True for the events of one half."""
    rng = np.random.default_rng(seed)
    chosen = np.zeros((splits, n_events), dtype=bool)
    for row in chosen:
        row[rng.permutation(n_events)[:n_events // 2]] = True
    return chosen


def noise_floor(target: Sample, halvings: np.ndarray) -> dict[str, float]:
    """W1 between two halves of the target's events: the distance expected from statistics alone.

    ``value`` is its mean over the random ``halvings`` (:func:`random_halves`), ``std`` the spread of one
    halving's W1 (one halving alone, e.g. even against odd events, is a single draw that can land far below the
    mean: about 50% relative spread for the count of a rare object). Each half holds half the events, so this is
    the floor for a comparison at half the statistics (an identically distributed candidate on the same events
    typically lies below it).
    """
    one_half = halvings[:, target.events].astype(np.float64)
    distances = wasserstein_replicas(target.values, target.values, one_half, 1.0 - one_half)
    finite = distances[np.isfinite(distances)]
    return _summary(float(finite.mean()) if len(finite) else math.nan, distances)


def closest(distances: dict[str, float]) -> str | None:
    """The label with the smallest finite distance; None if there is none or several share it (a tie, common
    for efficiencies of a few objects, counts for no one)."""
    finite = {label: d for label, d in distances.items() if d is not None and math.isfinite(d)}
    if not finite:
        return None
    best = min(finite.values())
    winners = [label for label, d in finite.items() if d == best]
    return winners[0] if len(winners) == 1 else None


def confusion_distance(target: np.ndarray, candidate: np.ndarray) -> float:
    """Mean over truth classes of the total-variation distance between P(reco class | truth class) rows.

    Both inputs are count matrices (rows: truth class); rows empty in either are left out (NaN if all are).
    """
    target, candidate = np.asarray(target, np.float64), np.asarray(candidate, np.float64)
    t_sum, c_sum = target.sum(axis=1), candidate.sum(axis=1)
    rows = (t_sum > 0) & (c_sum > 0)
    if not rows.any():
        return math.nan
    t_rows = target[rows] / t_sum[rows, None]
    c_rows = candidate[rows] / c_sum[rows, None]
    return float(0.5 * np.abs(t_rows - c_rows).sum(axis=1).mean())


def mean_and_spread(values: np.ndarray) -> dict[str, float]:
    """Entries, mean and std (ddof 1) of ``values`` with their statistical errors (NaN where undefined)."""
    values = np.asarray(values, np.float64)
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    std = float(values.std(ddof=1)) if n > 1 else math.nan
    return {"entries": n, "mean": mean, "mean_error": std / math.sqrt(n) if n > 1 else math.nan,
            "std": std, "std_error": std / math.sqrt(2 * (n - 1)) if n > 1 else math.nan}
