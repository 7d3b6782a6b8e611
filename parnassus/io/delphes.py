"""Delphes-layout ROOT output, written atomically with uproot.

One TTree ``Delphes``; each collection ``X`` is a set of flat branches ``X.Leaf`` sharing a counter
``X_size`` (uproot cannot write Delphes' split-object branches). This reads like real Delphes output in
uproot (``tree["Jet.PT"]``, ``tree.arrays(["Jet.PT", ...])``) and ROOT (``TTree::Draw``, RDataFrame);
coffea users pass :class:`parnassus.coffea.DelphesSchema`. The run's metadata (card, seed, versions,
counts of events read/written/skipped) is stored as JSON in the ``parnassus_metadata`` string.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from parnassus.errors import OutputError
from parnassus.events import TruthBatch, impact_parameters
from parnassus.io.atomic import make_temporary, signals_deferred
from parnassus.pdg import CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON

TREE = "Delphes"
METADATA_KEY = "parnassus_metadata"
_KEEP_64BIT = {"Number"}
MM_PER_C_TO_SECONDS = 1e-3 / 299_792_458.0  # a time in mm/c (HepMC3's unit) in seconds (Delphes')


def truth_collections(batch: TruthBatch, replica: int | None = None, replicas: int = 1) -> dict[str, ak.Array]:
    """``Event``, ``Weight`` and ``Particle`` (the accepted truth particles) for a batch.

    An oversampled run (``replicas`` simulations of every truth event) gives ``replica``, the index of this
    simulation: it is written as the extra leaf ``Event.Replica``, which analyses written for Delphes ignore, and
    the event weights are divided by ``replicas`` so that sums of weights keep their meaning.
    """
    particle = particle_collection(batch.particles if batch.record is None else batch.record)
    one = np.ones(len(batch), dtype=np.int64)
    event_weight = batch.weight / replicas
    leaves = {"Number": batch.number, "Weight": event_weight}
    if replica is not None:
        leaves["Replica"] = np.full(len(batch), replica, dtype=np.int32)
    event = ak.unflatten(ak.zip(leaves), one)
    weight = ak.unflatten(ak.zip({"Weight": event_weight}), one)
    return {"Event": event, "Weight": weight, "Particle": particle}


def particle_collection(p: ak.Array) -> ak.Array:
    """Delphes' ``Particle`` (GenParticle) leaves of truth particles: the accepted final state (TRUTH_FIELDS,
    M1..D2 -1) or the whole record (RECORD_FIELDS, with its links). As Delphes writes them: T in seconds,
    X, Y, Z in mm, Eta and Rapidity +-999.9 along the beam (|cos theta| = 1)."""
    momentum = np.sqrt(p.px**2 + p.py**2 + p.pz**2)
    along_beam = abs(p.pz) == momentum
    beam_side = ak.where(p.pz >= 0, 999.9, -999.9)
    with np.errstate(divide="ignore", invalid="ignore"):
        rapidity = 0.5 * np.log((p.e + p.pz) / (p.e - p.pz))
    links = {name: p[name.lower()] if name.lower() in p.fields else ak.values_astype(ak.zeros_like(p.pid) - 1,
                                                                                      np.int32)
             for name in ("M1", "M2", "D1", "D2")}
    return ak.zip({
        "PID": p.pid, "Status": p.status, "IsPU": ak.zeros_like(p.pid), **links, "Charge": p.charge,
        "Mass": p.mass, "E": p.e, "Px": p.px, "Py": p.py, "Pz": p.pz, "P": momentum, "PT": p.pt,
        "Eta": ak.where(along_beam, beam_side, p.eta), "Phi": p.phi,
        "Rapidity": ak.where(along_beam, beam_side, rapidity), "T": p.t * MM_PER_C_TO_SECONDS,
        "X": p.x, "Y": p.y, "Z": p.z,
    })


def pfc_collections(pfcs: ak.Array) -> dict[str, ak.Array]:
    """``ParticleFlowCandidate`` (all, with ``Class``) and Delphes' EFlow split of the same candidates.

    ``IsPU`` is the candidates' ``is_pu`` (1: from a pileup interaction; 0 where the generator does not know)."""
    momentum = np.sqrt(pfcs.px**2 + pfcs.py**2 + pfcs.pz**2)
    d0, dz = impact_parameters(pfcs.x, pfcs.y, pfcs.z, pfcs.px, pfcs.py, pfcs.pz, pfcs.pt)
    all_pfcs = ak.zip({
        "PID": pfcs.pid, "Charge": pfcs.charge, "Class": pfcs.cls, "E": pfcs.e, "P": momentum, "PT": pfcs.pt,
        "Eta": pfcs.eta, "Phi": pfcs.phi, "Mass": pfcs.mass, "X": pfcs.x, "Y": pfcs.y, "Z": pfcs.z,
        "D0": d0, "DZ": dz, "IsPU": _is_pu(pfcs),
    })
    is_track = (pfcs.cls == CHARGED_HADRON) | (pfcs.cls == ELECTRON) | (pfcs.cls == MUON)
    t = pfcs[is_track]
    tracks = ak.zip({
        "PID": t.pid, "Charge": t.charge, "IsPU": _is_pu(t), "P": momentum[is_track],
        "PT": t.pt, "Eta": t.eta, "Phi": t.phi, "CtgTheta": t.pz / t.pt, "Mass": t.mass,
        "T": ak.zeros_like(t.pt), "X": t.x, "Y": t.y, "Z": t.z, "D0": d0[is_track], "DZ": dz[is_track],
    })
    return {"ParticleFlowCandidate": all_pfcs, "EFlowTrack": tracks,
            "EFlowPhoton": _towers(pfcs[pfcs.cls == PHOTON], electromagnetic=True),
            "EFlowNeutralHadron": _towers(pfcs[pfcs.cls == NEUTRAL_HADRON], electromagnetic=False)}


