"""The columnar event batches that flow through a run, and the run's bookkeeping.

Truth particles and particle-flow candidates (PFCs) are jagged awkward arrays of records, one list per
event. Truth fields: pid, status, charge, cls, mass, e, px, py, pz, pt, eta, phi, x, y, z, t (GeV, mm).
PFC fields: pt, eta, phi, e, mass, px, py, pz, charge, cls, pid, x, y, z, is_pu (pileup origin, see make_pfcs).
History fields (the generator-history particles that jet flavour and tagging need): see HISTORY_FIELDS.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import awkward as ak
import numpy as np

from parnassus.pdg import CLASS_MASS, candidate_pid

TRUTH_FIELDS = {
    "pid": np.int32, "status": np.int32, "charge": np.int32, "cls": np.int32, "mass": np.float64,
    "e": np.float64, "px": np.float64, "py": np.float64, "pz": np.float64, "pt": np.float64,
    "eta": np.float64, "phi": np.float64, "x": np.float64, "y": np.float64, "z": np.float64, "t": np.float64,
}

# The particles of the generator history that the analysis objects need (jet flavour, b- and tau-tagging),
# kept beside the final state (:attr:`TruthBatch.history`; see parnassus.io.hepmc.generator_history):
# - Delphes' "partons": quarks (|pid| 1-5) and gluons of any status but 1, within the card's flavour cuts;
# - b and c hadrons that decay weakly (no hadron of the same heavy flavour among their daughters), same cuts;
# - decayed tau leptons (the last tau of a chain), with their "visible" momentum: the sum of their daughters but
#   the tau neutrino, as Delphes 3.5.1's TauTagging takes them (leptonic decays included, their e/mu neutrino
#   counted in the sum: checked against Delphes' output, where such jets are tau jets).
# pt, eta, phi: the particle's own momentum; vis_pt, vis_eta, vis_phi: the visible decay products' for a tau,
# the own momentum otherwise.
HISTORY_FIELDS = {
    "pid": np.int32, "status": np.int32, "pt": np.float64, "eta": np.float64, "phi": np.float64,
    "vis_pt": np.float64, "vis_eta": np.float64, "vis_phi": np.float64,
}

# The whole generator record of an event (card ``output.truth: full``), as Delphes' readers fill its
# ``Particle`` collection: every particle of every status, ordered as Delphes orders them (grouped by production
# vertex), with the indices (in that order, -1: none) of the first and last mother (m2 -1 for a single one) and of
# the first and last daughter. charge: Delphes' (the PDG charge truncated to an integer, -999 if unknown).
RECORD_FIELDS = {
    "pid": np.int32, "status": np.int32, "charge": np.int32, "mass": np.float64, "e": np.float64,
    "px": np.float64, "py": np.float64, "pz": np.float64, "pt": np.float64, "eta": np.float64, "phi": np.float64,
    "x": np.float64, "y": np.float64, "z": np.float64, "t": np.float64,
    "m1": np.int32, "m2": np.int32, "d1": np.int32, "d2": np.int32,
}


@dataclass
class TruthBatch:
    """A batch of accepted input events."""

    particles: ak.Array
    number: np.ndarray  # event number from the input file
    weight: np.ndarray  # nominal event weight
    index: np.ndarray  # position of the event in the input, from 0
    # every final-state particle (status and drop_pids applied, no kinematic cut, no truncation), for
    # simulations that need what lies outside the truth acceptance (the reference simulation); optional
    final_state: ak.Array | None = None
    # generator-history particles for jet flavour and tagging (HISTORY_FIELDS); None when the input has no
    # history (converted ntuples) or the reader was not asked for it
    history: ak.Array | None = None
    # the whole generator record (RECORD_FIELDS) when the card writes it (``output.truth: full``), else None
    record: ak.Array | None = None

    def __len__(self) -> int:
        return len(self.number)

    @classmethod
    def from_columns(cls, counts: np.ndarray, columns: dict[str, np.ndarray], number: np.ndarray,
                     weight: np.ndarray, index: np.ndarray) -> TruthBatch:
        """Build a batch from flat per-particle columns (all of TRUTH_FIELDS) and per-event counts."""
        return cls(particles=cls.jagged(counts, columns, TRUTH_FIELDS),
                   number=np.asarray(number, dtype=np.int64), weight=np.asarray(weight, dtype=np.float64),
                   index=np.asarray(index, dtype=np.int64))

    @staticmethod
    def jagged(counts: np.ndarray, columns: dict[str, np.ndarray], fields: dict[str, type]) -> ak.Array:
        """A jagged array of records with the given ``fields`` (name: dtype) from flat columns and counts."""
        flat = ak.zip({name: np.asarray(columns[name], dtype=dtype) for name, dtype in fields.items()})
        return ak.unflatten(flat, np.asarray(counts, dtype=np.int64))

    @classmethod
    def empty(cls) -> TruthBatch:
        none = np.zeros(0)
        return cls.from_columns(none, dict.fromkeys(TRUTH_FIELDS, none), none, none, none)


@dataclass
class RunCounts:
    """Events read, written, skipped (by reason) and truncated; stored in the output and printed."""

    read: int = 0
    written: int = 0
    skipped: Counter = field(default_factory=Counter)
    truncated: int = 0  # events with more accepted truth particles than the card's maximum
    model_truncated: int = 0  # events for which a learned model asked for more candidates than its maximum
    model_outside_acceptance: int = 0  # candidates a learned model sampled outside the output acceptance (dropped)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n

    def as_dict(self) -> dict:
        return {"read": self.read, "written": self.written, "skipped": dict(self.skipped),
                "skipped_total": sum(self.skipped.values()), "truncated": self.truncated,
                "model_truncated": self.model_truncated, "model_outside_acceptance": self.model_outside_acceptance}


def eta_phi(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pt, eta, phi) of momenta; eta is ±inf along the beam axis."""
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, pz / pt, np.sign(pz) * np.inf))
    return pt, eta, np.arctan2(py, px)


