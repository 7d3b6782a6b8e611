"""Pileup: minimum-bias truth events from a pre-generated pool, overlaid with their own vertices.

The pool is an ``.npz`` file of flat particle columns plus per-event counts, written by
:func:`write_pool` from any truth reader (HepMC3 or Pythia). Pileup particles go through the detector
with the hard scatter but are not part of the truth written out.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from parnassus.errors import InputError
from parnassus.events import TruthBatch
from parnassus.refsim.particles import Particles

_COLUMNS = ("pid", "charge", "cls", "px", "py", "pz", "e", "mass", "x", "y", "z")


def write_pool(batches: Iterable[TruthBatch], path: str | Path) -> int:
    """Store the final-state particles of minimum-bias events as a pool; returns the number of events."""
    parts, counts = [], []
    for batch in batches:
        source = batch.final_state if batch.final_state is not None else batch.particles
        particles = Particles.from_awkward(source, pileup=True)
        parts.append(particles)
        counts.append(np.bincount(particles.event, minlength=len(batch)))
    merged = Particles.concatenate(parts)
    np.savez_compressed(path, counts=np.concatenate(counts), **{c: getattr(merged, c) for c in _COLUMNS})
    return int(sum(len(c) for c in counts))


class PileupPool:
    """Minimum-bias events held in memory as flat columns."""

    def __init__(self, path: str | Path):
        try:
            with np.load(path) as data:
                self.counts = data["counts"].astype(np.int64)
                self.columns = {c: data[c] for c in _COLUMNS}
        except (OSError, KeyError, ValueError) as error:
            raise InputError(f"{path}: not a pileup pool written by parnassus ({error})") from None
        if len(self.counts) == 0:
            raise InputError(f"{path}: the pileup pool holds no events")
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])

    def overlay(self, n_events: int, mu: float, sigma_z: float, sigma_xy: float, rng: np.random.Generator
                ) -> tuple[Particles, np.ndarray]:
        """Poisson(mu) pool events per event, each moved to its own vertex; also returns the counts."""
        n_pileup = rng.poisson(mu, n_events)
        chosen = rng.integers(0, len(self.counts), n_pileup.sum())
        sizes = self.counts[chosen]
        index = np.repeat(self.starts[chosen] - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
        index += np.arange(sizes.sum())
        vertex = np.repeat(np.arange(len(chosen)), sizes)
        shift_z = rng.normal(0.0, sigma_z, len(chosen))[vertex]
        shift_x = rng.normal(0.0, sigma_xy, len(chosen))[vertex]
        shift_y = rng.normal(0.0, sigma_xy, len(chosen))[vertex]
        columns = {c: self.columns[c][index] for c in _COLUMNS}
        columns["x"] = columns["x"] + shift_x
        columns["y"] = columns["y"] + shift_y
        columns["z"] = columns["z"] + shift_z
        event = np.repeat(np.repeat(np.arange(n_events), n_pileup), sizes)
        return Particles(event=event, pileup=np.ones(len(index), dtype=bool), **columns), n_pileup
