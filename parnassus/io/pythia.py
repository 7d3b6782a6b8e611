"""Truth events from Pythia 8 (the optional ``pythia8mc`` package) written as HepMC3.

The vertex graph is built the way HepMC3's Pythia8ToHepMC3 interface does (mothers before daughters: a
particle's production vertex is the end vertex of its mothers, created on first use), because
``GenEvent.from_hepevt`` with Pythia's raw mother ranges builds loops that cannot be written.
"""

from __future__ import annotations

from pathlib import Path

import pyhepmc

from parnassus.errors import InputError


def make_pythia(cmnd: str | Path, seed: int):
    """A Pythia instance configured from a ``.cmnd`` file, quiet, with a fixed seed."""
    try:
        import pythia8mc
    except ImportError:
        raise InputError(f"{cmnd}: reading .cmnd cards needs Pythia: pip install 'pythia8mc'") from None
    if not Path(cmnd).is_file():
        raise InputError(f"{cmnd}: no such Pythia card")
    pythia = pythia8mc.Pythia("", False)
    for setting in ("Print:quiet = on", "Random:setSeed = on", f"Random:seed = {seed % 900_000_000}"):
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
    """Generate ``n_events`` with the card ``cmnd`` into a HepMC3 file (``.gz`` compresses); return the count."""
    pythia = make_pythia(cmnd, seed)
    run_info = pyhepmc.GenRunInfo()
    run_info.weight_names = ["Default"]
    run_info.tools = [("Pythia8 (pythia8mc)", "8.3", "converted by parnassus.io.pythia")]
    written = failures = 0
    with pyhepmc.open(output, "w", precision=precision) as out:
        while written < n_events:
            if not pythia.next():
                failures += 1
                if failures > 10 + n_events:
                    raise InputError(f"{cmnd}: Pythia failed to generate {failures} events")
                continue
            genevent = to_genevent(pythia.event, written, pythia.infoPython().sigmaGen() * 1e9)
            genevent.run_info = run_info
            out.write(genevent)
            written += 1
    return written