def impact_parameters(x, y, z, px, py, pz, pt):
    """(D0, DZ) of tracks produced at (x, y, z) mm with momentum (px, py, pz) GeV, as Delphes defines them: the
    signed transverse distance of closest approach to the beam axis, (x py - y px) / pT, and z at that point
    (a straight line there: displacements are far below the radius of curvature). numpy or awkward arrays."""
    d0 = (x * py - y * px) / pt
    dz = z - (x * px + y * py) / pt * (pz / pt)
    return d0, dz


def primary_vertices(event: np.ndarray, charge: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                     n_events: int) -> np.ndarray:
    """(x, y, z) of each event's hard-scatter vertex, shape (n_events, 3), from flat particle columns.

    Each coordinate is the median (a middle value) of the production points of the event's charged
    particles, of all its particles if none is charged, and 0 for an event without particles.
    """
    event = np.asarray(event, dtype=np.int64)
    charged = np.asarray(charge) != 0
    use = charged | ~(np.bincount(event[charged], minlength=n_events) > 0)[event]  # charged where an event has any
    event = event[use]
    counts = np.bincount(event, minlength=n_events)
    starts = np.cumsum(counts) - counts
    has = counts > 0
    result = np.zeros((n_events, 3))
    for column, values in enumerate((x, y, z)):
        values = np.asarray(values, dtype=np.float64)[use]
        order = np.lexsort((values, event))
        result[has, column] = values[order][starts[has] + counts[has] // 2]
    return result


def make_pfcs(counts: np.ndarray, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, charge: np.ndarray,
              cls: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, is_pu: np.ndarray | None = None
              ) -> ak.Array:
    """Build the jagged PFC array from flat columns, adding mass, energy and Cartesian momentum by class.

    ``is_pu``: 1 for a candidate from a pileup interaction (the truth origin, known to the reference simulation),
    0 for the others; none: 0 for all (generators that do not know)."""
    pt, eta, phi = (np.asarray(a, dtype=np.float64) for a in (pt, eta, phi))
    is_pu = np.zeros(len(pt), dtype=np.int32) if is_pu is None else np.asarray(is_pu, dtype=np.int32)
    cls = np.asarray(cls, dtype=np.int32)
    charge = np.asarray(charge, dtype=np.int32)
    mass = CLASS_MASS[cls]
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    flat = ak.zip({"pt": pt, "eta": eta, "phi": phi, "e": energy, "mass": mass, "px": px, "py": py, "pz": pz,
                   "charge": charge, "cls": cls, "pid": candidate_pid(cls, charge),
                   "x": np.asarray(x, np.float64), "y": np.asarray(y, np.float64),
                   "z": np.asarray(z, np.float64), "is_pu": is_pu})
    return ak.unflatten(flat, np.asarray(counts, dtype=np.int64))


def sort_by_pt(particles: ak.Array) -> ak.Array:
    """Order the particles of every event by decreasing pT."""
    return particles[ak.argsort(particles.pt, axis=1, ascending=False)]
