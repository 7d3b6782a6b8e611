"""Hungarian (ΔR) matching of reconstructed objects to truth objects, event by event, and confusion matrices.

As in the Parnassus entire-event paper: the assignment minimises the summed ΔR over all pairs
(``scipy.optimize.linear_sum_assignment``); pairs with ΔR above the limit (0.2 for jets, 0.6 for particles)
are forbidden, i.e. given a cost so large that any assignment with one more allowed pair is cheaper, and
dropped after the assignment.
"""

from __future__ import annotations

import numpy as np

from parnassus.assignment import assign

_EMPTY = np.zeros(0, dtype=np.int64)


def delta_phi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b wrapped into [-pi, pi)."""
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def delta_r_matrix(eta_a: np.ndarray, phi_a: np.ndarray, eta_b: np.ndarray, phi_b: np.ndarray) -> np.ndarray:
    """ΔR between every object of a (rows) and every object of b (columns)."""
    deta = np.asarray(eta_a, dtype=np.float64)[:, None] - np.asarray(eta_b, dtype=np.float64)[None, :]
    dphi = delta_phi(np.asarray(phi_a, dtype=np.float64)[:, None], np.asarray(phi_b, dtype=np.float64)[None, :])
    return np.sqrt(deta**2 + dphi**2)


def match(reco_eta: np.ndarray, reco_phi: np.ndarray, truth_eta: np.ndarray, truth_phi: np.ndarray,
          max_dr: float) -> tuple[np.ndarray, np.ndarray]:
    """Match the objects of one event; returns (reco index, truth index) of the allowed pairs (ΔR <= max_dr)."""
    if len(reco_eta) == 0 or len(truth_eta) == 0:
        return _EMPTY, _EMPTY
    dr = delta_r_matrix(reco_eta, reco_phi, truth_eta, truth_phi)
    return assign(dr, ~(dr > max_dr), max_dr)


def offsets(counts: np.ndarray) -> np.ndarray:
    """Start of each event in a flat array, given the objects per event."""
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


def match_events(reco_eta: np.ndarray, reco_phi: np.ndarray, reco_counts: np.ndarray, truth_eta: np.ndarray,
                 truth_phi: np.ndarray, truth_counts: np.ndarray, max_dr: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`match` in every event of flat arrays (``*_counts`` objects per event).

    Returns the flat indices (reco, truth) of all matched pairs, event by event.
    """
    reco_counts, truth_counts = np.asarray(reco_counts, np.int64), np.asarray(truth_counts, np.int64)
    reco_start, truth_start = offsets(reco_counts), offsets(truth_counts)
    reco_pairs, truth_pairs = [_EMPTY], [_EMPTY]
    for event in np.flatnonzero((reco_counts > 0) & (truth_counts > 0)):
        r0, t0 = reco_start[event], truth_start[event]
        r1, t1 = r0 + reco_counts[event], t0 + truth_counts[event]
        rows, cols = match(reco_eta[r0:r1], reco_phi[r0:r1], truth_eta[t0:t1], truth_phi[t0:t1], max_dr)
        reco_pairs.append(rows + r0)
        truth_pairs.append(cols + t0)
    return np.concatenate(reco_pairs), np.concatenate(truth_pairs)


def confusion_matrix(truth_class: np.ndarray, reco_class: np.ndarray, n_classes: int = 5) -> np.ndarray:
    """Counts of matched pairs: rows truth class, columns reconstructed class."""
    index = np.asarray(truth_class, np.int64) * n_classes + np.asarray(reco_class, np.int64)
    return np.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def row_normalised(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (rows without entries stay 0): P(reco class | truth class)."""
    sums = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros(matrix.shape, dtype=np.float64), where=sums > 0)
