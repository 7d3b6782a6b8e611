"""Streaming HepMC3 reader: input file → batches of accepted truth particles.

The input (plain, gzip, bzip2 or xz HepMC3 ASCII; ``-`` for stdin, so a generator can write into a FIFO)
is split into per-event text blocks in Python, then parsed by pyhepmc one batch at a time, so memory
does not grow with the number of events. Each block is checked against the particle count its ``E`` line
announces before it is parsed: truncated, empty or malformed events are skipped and counted, never dropped
silently, and never end the read early. HepMC3's parser reads a number it cannot parse as 0 (C ``atof``), so
the numbers of the E, W, P and V lines are checked in the text first (see :func:`numbers_are_well_formed`).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyhepmc

from parnassus.card import JetFlavor, TruthCuts
from parnassus.errors import InputError
from parnassus.events import HISTORY_FIELDS, RECORD_FIELDS, TRUTH_FIELDS, RunCounts, TruthBatch, eta_phi
from parnassus.pdg import charge_and_class, ctau_mm, delphes_charge, has_quark

CHUNK_BYTES = 1 << 20
EVENT_START = b"\nE "
END_LISTING = b"HepMC::Asciiv3-END_EVENT_LISTING"
_DECOMPRESSORS = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open))
_STREAM_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError)

# What HepMC3's ReaderAscii parses with atoi/atof (a space before each field), as written by its WriterAscii
# (V: id, status, incoming particles, optional position; P: id, parent, PDG id, px, py, pz, e, mass, status).
_INT = rb"[-+]?\d+"
_NUM = rb"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|(?i:nan|inf|infinity))"
_POSITION = rb"(?: @ " + rb" ".join([_NUM] * 4) + rb")?"
_LINES = {
    b"E": rb" " + rb" ".join([_INT] * 3) + _POSITION,
    b"W": rb"(?:[ \t]+" + _NUM + rb")*",
    b"V": rb" " + _INT + rb" " + _INT + rb" \[(?:" + _INT + rb"(?:," + _INT + rb")*)?\]" + _POSITION,
    b"P": rb" " + rb" ".join([_INT] * 3 + [_NUM] * 5 + [_INT]),
}
# matches at the start of any E, W, V or P line whose fields are not numbers of the expected form
_BAD_LINE = re.compile(rb"^(?:" + rb"|".join(kind + rb"(?!" + fields + rb"[ \t\r]*$)"
                                            for kind, fields in _LINES.items()) + rb")", re.MULTILINE)
# characters of the P and V lines of WriterAscii's output, but for the letters P, V and the '@' of a position
_NUMBER_CHARACTERS = b"0123456789+-.e []\n,"
# GeV: no collider makes a particle with a momentum or an energy above this (the LHC beams: 6.8e3 GeV)
MAX_MOMENTUM = 1e5


@dataclass
class _Block:
    index: int  # position of the event in the input, from 0
    text: bytes
    n_particles: int = 0  # as announced by the event's E line


def open_stream(path: str | Path) -> BinaryIO:
    """Open a file (or ``-`` for stdin) for binary reading, decompressing gzip/bzip2/xz by magic bytes."""
    if str(path) == "-":
        raw: BinaryIO = sys.stdin.buffer
    else:
        try:
            raw = open(path, "rb")  # noqa: SIM115 (closed by the reader)
        except OSError as error:
            raise InputError(f"{path}: cannot open input ({error.strerror})") from None
    if not hasattr(raw, "peek"):
        raw = io.BufferedReader(raw)  # type: ignore[arg-type]
    magic = raw.peek(6)[:6]  # type: ignore[attr-defined]
    for prefix, opener in _DECOMPRESSORS:
        if magic.startswith(prefix):
            return opener(raw)  # type: ignore[return-value]
    return raw


class TruthReader:
    """What every truth reader holds: its input, cuts, batch size, event range, counts and warnings.

    ``history`` (a card's ``objects.jet_flavor``): also keep the generator-history particles that jet flavour
    and tagging need, the partons and heavy hadrons within its pT and |eta| cuts
    (:attr:`TruthBatch.history <parnassus.events.TruthBatch>`); none: no history. ``record``: also keep each
    event's whole generator record (:attr:`TruthBatch.record`, card ``output.truth: full``).
    """

    def __init__(self, path: str | Path, cuts: TruthCuts, batch_size: int, counts: RunCounts,
                 max_events: int | None = None, skip: int = 0, history: JetFlavor | None = None,
                 record: bool = False):
        self.path = str(path)
        self.cuts = cuts
        self.batch_size = batch_size
        self.counts = counts
        self.max_events = max_events
        self.skip = skip
        self.warnings: list[str] = []
        self._select_truth = TruthSelector(cuts, counts, history, record)


class HepMCReader(TruthReader):
    """Iterate over a HepMC3 ASCII input in :class:`TruthBatch` es of at most ``batch_size`` events."""

    def __init__(self, path: str | Path, cuts: TruthCuts, batch_size: int, counts: RunCounts,
                 max_events: int | None = None, skip: int = 0, history: JetFlavor | None = None,
                 record: bool = False):
        super().__init__(path, cuts, batch_size, counts, max_events, skip, history, record)
        self._header = b""
        self._open()

    # -- text level -------------------------------------------------------------------------------
    def _open(self) -> None:
        """Open the input and read its header now, so a wrong file fails before any output is made."""
        self._stream = open_stream(self.path)
        buffer = b""
        while EVENT_START not in buffer:
            chunk = self._read_chunk()
            if not chunk:
                break
            buffer += chunk
        head = buffer[:256]
        if not head:
            raise InputError(f"{self.path}: input is empty")
        if b"HepMC::Asciiv3" not in head:
            if b"HepMC::IO_GenEvent" in head:
                raise InputError(f"{self.path}: HepMC2 input is not supported; write HepMC3 (Asciiv3) events")
            raise InputError(f"{self.path}: not a HepMC3 ASCII file (no 'HepMC::Asciiv3' header)")
        first = buffer.find(EVENT_START)
        first = len(buffer) if first < 0 else first + 1
        self._header, self._buffer = buffer[:first], buffer[first:]

    def _read_chunk(self) -> bytes:
        try:
            return self._stream.read1(CHUNK_BYTES)  # type: ignore[attr-defined]
        except _STREAM_ERRORS as error:
            self.warnings.append(f"{self.path}: input ends early ({error})")
            return b""

    def close(self) -> None:
        if self._stream is not sys.stdin.buffer:
            self._stream.close()

    def _blocks(self) -> Iterator[_Block]:
        """Yield the text of each event in the selected range (after ``skip``, at most ``max_events``)."""
        # a growing bytearray, searched only where it has not been searched yet: decompressors hand over chunks of
        # ~30 kB, several per event, and re-searching (and copying) the event's text at each chunk costs more than
        # the search itself
        buffer, index, at_end, searched = bytearray(self._buffer), 0, False, 1
        self._buffer = b""
        while not at_end:
            chunk = self._read_chunk()
            at_end = not chunk
            buffer += chunk
            start = 0
            while (end := buffer.find(EVENT_START, max(start + 1, searched))) >= 0:
                yield from self._emit(bytes(buffer[start:end + 1]), index)
                index += 1
                start = end + 1
            del buffer[:start]
            searched = max(len(buffer) - len(EVENT_START) + 1, 1)
            if self.max_events is not None and index >= self.skip + self.max_events:
                return
        tail = bytes(buffer).split(END_LISTING, 1)[0]
        if tail.strip():
            yield from self._emit(tail, index)

    def _emit(self, text: bytes, index: int) -> Iterator[_Block]:
        if index < self.skip or (self.max_events is not None and index >= self.skip + self.max_events):
            return
        yield _Block(index, text)

    # -- event level ------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[TruthBatch]:
        pending: list[_Block] = []
        try:
            for block in self._blocks():
                self.counts.read += 1
                if self._check_block(block):
                    pending.append(block)
                if len(pending) == self.batch_size:
                    yield from self._parse(pending)
                    pending = []
            if pending:
                yield from self._parse(pending)
        finally:
            self.close()

    def _check_block(self, block: _Block) -> bool:
        """Check a block's particle lines against its E line; count and drop it if they disagree."""
        fields = block.text.split(b"\n", 1)[0].split()
        try:
            n_particles = int(fields[3])
        except (IndexError, ValueError):
            self.counts.skip("malformed event header")
            return False
        if n_particles == 0:
            self.counts.skip("empty event")
            return False
        if block.text.count(b"\nP ") != n_particles or not block.text.endswith(b"\n"):
            self.counts.skip("truncated or malformed event")
            return False
        if not numbers_are_well_formed(block.text, n_particles):
            self.counts.skip("malformed event")
            return False
        block.n_particles = n_particles
        return True

    def _parse(self, blocks: list[_Block]) -> Iterator[TruthBatch]:
        events, start = [], 0
        while start < len(blocks):
            text = b"".join([self._header, *(b.text for b in blocks[start:]), END_LISTING, b"\n"])
            with pyhepmc.open(io.BytesIO(text), format="HepMC3") as reader:
                for block in blocks[start:]:
                    start += 1
                    event = reader.read()
                    data = pyhepmc.GenEventData()
                    if event is not None:
                        event.write_data(data)  # columns, without a Python object per particle
                    if event is None or len(data.particles) != block.n_particles:
                        self.counts.skip("malformed event")
                        break  # the reader's state is unknown after a failure: restart after this block
                    selected = self._select(event, data, block.index)
                    if selected is not None:
                        events.append(selected)
                else:
                    break
        if events:
            yield to_truth_batch(events)

    def _select(self, event: pyhepmc.GenEvent, data: pyhepmc.GenEventData, index: int) -> dict | None:
        """Apply the card's truth cuts to one event (``data``: its columns); None (and a counted skip) if it cannot
        be used."""
        particles = data.particles
        gev = 1.0 if event.momentum_unit == pyhepmc.Units.GEV else 1e-3
        mm = 1.0 if event.length_unit == pyhepmc.Units.MM else 10.0
        momentum = np.stack([particles["px"], particles["py"], particles["pz"], particles["e"]]) * gev
        px, py, pz, energy = momentum
        with np.errstate(invalid="ignore"):
            mass = np.where(particles["is_mass_set"], particles["mass"] * gev,
                            np.sqrt(np.maximum(energy**2 - px**2 - py**2 - pz**2, 0.0)))
        production, first_incoming = _vertex_links(data, len(particles))
        position = _production_positions(data, production, first_incoming, event.event_pos()) * mm
        parent = _through(production, first_incoming) if self._select_truth.needs_parents else None
        family = _family(data, production) if self._select_truth.record else None
        selected = self._select_truth(particles["pid"], particles["status"], momentum, mass, position, parent,
                                      family)
        if selected is None:
            return None
        weight = event.weights[0] if len(event.weights) else 1.0
        return {"index": index, "number": event.event_number, "weight": weight, **selected}


def numbers_are_well_formed(text: bytes, n_particles: int) -> bool:
    """Whether every field of the E, W, V and P lines of one event's text is a number of the expected form.

    Its head (E, U, W, A... lines) is matched line by line. Its particle and vertex lines, the bulk of the
    text, are first checked in bulk against the layout of WriterAscii (only P and V lines; digits, signs,
    points and one exponent 'e' per float; 9 spaces per P line, 3 per V line, 5 more per position): a few
    passes over the text in C. Only an event that differs from that layout is matched line by line.
    """
    first = text.find(b"\nP ") + 1
    if _BAD_LINE.search(text, 0, first):
        return False
    letters = text.translate(None, _NUMBER_CHARACTERS)
    letters = letters[len(text[:first].translate(None, _NUMBER_CHARACTERS)):]  # those of the P and V lines
    n_vertices, n_positions = letters.count(b"V"), letters.count(b"@")
    if (len(letters) == n_particles + n_vertices + n_positions and letters.count(b"P") == n_particles
            and text.count(b"\n", first) == n_particles + n_vertices
            and text.count(b" ", first) == 9 * n_particles + 3 * n_vertices + 5 * n_positions
            and text.count(b"e", first) == 5 * n_particles + 4 * n_positions):
        return True
    return _BAD_LINE.search(text, first) is None


class TruthSelector:
    """The card's truth cuts, shared by every reader: one event's particles → its accepted truth columns.

    With ``history`` (a card's ``objects.jet_flavor``), also the event's generator-history particles
    (:func:`generator_history`, partons and heavy hadrons within its cuts).
    """

    def __init__(self, cuts: TruthCuts, counts: RunCounts, history: JetFlavor | None = None,
                 record: bool = False):
        self.cuts = cuts
        self.counts = counts
        self.history = history
        self.record = record  # then a reader passes ``family``
        self._drop = np.array(sorted({abs(p) for p in cuts.drop_pids}), dtype=np.int64)
        self._status = np.array(cuts.status, dtype=np.int64)
        self.needs_parents = cuts.stable_ctau_mm is not None or history is not None  # then a reader passes ``parent``

    def __call__(self, pid: np.ndarray, status: np.ndarray, momentum: np.ndarray, mass: np.ndarray,
                 position: np.ndarray, parent: np.ndarray | None = None, family: np.ndarray | None = None
                 ) -> dict[str, np.ndarray] | None:
        """Select the accepted truth particles of one event.

        ``pid``, ``status`` (HepMC convention), ``mass`` (GeV): one entry per particle of the event;
        ``momentum``: (4, n) px, py, pz, E in GeV; ``position``: (n, 4) production x, y, z, t in mm;
        ``parent``: the index of one mother of each particle, -1 for none (needed with ``stable_ctau_mm`` and
        for the history). Returns the columns of :data:`TRUTH_FIELDS` for the accepted particles, with under
        ``final_state`` the same columns for every final-state particle (status and drop_pids only, no
        kinematic cut or truncation; particles with ids unknown to the PDG table left out) and, with
        ``history`` and ``parent``, under ``history`` the columns of :data:`HISTORY_FIELDS` of the event's
        generator-history particles (:func:`generator_history`); with ``family`` (``record``), under ``record``
        the columns of :data:`RECORD_FIELDS` of the whole record (:func:`whole_record`); or None (and a counted skip)
        for an event with a non-finite or unphysical momentum among its final-state particles (see
        :func:`is_physical`) or an unknown PDG id among the accepted particles. Counts truncated events.
        """
        cuts = self.cuts
        history = None
        record = whole_record(pid, status, momentum, mass, position, family) if family is not None else None
        if self.history is not None and parent is not None:
            history = generator_history(pid, status, momentum, parent, self.history.pt_min, self.history.eta_max)
        replaced = None
        if cuts.stable_ctau_mm is not None:
            status, replaced = restore_long_lived(pid, status, parent, cuts.stable_ctau_mm)
        final = np.isin(status, self._status)
        if replaced is not None:
            final &= ~replaced
        final &= ~np.isin(np.abs(pid.astype(np.int64)), self._drop)
        momentum = momentum[:, final]
        if not np.all(np.isfinite(momentum)):
            self.counts.skip("non-finite momentum")
            return None
        if not is_physical(momentum):
            self.counts.skip("unphysical momentum")
            return None
        px, py, pz, energy = momentum
        pt, eta, phi = eta_phi(px, py, pz)
        keep = (pt >= cuts.pt_min) & (np.abs(eta) <= cuts.eta_max)
        if keep.sum() > cuts.max_particles:
            order = np.argsort(-np.where(keep, pt, -1.0), kind="stable")[: cuts.max_particles]
            keep = np.zeros_like(keep)
            keep[order] = True
            self.counts.truncated += 1
        pid = pid[final]
        charge, cls = charge_and_class(pid)
        if np.any(cls[keep] < 0):
            self.counts.skip("unknown PDG id")
            return None
        position = position[final]
        columns = {
            "pid": pid, "status": status[final], "charge": charge, "cls": cls, "mass": mass[final],
            "e": energy, "px": px, "py": py, "pz": pz, "pt": pt, "eta": eta, "phi": phi,
            "x": position[:, 0], "y": position[:, 1], "z": position[:, 2], "t": position[:, 3],
        }
        known = cls >= 0
        selected = {name: column[keep] for name, column in columns.items()} | {
            "final_state": {name: column[known] for name, column in columns.items()}}
        if history is not None:
            selected["history"] = history
        if record is not None:
            selected["record"] = record
        return selected


def whole_record(pid: np.ndarray, status: np.ndarray, momentum: np.ndarray, mass: np.ndarray, position: np.ndarray,
                 family: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of :data:`RECORD_FIELDS` of every particle of one event (arguments as for
    :class:`TruthSelector`; ``family``: (5, n) the output order and, in that order, m1, m2, d1, d2)."""
    order = family[0]
    px, py, pz, energy = momentum[:, order]
    pt, eta, phi = eta_phi(px, py, pz)
    pid = pid[order]
    return {"pid": pid, "status": status[order], "charge": delphes_charge(pid), "mass": mass[order], "e": energy,
            "px": px, "py": py, "pz": pz, "pt": pt, "eta": eta, "phi": phi,
            "x": position[order, 0], "y": position[order, 1], "z": position[order, 2], "t": position[order, 3],
            "m1": family[1], "m2": family[2], "d1": family[3], "d2": family[4]}


def generator_history(pid: np.ndarray, status: np.ndarray, momentum: np.ndarray, parent: np.ndarray,
                      pt_min: float = 0.0, eta_max: float = np.inf) -> dict[str, np.ndarray]:
    """The generator-history particles of one event that jet flavour and tagging need (see HISTORY_FIELDS).

    Delphes' partons (quarks and gluons of any status but 1, as its HepMC readers fill ``partons``), the
    weakly decaying b and c hadrons, and the decayed taus (the last of each chain) with the sum of their
    daughters but the tau neutrino (the taus and momentum Delphes 3.5.1's TauTagging uses). Partons and hadrons
    are kept with pT > ``pt_min`` and |eta| <= ``eta_max`` (the flavour association's cuts: the others never
    count), taus all. ``pid``, ``status``, ``parent`` (one mother per particle, -1: none) and ``momentum``
    ((4, n) px, py, pz, E in GeV) cover the whole record. Vectorised: a few passes over the event in numpy, no
    loop over particles.
    """
    apid = np.abs(pid.astype(np.int64))
    n = len(apid)
    has_parent = parent >= 0
    parent_of = parent[has_parent]

    def with_daughter(mask: np.ndarray) -> np.ndarray:  # per particle: one of its daughters is in ``mask``
        return np.bincount(parent_of[mask[has_parent]], minlength=n) > 0

    keep = (((apid >= 1) & (apid <= 5)) | (apid == 21)) & (status != 1)  # partons
    for flavour in (5, 4):
        heavy = has_quark(apid, flavour)
        keep |= heavy & ~with_daughter(heavy)  # weakly decaying: no hadron of the same flavour among its daughters
    pt, eta, _ = eta_phi(*momentum[:3, keep])
    keep[keep] = (pt > pt_min) & (np.abs(eta) <= eta_max)

    tau = apid == 15
    visible = momentum
    if tau.any():  # the last tau of each chain, decayed; visible: the sum of its daughters but its neutrino
        decayed_tau = tau & with_daughter(np.ones(n, dtype=bool)) & ~with_daughter(tau)
        keep |= decayed_tau
        product = np.zeros(n, dtype=bool)
        product[has_parent] = tau[parent_of] & (apid[has_parent] != 16)
        visible = momentum.copy()
        for k in range(3):
            visible[k, decayed_tau] = np.bincount(parent[product], weights=momentum[k, product],
                                                  minlength=n)[decayed_tau]
    pt, eta, phi = eta_phi(*momentum[:3, keep])
    vis_pt, vis_eta, vis_phi = eta_phi(*visible[:3, keep])
    return {"pid": pid[keep], "status": status[keep], "pt": pt, "eta": eta, "phi": phi,
            "vis_pt": vis_pt, "vis_eta": vis_eta, "vis_phi": vis_phi}


def restore_long_lived(pid: np.ndarray, status: np.ndarray, parent: np.ndarray, ctau_min: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Undo the generator's decays of particles with a PDG c*tau above ``ctau_min`` (mm).

    Returns the statuses with each such decayed (status 2) particle that has no such ancestor set to 1, and
    the mask of their descendants (to leave out of the final state). ``parent``: one mother per particle, -1
    for none; one is enough, since decay products have a single mother.
    """
    long_lived = status == 2
    long_lived[long_lived] = ctau_mm(pid[long_lived]) > ctau_min
    replaced = np.zeros(len(pid), dtype=bool)
    if not long_lived.any():
        return status, replaced
    has_parent = parent >= 0
    generation = long_lived
    while generation.any():  # one generation of descendants per pass; each particle is added once
        generation = has_parent & generation[parent] & ~replaced
        replaced |= generation
    return np.where(long_lived & ~replaced, 1, status), replaced


def is_physical(momentum: np.ndarray) -> bool:
    """Whether every (px, py, pz, E) column of ``momentum`` (GeV, finite) could be a real particle.

    Its energy is not negative, its energy and momentum are at most :data:`MAX_MOMENTUM`, and its energy is not
    below its momentum beyond the rounding of a text file (relative 1e-6 + 1e-6 GeV).
    """
    p = np.hypot(np.hypot(momentum[0], momentum[1]), momentum[2])  # no overflow to inf
    energy = momentum[3]
    return bool(np.all((p <= MAX_MOMENTUM) & (energy <= MAX_MOMENTUM) & (energy >= 0.0)
                       & (energy >= p * (1 - 1e-6) - 1e-6)))


def _vertex_links(data: pyhepmc.GenEventData, n_particles: int) -> tuple[np.ndarray, np.ndarray]:
    """The production vertex of each particle and the first incoming particle of each vertex (-1: none)."""
    links1, links2 = np.asarray(data.links1), np.asarray(data.links2)
    produced = (links1 < 0) & (links2 > 0)  # vertex -links1 produces particle links2
    incoming = (links1 > 0) & (links2 < 0)  # particle links1 enters vertex -links2
    production = np.full(n_particles, -1, dtype=np.int64)
    production[links2[produced] - 1] = -links1[produced] - 1
    first_incoming = np.full(len(data.vertices), -1, dtype=np.int64)
    vertex, first = np.unique(-links2[incoming] - 1, return_index=True)
    first_incoming[vertex] = links1[incoming][first] - 1
    return production, first_incoming


def _family(data: pyhepmc.GenEventData, production: np.ndarray) -> np.ndarray:
    """(5, n): the order in which Delphes' HepMC3 reader lists the particles of an event, and in that order the
    first and last mother (m2 -1 for one mother) and the first and last daughter of each (-1: none).

    Delphes lists particles grouped by their production vertex, the groups in the order of their first particle
    in the file (particles without a production vertex, the beams, form one group), so the daughters of a vertex
    are the range d1..d2; the mothers are the particles entering the production vertex.
    """
    n = len(production)
    links1, links2 = np.asarray(data.links1), np.asarray(data.links2)
    incoming = (links1 > 0) & (links2 < 0)  # particle links1 enters vertex -links2
    group = np.where(production >= 0, production, -1)
    first_of_group = np.full(len(data.vertices) + 1, n, dtype=np.int64)
    np.minimum.at(first_of_group, group + 1, np.arange(n))
    order = np.argsort(first_of_group[group + 1], kind="stable")
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)

    def first_last(vertex: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        first = np.full(len(data.vertices), n, dtype=np.int64)
        last = np.full(len(data.vertices), -1, dtype=np.int64)
        np.minimum.at(first, vertex, position[members])
        np.maximum.at(last, vertex, position[members])
        return first, last, np.bincount(vertex, minlength=len(data.vertices))

    mother_first, mother_last, mothers = first_last(-links2[incoming] - 1, links1[incoming] - 1)
    produced = production >= 0
    daughter_first, daughter_last, _ = first_last(production[produced], np.flatnonzero(produced))
    end = np.full(n, -1, dtype=np.int64)
    end[links1[incoming] - 1] = -links2[incoming] - 1
    family = np.full((5, n), -1, dtype=np.int64)
    family[0] = order
    has_mother = produced & (_through(production, mothers) > 0)
    family[1, has_mother] = mother_first[production[has_mother]]
    several = has_mother & (_through(production, mothers) > 1)
    family[2, several] = mother_last[production[several]]
    decays = end >= 0
    decays[decays] = daughter_last[end[decays]] >= 0  # an end vertex without outgoing particles: no daughters
    family[3, decays] = daughter_first[end[decays]]
    family[4, decays] = daughter_last[end[decays]]
    family[1:] = family[1:, order]  # from file order to the output order
    return family


def _through(index: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[index]`` where ``index`` >= 0, else -1."""
    result = np.full(len(index), -1, dtype=np.int64)
    valid = index >= 0
    result[valid] = table[index[valid]]
    return result


def _production_positions(data: pyhepmc.GenEventData, production: np.ndarray, first_incoming: np.ndarray,
                          event_pos: pyhepmc.FourVector) -> np.ndarray:
    """(x, y, z, t) of each particle's production vertex, as HepMC3's GenVertex::position() resolves it.

    A vertex without a position inherits that of its first incoming particle's production vertex; a
    particle without a production vertex, or a chain without any position, gets the event position.
    """
    vertices = data.vertices
    n_particles, n_vertices = len(production), len(vertices)
    origin = np.array([event_pos.x, event_pos.y, event_pos.z, event_pos.t])
    own = np.stack([vertices["x"], vertices["y"], vertices["z"], vertices["t"]], axis=1).reshape(-1, 4)
    has_position = np.any(own != 0.0, axis=1)
    parent = _through(first_incoming, production)  # the production vertex of the first incoming particle
    position = np.where(has_position[:, None], own, np.nan)
    for _ in range(n_vertices):  # propagate positions down decay chains until nothing changes
        todo = ~has_position & (parent >= 0)
        todo[todo] &= has_position[parent[todo]]
        if not todo.any():
            break
        position[todo] = position[parent[todo]]
        has_position |= todo
    position[~has_position] = origin
    result = np.tile(origin, (n_particles, 1))
    with_vertex = production >= 0
    result[with_vertex] = position[production[with_vertex]]
    return result


def to_truth_batch(events: list[dict]) -> TruthBatch:
    """One batch from per-event dicts of truth columns (all of TRUTH_FIELDS) plus index, number and weight."""
    batch = TruthBatch.from_columns(
        counts=np.array([len(e["pid"]) for e in events]),
        columns={name: np.concatenate([e[name] for e in events]) for name in TRUTH_FIELDS},
        number=np.array([e["number"] for e in events]), weight=np.array([e["weight"] for e in events]),
        index=np.array([e["index"] for e in events]))
    final = [e["final_state"] for e in events]
    batch.final_state = TruthBatch.from_columns(
        counts=np.array([len(f["pid"]) for f in final]),
        columns={name: np.concatenate([f[name] for f in final]) for name in TRUTH_FIELDS},
        number=batch.number, weight=batch.weight, index=batch.index).particles
    if all("record" in e for e in events):
        record = [e["record"] for e in events]
        batch.record = TruthBatch.jagged(np.array([len(r["pid"]) for r in record]),
                                         {name: np.concatenate([r[name] for r in record])
                                          for name in RECORD_FIELDS}, RECORD_FIELDS)
    if all("history" in e for e in events):
        history = [e["history"] for e in events]
        batch.history = TruthBatch.jagged(np.array([len(h["pid"]) for h in history]),
                                          {name: np.concatenate([h[name] for h in history])
                                           for name in HISTORY_FIELDS}, HISTORY_FIELDS)
    return batch