def _towers(c: ak.Array, electromagnetic: bool) -> ak.Array:
    zero = ak.zeros_like(c.pt)
    return ak.zip({
        "ET": c.pt, "Eta": c.eta, "Phi": c.phi, "E": c.e, "T": zero, "X": c.x, "Y": c.y, "Z": c.z,
        "Eem": c.e if electromagnetic else zero, "Ehad": zero if electromagnetic else c.e,
        "IsPU": _is_pu(c),
    })


def _is_pu(c: ak.Array) -> ak.Array:
    """The candidates' pileup flag; 0 for candidate arrays made without one."""
    return c.is_pu if "is_pu" in c.fields else ak.zeros_like(c.cls)


def _delphes_types(collection: ak.Array, outer: str) -> ak.Array:
    """Delphes' leaf types: float32 for reals, int32 for integers (except Event.Number), uint32 kept."""
    columns = {}
    for name in collection.fields:
        column = collection[name]
        kind = _primitive(column)
        if kind.kind == "f":
            target = np.float32
        elif kind == np.uint32 or (outer == "Event" and name in _KEEP_64BIT):
            target = kind
        else:
            target = np.int32
        columns[name] = ak.values_astype(column, target)
    return ak.zip(columns)


def _primitive(column: ak.Array) -> np.dtype:
    layout = column.layout
    while not hasattr(layout, "dtype"):
        layout = layout.content
    return layout.dtype


def check_output_path(path: str | Path, input_path: str | Path | None = None) -> None:
    """Raise :class:`OutputError` unless ``path`` names a file that may be written (and is not ``input_path``)."""
    text = str(path)
    if text == "-":
        raise OutputError("OUTPUT '-': cannot write ROOT to stdout; give a file name")
    if text.endswith(os.sep) or (os.altsep and text.endswith(os.altsep)) or os.path.isdir(text):
        raise OutputError(f"{text}: names a directory; give a file name")
    if input_path is not None and str(input_path) != "-" and os.path.exists(text) and os.path.exists(input_path):
        if os.path.samefile(text, input_path):
            raise OutputError(f"{text}: is the input file {input_path}; give another OUTPUT")


class DelphesWriter:
    """Write collections batch by batch into a temporary file; rename it to ``path`` on :meth:`commit`.

    Used as a context manager, the temporary file is removed if the block ends without ``commit()``
    (error, Ctrl-C, signal), so a failed run leaves no output file and an existing ``path`` untouched.
    A write error (full disk, ...) removes the temporary file and raises a one-line :class:`OutputError`.
    """

    def __init__(self, path: str | Path, flush_events: int = 1000):
        check_output_path(path)
        self.path = Path(path)
        self.flush_events = flush_events  # uproot rewrites the tree header on every extend: extend rarely
        self._pending: list[dict[str, ak.Array]] = []
        self._pending_events = 0
        self._tree = None
        self._file = None
        self.entries = 0
        self._temporary: Path | None = None
        try:
            with signals_deferred():  # a signal between mkstemp and this assignment would orphan the file
                self._temporary = self._make_temporary()
            with self._guard():
                self._file = uproot.recreate(self._temporary)
        except BaseException:  # Ctrl-C or a signal before the caller's ``with`` block owns this writer
            self.abort()
            raise

    def _make_temporary(self) -> Path:
        try:
            return make_temporary(self.path)
        except OSError as error:
            raise self._error(error) from None

    def _error(self, error: OSError) -> OutputError:
        reason = error.strerror or (str(error).strip().splitlines() or [type(error).__name__])[0]
        return OutputError(f"{self.path}: cannot write ({reason})")

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn an OSError of the block into a one-line OutputError, after removing the temporary file."""
        try:
            yield
        except OSError as error:
            self.abort()
            raise self._error(error) from None

    def write(self, collections: dict[str, ak.Array]) -> None:
        """Queue one batch of collections (every batch has the same collections); flush when enough."""
        self._pending.append({name: _delphes_types(array, name) for name, array in collections.items()})
        self._pending_events += len(next(iter(collections.values())))
        self.entries += len(next(iter(collections.values())))
        if self._pending_events >= self.flush_events:
            with self._guard():
                self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        data = {name: ak.concatenate([batch[name] for batch in self._pending]) for name in self._pending[0]}
        self._pending, self._pending_events = [], 0
        if self._tree is None:
            self._tree = self._file.mktree(
                TREE, {name: array.type for name, array in data.items()}, title="Analysis tree",
                field_name=lambda outer, inner: f"{outer}.{inner}",
                counter_name=lambda counted: f"{counted}_size")
        self._tree.extend(data)

    def commit(self, metadata: dict) -> None:
        """Write what is queued, store the metadata, close the file and move it to its final name."""
        with self._guard():
            self._flush()
            self._file[METADATA_KEY] = json.dumps(metadata, indent=1, sort_keys=True, default=str)
            self._file.close()
            os.replace(self._temporary, self.path)
            self._file = None

    def abort(self) -> None:
        """Close the file, ignoring errors (a full disk fails again on close), and remove the temporary file."""
        file, self._file = self._file, None
        try:
            if file is not None:
                with contextlib.suppress(Exception):
                    file.close()
        finally:
            if self._temporary is not None:
                self._temporary.unlink(missing_ok=True)

    def __enter__(self) -> DelphesWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self.abort()


def read_metadata(path: str | Path) -> dict:
    """The run metadata stored in a file written by :class:`DelphesWriter`."""
    with uproot.open(path) as file:
        return json.loads(str(file[METADATA_KEY]))
