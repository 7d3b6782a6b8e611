"""``parnassus convert``: the CMS Open Simulation Parnassus ntuple → the Delphes-like layout ``run`` writes.

The public CMS Open Simulation data used by the Parnassus papers pairs, per event, the truth particles
with the CMS particle-flow candidates in a flat research ntuple: tree ``evt_tree``, jagged branches
``truth_{pt,eta,phi,vx,vy,vz,class,pdgId}`` and ``pflow_{...}`` with per-event counts ``ntruth`` and
``npflow``. Converted, it reads like the output of ``parnassus run`` (``Particle``, ``ParticleFlowCandidate``,
EFlow, and the card's jets, leptons, photons, MET and HT), so training code reads all sources alike.

The tree is read in chunks of entries, so memory does not grow with the file. Events with an inconsistent
count, a non-finite value, an unknown PDG id or a class that disagrees with it are skipped and counted by
reason. The card's truth and output cuts are *not* applied: the ntuple has its own selection, which the
output metadata records as external.
"""

from __future__ import annotations

import lzma
import time
import zlib
from collections.abc import Iterator
from contextlib import closing
from functools import lru_cache
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
from particle import InvalidParticle, Particle, ParticleNotFound
from tqdm import tqdm

from parnassus.card import Card
from parnassus.errors import InputError
from parnassus.events import RunCounts, TruthBatch, make_pfcs, sort_by_pt
from parnassus.io.delphes import DelphesWriter
from parnassus.pdg import CHARGED_HADRON, ELECTRON, MUON, PHOTON, charge_and_class
from parnassus.run import batch_collections, run_metadata

TREE = "evt_tree"
PARTICLE_FIELDS = ("pt", "eta", "phi", "vx", "vy", "vz", "class", "pdgId")
COUNTERS = {"truth": "ntruth", "pflow": "npflow"}  # prefix of the jagged branches -> their per-event count
JAGGED_BRANCHES = tuple(f"{prefix}_{name}" for prefix in COUNTERS for name in PARTICLE_FIELDS)
BRANCHES = JAGGED_BRANCHES + tuple(COUNTERS.values())

CM_TO_MM = 10.0  # the ntuple stores vertices in CMS units (cm); the Delphes layout uses mm. Momenta: GeV in both.
MEV_TO_GEV = 1e-3  # the particle package gives masses in MeV
CHARGED_CLASSES = (CHARGED_HADRON, ELECTRON, MUON)
N_CLASSES = PHOTON + 1
SELECTION = ("external: the ntuple's own event and particle selection, not known here; "
             "the card's truth and output cuts were not applied")
_READ_ERRORS = (OSError, ValueError, uproot.deserialization.DeserializationError, zlib.error, lzma.LZMAError)


@lru_cache(maxsize=4096)
def _pdg_mass(pid: int) -> float:
    """PDG mass in GeV of one id (0 when the table gives none); NaN when the table does not know the id."""
    try:
        mass = Particle.from_pdgid(pid).mass
    except (ParticleNotFound, InvalidParticle):
        return float("nan")
    return 0.0 if mass is None else mass * MEV_TO_GEV


def pdg_mass(pids: np.ndarray) -> np.ndarray:
    """Vectorised :func:`_pdg_mass`: looks up each distinct PDG id once."""
    unique, inverse = np.unique(np.asarray(pids, dtype=np.int64), return_inverse=True)
    return np.array([_pdg_mass(int(p)) for p in unique], dtype=np.float64)[inverse.reshape(-1)]


def _open_tree(path: str) -> tuple[uproot.ReadOnlyDirectory, uproot.TTree]:
    """Open ``path`` and return it with its checked ``evt_tree``; any problem is a one-line InputError."""
    try:
        file = uproot.open(path)
    except _READ_ERRORS as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not a ROOT file"
        raise InputError(f"{path}: cannot open input ({reason})") from None
    try:
        return file, _checked_tree(file, path)
    except BaseException:
        file.close()
        raise


