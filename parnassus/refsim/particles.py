"""Flat per-particle columns that the reference simulation passes between its stages."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import awkward as ak
import numpy as np

GENERATOR, BREM, CONVERSION, DECAY = range(4)  # where a particle comes from


@dataclass
class Particles:
    """Truth particles of a batch (hard scatter and pileup) as flat numpy columns (GeV, mm)."""

    event: np.ndarray
    pid: np.ndarray
    charge: np.ndarray
    cls: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    mass: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    pileup: np.ndarray  # bool
    origin: np.ndarray | None = None  # GENERATOR, or made in the detector: BREM, CONVERSION, DECAY (int8)
    group: np.ndarray | None = None  # shared by an electron and its brem photon, or the two legs of a conversion
    radiated: np.ndarray | None = None  # fraction of an electron's momentum lost to bremsstrahlung

    def __post_init__(self) -> None:
        n = len(self.event)
        if self.origin is None:
            self.origin = np.full(n, GENERATOR, dtype=np.int8)
        if self.group is None:
            self.group = np.full(n, -1, dtype=np.int64)
        if self.radiated is None:
            self.radiated = np.zeros(n)

    def replace(self, **columns: np.ndarray) -> Particles:
        """A copy with some columns replaced (the others are shared)."""
        return replace(self, **columns)

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.px, self.py)

    @property
    def p(self) -> np.ndarray:
        return np.sqrt(self.px**2 + self.py**2 + self.pz**2)

    @property
    def eta(self) -> np.ndarray:
        pt = np.maximum(self.pt, 1e-12)
        return np.arcsinh(self.pz / pt)

    @property
    def phi(self) -> np.ndarray:
        return np.arctan2(self.py, self.px)

    def __len__(self) -> int:
        return len(self.event)

    def take(self, index: np.ndarray) -> Particles:
        return Particles(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def concatenate(cls, parts: list[Particles]) -> Particles:
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    @classmethod
    def from_awkward(cls, particles: ak.Array, pileup: bool = False) -> Particles:
        """From a jagged truth array (fields of parnassus.events.TRUTH_FIELDS), one list per event.

        The columns are copies: the stages may change them without touching the batch's truth arrays.
        """
        counts = ak.to_numpy(ak.num(particles))
        flat = ak.flatten(particles)
        columns = {name: np.array(ak.to_numpy(flat[name]), copy=True) for name in
                   ("pid", "charge", "cls", "px", "py", "pz", "e", "mass", "x", "y", "z")}
        return cls(event=np.repeat(np.arange(len(counts)), counts), pileup=np.full(len(flat), pileup),
                   **columns)


def delta_phi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - b + np.pi) % (2 * np.pi) - np.pi
