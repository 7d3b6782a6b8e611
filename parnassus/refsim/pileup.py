"""Pileup: minimum-bias truth events from a pre-generated pool, overlaid with their own vertices.

The pool is an ``.npz`` file of flat particle columns plus per-event counts, written by
:func:`write_pool` from any truth reader (HepMC3 or Pythia). A card's pileup section names its pool and
how to make it (``source``, ``events``, ``seed``): :func:`load_pool` makes a missing pool once, on first
use. Pileup particles go through the detector with the hard scatter but are not part of the truth written out.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from parnassus.errors import InputError
from parnassus.events import RunCounts, TruthBatch
from parnassus.io.atomic import atomic_path
from parnassus.refsim.config import Pileup
from parnassus.refsim.particles import Particles
from parnassus.streams import EventRandom

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


def make_pool(input_path: str | Path, n_events: int, output: str | Path, seed: int = 1,
              progress: bool = False) -> int:
    """Read (HepMC3) or generate (Pythia ``.cmnd``) ``n_events`` minimum-bias events into a pool file.

    Missing parent folders of ``output`` are made; the file appears atomically (temporary file, then rename).
    """
    from parnassus.card import TruthCuts
    from parnassus.io.hepmc import HepMCReader

    everything = TruthCuts(pt_min=0.0, eta_max=1e9, max_particles=10**9)
    counts = RunCounts()
    if str(input_path).endswith(".cmnd"):
        from parnassus.io.pythia import PythiaReader

        reader = PythiaReader(input_path, everything, 500, counts, max_events=n_events, seed=seed)
    else:
        reader = HepMCReader(input_path, everything, 500, counts, max_events=n_events)
    output = Path(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(output) as temporary, tqdm(total=n_events, unit="ev", desc="pileup pool",
                                                    disable=None if progress else True, file=sys.stderr,
                                                    dynamic_ncols=True) as bar:
            written = write_pool(_counting(reader, counts, bar), temporary)
    except OSError as error:
        raise InputError(f"{output}: cannot write the pileup pool ({error.strerror or error})") from None
    return written


def _counting(batches: Iterable[TruthBatch], counts: RunCounts, bar: tqdm) -> Iterable[TruthBatch]:
    """``batches``, moving the progress ``bar`` to the number of events read so far."""
    for batch in batches:
        bar.update(counts.read - bar.n)
        yield batch
    bar.update(counts.read - bar.n)


def pool_command(pileup: Pileup) -> str:
    """The ``parnassus pileup-pool`` command that makes the pool of a card's pileup section."""
    source = _shown(pileup.source) if pileup.source is not None else "MINBIAS.cmnd"
    return f"parnassus pileup-pool {source} -n {pileup.events} --seed {pileup.seed} {_shown(pileup.pool)}"


def ensure_pool(pileup: Pileup, progress: bool = True) -> Path:
    """The pool file of a card's pileup section; if it is missing, make it once from its ``source``."""
    pool = Path(pileup.pool)
    if pool.exists():
        return pool
    if pileup.source is None or not Path(pileup.source).is_file():
        why = "no pileup.source in the card" if pileup.source is None else f"{_shown(pileup.source)} not found"
        raise InputError(f"pileup pool {_shown(pool)} not found and cannot be made ({why}); "
                         f"make it with: {pool_command(pileup)}")
    is_pythia = str(pileup.source).endswith(".cmnd")
    if is_pythia:
        try:
            import pythia8mc  # noqa: F401
        except ImportError:
            raise InputError(f"pileup pool {_shown(pool)} not found; making it needs Pythia (pip install "
                             f"'pythia8mc'), or make it elsewhere with: {pool_command(pileup)}") from None
    estimate = f", ~{max(1, round(pileup.events / 500))} s" if is_pythia else ""
    print(f"refsim: pileup pool {_shown(pool)} not found; making it once from {_shown(pileup.source)} "
          f"({pileup.events} events{estimate})", file=sys.stderr, flush=True)
    make_pool(pileup.source, pileup.events, pool, pileup.seed, progress=progress)
    return pool


def load_pool(pileup: Pileup) -> PileupPool:
    """The pool of a card's pileup section, made first if it is missing (see :func:`ensure_pool`)."""
    return PileupPool(ensure_pool(pileup))


def _shown(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it, else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


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

    def overlay(self, n_events: int, mu: float, sigma_z: float, sigma_xy: float, rng: EventRandom
                ) -> tuple[Particles, np.ndarray]:
        """Poisson(mu) pool events per event, each moved to its own vertex; also returns the counts."""
        n_pileup = rng.poisson(np.arange(n_events), mu)
        owner = np.repeat(np.arange(n_events), n_pileup)  # the event of each chosen pool event
        chosen = rng.integers(owner, 0, len(self.counts))
        sizes = self.counts[chosen]
        index = np.repeat(self.starts[chosen] - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
        index += np.arange(sizes.sum())
        vertex = np.repeat(np.arange(len(chosen)), sizes)
        shift_z = rng.normal(owner, 0.0, sigma_z)[vertex]
        shift_x = rng.normal(owner, 0.0, sigma_xy)[vertex]
        shift_y = rng.normal(owner, 0.0, sigma_xy)[vertex]
        columns = {c: self.columns[c][index] for c in _COLUMNS}
        columns["x"] = columns["x"] + shift_x
        columns["y"] = columns["y"] + shift_y
        columns["z"] = columns["z"] + shift_z
        event = np.repeat(owner, sizes)
        return Particles(event=event, pileup=np.ones(len(index), dtype=bool), **columns), n_pileup
