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


def write_pool(batches: Iterable[TruthBatch], path: str | Path, eta_max: float = 3.5) -> int:
    """Store the final-state particles (|eta| < ``eta_max``: what can reach the detector) of minimum-bias
    events as a pool, in single precision; returns the number of events."""
    parts, counts = [], []
    for batch in batches:
        source = batch.final_state if batch.final_state is not None else batch.particles
        particles = Particles.from_awkward(source, pileup=True)
        particles = particles.take(np.abs(particles.eta) < eta_max)
        parts.append(particles)
        counts.append(np.bincount(particles.event, minlength=len(batch)))
    merged = Particles.concatenate(parts)
    columns = {c: getattr(merged, c).astype(np.float32 if getattr(merged, c).dtype.kind == "f" else np.int32)
               for c in _COLUMNS}
    np.savez_compressed(path, counts=np.concatenate(counts), **columns)
    return int(sum(len(c) for c in counts))


def make_pool(input_path: str | Path, n_events: int, output: str | Path, seed: int = 1) -> int:
    """Read (HepMC3) or generate (Pythia ``.cmnd``) ``n_events`` minimum-bias events into a pool file."""
    from parnassus.card import TruthCuts
    from parnassus.events import RunCounts
    from parnassus.io.hepmc import HepMCReader

    everything = TruthCuts(pt_min=0.0, eta_max=1e9, max_particles=10**9)
    if str(input_path).endswith(".cmnd"):
        from parnassus.io.pythia import PythiaReader

        reader = PythiaReader(input_path, everything, 500, RunCounts(), max_events=n_events, seed=seed)
    else:
        reader = HepMCReader(input_path, everything, 500, RunCounts(), max_events=n_events)
    tmp = Path(output).with_name(Path(output).name + ".part.npz")
    try:
        written = write_pool(reader, tmp)
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    return written


class PileupPool:
    """Minimum-bias events held in memory as flat columns."""

    def __init__(self, path: str | Path):
        try:
            with np.load(path) as data:
                self.counts = data["counts"].astype(np.int64)
                self.columns = {c: data[c].astype(np.float64 if data[c].dtype.kind == "f" else np.int64)
                                for c in _COLUMNS}
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
