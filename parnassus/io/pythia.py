"""Truth events from Pythia 8 (the optional ``pythia8mc`` package): straight to truth batches, or as HepMC3.

:class:`PythiaReader` lets ``parnassus run`` take a ``.cmnd`` card as its input: events are generated on
the fly with Pythia's batch interface (``Pythia.nextBatch``, whole event records as awkward arrays) and go
to truth columns without any per-particle Python, and without HepMC.

:func:`write_hepmc` writes HepMC3 files. Its vertex graph is built the way HepMC3's Pythia8ToHepMC3
interface does (mothers before daughters: a particle's production vertex is the end vertex of its mothers,
created on first use), because ``GenEvent.from_hepevt`` with Pythia's raw mother ranges builds loops that
cannot be written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import awkward as ak
import numpy as np
import pyhepmc

from parnassus.card import JetFlavor, TruthCuts
from parnassus.errors import InputError
from parnassus.events import RunCounts, TruthBatch
from parnassus.io.atomic import atomic_path, signals_deferred
from parnassus.io.hepmc import TruthReader, to_truth_batch

MAX_SEED = 900_000_000  # Pythia's Random:seed range is 1..900000000; 0 would mean "seed from the clock"


def make_pythia(cmnd: str | Path, seed: int):
    """A Pythia instance configured from a ``.cmnd`` file, quiet, with a fixed seed (any int: reduced mod 9e8)."""
    try:
        import pythia8mc
    except ImportError:
        raise InputError(f"{cmnd}: reading .cmnd cards needs Pythia: pip install 'pythia8mc'") from None
    if not Path(cmnd).is_file():
        raise InputError(f"{cmnd}: no such Pythia card")
    pythia = pythia8mc.Pythia("", False)
    for setting in ("Print:quiet = on", "Random:setSeed = on", f"Random:seed = {seed % MAX_SEED or MAX_SEED}"):
        pythia.readString(setting)
    if not pythia.readFile(str(cmnd)):
        raise InputError(f"{cmnd}: Pythia rejected a setting in this card")
    if not pythia.init():
        raise InputError(f"{cmnd}: Pythia failed to initialise with this card")
    return pythia


def to_genevent(event, number: int, cross_section_pb: float | None = None) -> pyhepmc.GenEvent:
    """Convert a Pythia event record (GeV, mm) into a HepMC3 event with its full history."""
    genevent = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
    genevent.event_number = number
    mothers = {i: [m for m in event[i].motherList() if m > 0] for i in range(1, event.size())}
    particles: dict[int, pyhepmc.GenParticle] = {}
    end_vertex: dict[int, pyhepmc.GenVertex] = {}
    for i in _parents_first(mothers):
        p = event[i]
        particle = pyhepmc.GenParticle(pyhepmc.FourVector(p.px(), p.py(), p.pz(), p.e()), p.id(),
                                       p.statusHepMC())
        particle.generated_mass = p.m()
        particles[i] = particle
        if not mothers[i]:
            genevent.add_particle(particle)  # beams (their mother is Pythia's system entry 0)
            continue
        vertex = next((end_vertex[m] for m in mothers[i] if m in end_vertex), None)
        if vertex is None:
            vertex = pyhepmc.GenVertex(pyhepmc.FourVector(p.xProd(), p.yProd(), p.zProd(), p.tProd()))
            genevent.add_vertex(vertex)
        for m in mothers[i]:
            if m not in end_vertex:
                vertex.add_particle_in(particles[m])
                end_vertex[m] = vertex
        vertex.add_particle_out(particle)
    genevent.weights = [1.0]
    if cross_section_pb is not None:
        genevent.cross_section = pyhepmc.GenCrossSection()
        genevent.cross_section.set_cross_section(cross_section_pb, 0.0)
    return genevent


def _parents_first(mothers: dict[int, list[int]]) -> list[int]:
    """Record indices ordered so that every particle comes after all of its mothers."""
    depth: dict[int, int] = {}
    for start in mothers:
        stack, on_stack = [start], {start}
        while stack:
            i = stack[-1]
            pending = [m for m in mothers[i] if m not in depth and m not in on_stack]
            if pending:
                stack.extend(pending)
                on_stack.update(pending)
                continue
            stack.pop()
            on_stack.discard(i)
            depth[i] = 1 + max((depth.get(m, 0) for m in mothers[i]), default=0)
    return sorted(mothers, key=lambda i: (depth[i], i))


def write_hepmc(cmnd: str | Path, n_events: int, output: str | Path, seed: int = 1, precision: int = 8) -> int:
    """Generate ``n_events`` with the card ``cmnd`` into a HepMC3 file (``.gz`` compresses); return the count.
    A file appears when it is complete (temporary file, then rename); into an existing FIFO the events are
    written as they are made, for a reader at its other end (``parnassus run``)."""
    pythia = make_pythia(cmnd, seed)
    run_info = pyhepmc.GenRunInfo()
    run_info.weight_names = ["Default"]
    run_info.tools = [("Pythia8 (pythia8mc)", "8.3", "converted by parnassus.io.pythia")]
    written = failures = 0
    with nullcontext(output) if Path(output).is_fifo() else atomic_path(output) as temporary:
        # pyhepmc's C++ writer calls Python (gzip) to write: a signal handled in there would be swallowed, so
        # signals wait while it runs (opening writes the header, closing the footer)
        with signals_deferred():
            out = pyhepmc.open(temporary, "w", precision=precision)
        try:
            while written < n_events:
                if not pythia.next():
                    failures += 1
                    if failures > 10 + n_events:
                        raise InputError(f"{cmnd}: Pythia failed to generate {failures} events")
                    continue
                genevent = to_genevent(pythia.event, written, pythia.infoPython().sigmaGen() * 1e9)
                genevent.run_info = run_info
                with signals_deferred():
                    out.write(genevent)
                written += 1
        finally:
            with signals_deferred():
                out.close()
    return written


class PythiaReader(TruthReader):
    """Generate events from a Pythia ``.cmnd`` card in :class:`TruthBatch` es of at most ``batch_size`` events.

    The interface of :class:`~parnassus.io.hepmc.HepMCReader`, with the same truth cuts and counts, for
    events generated on the fly: ``max_events`` is required; ``skip`` events are generated and discarded
    first, so ``skip=K, max_events=N`` gives events K to K+N-1 of the sequence of the same ``seed``. An
    event's number and index are its position in that sequence (from 0); its weight is Pythia's nominal
    weight. Events Pythia fails to generate are retried, and reported as a warning.
    """

    def __init__(self, path: str | Path, cuts: TruthCuts, batch_size: int, counts: RunCounts,
                 max_events: int | None = None, skip: int = 0, seed: int = 1, history: JetFlavor | None = None,
                 record: bool = False):
        if max_events is None:
            raise InputError(f"{path}: a Pythia card needs -n/--max-events")
        super().__init__(path, cuts, batch_size, counts, max_events, skip, history, record)
        self._failures = 0
        self._pythia = make_pythia(path, seed)  # initialise now, so a bad card fails before any output is made
        self._is_hadron: dict[int, bool] = {}

    def __iter__(self) -> Iterator[TruthBatch]:
        index = 0
        while index < self.skip:
            index += len(self._generate(min(self.batch_size, self.skip - index)))
        end = self.skip + self.max_events
        while index < end:
            records = self._generate(min(self.batch_size, end - index))
            self.counts.read += len(records)
            batch = self._select(records, index)
            index += len(records)
            if len(batch):
                yield batch
        if self._failures:
            self.warnings.append(f"{self.path}: Pythia failed to generate {self._failures} events (retried)")

    def _generate(self, n_events: int) -> ak.Array:
        """The event records of the next ``n_events`` events that Pythia generates successfully."""
        parts, generated = [], 0
        while generated < n_events:
            records = self._pythia.nextBatch(n_events - generated, "skip")  # failed events are left out
            self._failures += n_events - generated - len(records)
            if self._failures > 10 + self.skip + self.max_events:
                raise InputError(f"{self.path}: Pythia failed to generate {self._failures} events")
            parts.append(records)
            generated += len(records)
        return parts[0] if len(parts) == 1 else ak.concatenate(parts)

    def _select(self, records: ak.Array, first_index: int) -> TruthBatch:
        """Apply the card's truth cuts to Pythia event records (one flattening per batch, then per event)."""
        sizes = ak.to_numpy(ak.num(records.prt))
        starts = np.cumsum(sizes) - sizes
        particles = ak.flatten(records.prt)  # one record array for the whole batch

        pid = ak.to_numpy(particles.id)
        daughter1 = np.repeat(starts, sizes) + ak.to_numpy(particles.daughter1)  # index in the flat arrays
        status = self._status_hepmc(pid, ak.to_numpy(particles.status), daughter1)
        momentum = np.stack([ak.to_numpy(particles.p[name]) for name in ("px", "py", "pz", "e")])
        vertex = ak.fill_none(particles.vProd, {"px": 0.0, "py": 0.0, "pz": 0.0, "e": 0.0})  # none set: origin
        position = np.stack([ak.to_numpy(vertex[name]) for name in ("px", "py", "pz", "e")], axis=1)  # x y z t
        mass = ak.to_numpy(particles.m)
        weights = ak.to_numpy(ak.fill_none(ak.firsts(records.info.weights), 1.0))
        parent = None
        if self._select_truth.needs_parents:  # index of the first mother in the event's slice below, -1: none
            # (decay products, the history that flavour and tau tagging read, have a single mother)
            mother1 = ak.to_numpy(particles.mother1)
            parent = np.where(mother1 > 0, mother1 - 1, -1)
        family = None
        if self._select_truth.record:  # Pythia's own order and links, as Delphes' Pythia8 reader writes them
            links = [ak.to_numpy(particles[name]) - 1 for name in ("mother1", "mother2", "daughter1", "daughter2")]
            family = np.stack([np.arange(len(pid)) - np.repeat(starts + 1, sizes), *links])
        events = []
        for i, (start, size) in enumerate(zip(starts, sizes, strict=True)):
            event = slice(start + 1, start + size)  # entry 0 is Pythia's "system" line, not a particle
            selected = self._select_truth(pid[event], status[event], momentum[:, event], mass[event],
                                          position[event], None if parent is None else parent[event],
                                          None if family is None else family[:, event])
            if selected is not None:
                events.append({"index": first_index + i, "number": first_index + i, "weight": weights[i],
                               **selected})
        return to_truth_batch(events) if events else TruthBatch.empty()

    def _status_hepmc(self, pid: np.ndarray, status: np.ndarray, daughter1: np.ndarray) -> np.ndarray:
        """Pythia's ``Particle::statusHepMC()`` of flat event records (``daughter1``: flat index).

        Final particles 1, beams 4, hadrons, muons and taus that decay normally 2, other codes in
        -200..-11 their absolute value, anything else 0.
        """
        unique, inverse = np.unique(pid, return_inverse=True)
        for p in unique:
            if int(p) not in self._is_hadron:
                self._is_hadron[int(p)] = bool(self._pythia.particleData.isHadron(int(p)))
        decaying = np.array([self._is_hadron[int(p)] for p in unique], dtype=bool)[inverse.reshape(-1)]
        decaying |= np.isin(np.abs(pid), (13, 15))
        daughter_status = np.abs(status[daughter1])
        decaying &= (pid[daughter1] != pid) & (daughter_status > 90) & (daughter_status < 95)
        hepmc = np.where((status <= -11) & (status >= -200), -status, 0)
        hepmc[decaying] = 2
        hepmc[status == -12] = 4
        hepmc[status > 0] = 1
        return hepmc
