"""Flat per-particle columns that the reference simulation passes between its stages."""

from __future__ import annotations

from dataclasses import dataclass, fields

import awkward as ak
import numpy as np


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
        """From a jagged truth array (fields of parnassus.events.TRUTH_FIELDS), one list per event."""
        counts = ak.to_numpy(ak.num(particles))
        flat = ak.flatten(particles)
        columns = {name: ak.to_numpy(flat[name]) for name in
                   ("pid", "charge", "cls", "px", "py", "pz", "e", "mass", "x", "y", "z")}
        return cls(event=np.repeat(np.arange(len(counts)), counts), pileup=np.full(len(flat), pileup),
                   **columns)


def delta_phi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - b + np.pi) % (2 * np.pi) - np.pi