def _checked_tree(file: uproot.ReadOnlyDirectory, path: str) -> uproot.TTree:
    try:
        tree = file[TREE]
    except (KeyError, *_READ_ERRORS):
        raise InputError(f"{path}: no '{TREE}' tree (not a CMS Open Simulation Parnassus ntuple)") from None
    if not isinstance(tree, uproot.TTree):
        raise InputError(f"{path}: '{TREE}' is not a TTree")
    missing = [name for name in BRANCHES if name not in tree]
    if missing:
        raise InputError(f"{path}: {TREE} has no branch {', '.join(missing)}")
    for name in BRANCHES:
        jagged = name in JAGGED_BRANCHES
        interpretation = tree[name].interpretation
        content = interpretation.content if isinstance(interpretation, uproot.AsJagged) else interpretation
        if isinstance(interpretation, uproot.AsJagged) != jagged or not isinstance(content, uproot.AsDtype):
            raise InputError(f"{path}: {TREE} branch {name} is not {'a list of numbers' if jagged else 'a number'} "
                             "per event")
    return tree


def _any_per_event(flags: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per event: is any of its particles' ``flags`` set."""
    return ak.to_numpy(ak.any(ak.unflatten(flags, counts), axis=1))


def _not_finite(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Per particle: is any of its values NaN or infinite."""
    return np.logical_or.reduce([~np.isfinite(column) for column in columns.values()])


def _mm(values: np.ndarray) -> np.ndarray:
    """Vertex coordinates of the ntuple (cm) in mm."""
    return np.asarray(values, dtype=np.float64) * CM_TO_MM


def _integers(values: np.ndarray) -> np.ndarray:
    """Integer codes (class, PDG id) as int64, whatever their stored type; non-finite values are dropped later."""
    with np.errstate(invalid="ignore"):
        return np.asarray(values).astype(np.int64)


class OpenSimReader:
    """Iterate over a CMS Open Simulation ntuple: ``(TruthBatch, pfcs)`` per chunk of ``step_size`` entries.

    The event number and index are the entry number; the weight is 1. PFCs are pT-ordered, as ``run``
    writes them. Entries read and events skipped (by reason) go to ``counts``. Opening checks the file,
    tree and branches, so a wrong file fails before any output is made.
    """

    def __init__(self, path: str | Path, counts: RunCounts, step_size: int, max_events: int | None = None):
        self.path = str(path)
        self.counts = counts
        self.step_size = step_size
        self._file, self._tree = _open_tree(self.path)
        entries = self._tree.num_entries
        self.entries = entries if max_events is None else min(max_events, entries)

    def close(self) -> None:
        self._file.close()

    def __iter__(self) -> Iterator[tuple[TruthBatch, ak.Array]]:
        try:
            for data, first in self._chunks():
                self.counts.read += len(data)
                converted = self._convert(data, np.arange(first, first + len(data)))
                if converted is not None:
                    yield converted
        finally:
            self.close()

    def _chunks(self) -> Iterator[tuple[ak.Array, int]]:
        """The required branches, chunk by chunk, with the entry number of each chunk's first event."""
        chunks = self._tree.iterate(list(BRANCHES), step_size=self.step_size, entry_stop=self.entries,
                                    library="ak", report=True)
        while True:
            try:
                data, report = next(chunks)
            except StopIteration:
                return
            except _READ_ERRORS as error:
                raise InputError(f"{self.path}: cannot read {TREE} ({str(error).splitlines()[0]})") from None
            yield data, report.tree_entry_start

    def _skip(self, events: np.ndarray, reason: str) -> None:
        if n := int(np.count_nonzero(events)):
            self.counts.skip(reason, n)

    def _convert(self, data: ak.Array, index: np.ndarray) -> tuple[TruthBatch, ak.Array] | None:
        """One chunk → (truth batch, PFCs) of its usable events; None when none is usable."""
        consistent = np.ones(len(data), dtype=bool)
        for prefix, counter in COUNTERS.items():
            declared = ak.to_numpy(data[counter])
            agrees = np.logical_and.reduce([ak.to_numpy(ak.num(data[f"{prefix}_{name}"], axis=1)) == declared
                                            for name in PARTICLE_FIELDS])
            self._skip(consistent & ~agrees, f"{counter} disagrees with the {prefix} lists")
            consistent &= agrees
        data, index = data[consistent], index[consistent]
        n_truth, n_pflow = (ak.to_numpy(ak.num(data[f"{prefix}_pt"], axis=1)) for prefix in COUNTERS)
        truth, pflow = ({name: ak.to_numpy(ak.flatten(data[f"{prefix}_{name}"])) for name in PARTICLE_FIELDS}
                        for prefix in COUNTERS)

        truth_pid, truth_cls, pflow_cls = (_integers(c) for c in (truth["pdgId"], truth["class"], pflow["class"]))
        truth_charge, pid_cls = charge_and_class(truth_pid)
        mass = pdg_mass(truth_pid)
        charged_pfc = np.isin(pflow_cls, CHARGED_CLASSES)
        pflow_charge = np.where(charged_pfc, charge_and_class(_integers(pflow["pdgId"]))[0], 0)
        problems = {  # reason -> per-event flag, in order of priority (each event is counted once)
            "non-finite value": (_any_per_event(_not_finite(truth), n_truth)
                                 | _any_per_event(_not_finite(pflow), n_pflow)),
            "unknown PDG id": _any_per_event((pid_cls < 0) | ~np.isfinite(mass), n_truth),
            "truth class disagrees with PDG id": _any_per_event(truth_cls != pid_cls, n_truth),
            "unknown PFC class": _any_per_event((pflow_cls < 0) | (pflow_cls >= N_CLASSES), n_pflow),
            "charged PFC without a charged PDG id": _any_per_event(charged_pfc & (pflow_charge == 0), n_pflow),
        }
        keep = np.ones(len(data), dtype=bool)
        for reason, bad in problems.items():
            self._skip(keep & bad, reason)
            keep &= ~bad
        if not keep.any():
            return None

        t, p = np.repeat(keep, n_truth), np.repeat(keep, n_pflow)
        pt, eta, phi, mass = (np.asarray(a[t], dtype=np.float64)
                              for a in (truth["pt"], truth["eta"], truth["phi"], mass))
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        columns = {
            "pid": truth_pid[t], "status": np.ones(len(pt)), "charge": truth_charge[t], "cls": truth_cls[t],
            "mass": mass, "e": np.sqrt(px**2 + py**2 + pz**2 + mass**2), "px": px, "py": py, "pz": pz,
            "pt": pt, "eta": eta, "phi": phi, "x": _mm(truth["vx"][t]), "y": _mm(truth["vy"][t]),
            "z": _mm(truth["vz"][t]), "t": np.zeros(len(pt)),
        }
        batch = TruthBatch.from_columns(n_truth[keep], columns, number=index[keep], weight=np.ones(keep.sum()),
                                        index=index[keep])
        pfcs = make_pfcs(n_pflow[keep], pflow["pt"][p], pflow["eta"][p], pflow["phi"][p], pflow_charge[p],
                         pflow_cls[p], _mm(pflow["vx"][p]), _mm(pflow["vy"][p]), _mm(pflow["vz"][p]))
        return batch, sort_by_pt(pfcs)


def _no_pfcs() -> ak.Array:
    none = np.zeros(0)
    return make_pfcs(none, none, none, none, none, none, none, none, none)


def convert(card: Card, input_path: str | Path, output_path: str | Path, step_size: int | None = None, *,
            max_events: int | None = None, progress: bool = True) -> RunCounts:
    """Convert the ntuple ``input_path`` into a Delphes-layout ROOT file, objects built as ``card`` says.

    ``step_size`` entries are read and converted at a time (default: the card's ``sampling.batch_size``).
    """
    step_size = step_size or card.sampling.batch_size
    counts = RunCounts()
    reader = OpenSimReader(input_path, counts, step_size, max_events=max_events)
    start = time.perf_counter()
    with closing(reader), DelphesWriter(output_path) as writer, tqdm(
            total=reader.entries, unit="ev", disable=None if progress else True, dynamic_ncols=True) as bar:
        for batch, pfcs in reader:
            writer.write(batch_collections(batch, pfcs, card.objects, card.sampling.seed))
            counts.written += len(batch)
            bar.update(counts.read - bar.n)
        bar.update(counts.read - bar.n)
        if writer.entries == 0:  # still write a valid (empty) tree with every collection
            writer.write(batch_collections(TruthBatch.empty(), _no_pfcs(), card.objects))
        writer.commit(run_metadata(
            card, input_path, counts, [], time.perf_counter() - start, generator=None, batch_size=step_size,
            source=f"converted from CMS Open Simulation ntuple {Path(input_path).name}", selection=SELECTION,
            units={"momentum": "GeV (as stored)", "length": "mm", "input_length": "cm", "length_scale": CM_TO_MM}))
    return counts
