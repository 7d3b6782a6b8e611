"""Minimum-cost one-to-one assignment among allowed pairs (``scipy.optimize.linear_sum_assignment``).

Shared by the validation report's ΔR matching (:mod:`parnassus.validate.matching`) and the truth anchors of the
learned generator (:mod:`parnassus.nn.anchors`). A light module: the run path imports it without the report's
plotting, and scipy.optimize (0.34 s to import) only when an assignment is made: sampling never makes one.
"""

from __future__ import annotations

import numpy as np

_EMPTY = np.zeros(0, dtype=np.int64)


def assign(cost: np.ndarray, allowed: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """(row index, column index) of the pairs of the minimum-cost one-to-one assignment that are ``allowed``.

    ``limit`` bounds the cost of an allowed pair. Rows and columns without any allowed pair are left out; a
    forbidden pair gets a cost larger than all allowed pairs together, so an assignment with one more allowed pair is
    always cheaper, and forbidden pairs are dropped after the assignment.
    """
    rows_index, cols_index = np.flatnonzero(allowed.any(axis=1)), np.flatnonzero(allowed.any(axis=0))
    if len(rows_index) == 0:
        return _EMPTY, _EMPTY
    from scipy.optimize import linear_sum_assignment

    cost, allowed = cost[np.ix_(rows_index, cols_index)], allowed[np.ix_(rows_index, cols_index)]
    big = limit * (min(cost.shape) + 1) + 1.0
    rows, cols = linear_sum_assignment(np.where(allowed, cost, big))
    keep = allowed[rows, cols]
    return rows_index[rows[keep]], cols_index[cols[keep]]
