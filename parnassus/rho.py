"""The pileup density rho of each event, as Delphes' ``Rho`` module (``FastJetFinder`` with ``ComputeRho``).

Every event's particle-flow candidates are clustered with the card's jet definition and FastJet areas (ghosts up
to ``ghost_eta_max``); for every range of |rapidity| rho is the median of pT / area of the jets in it
(``JetMedianBackgroundEstimator``). One clustering serves all ranges (Delphes clusters once per range: the same
jets up to the random ghost positions).

The ghosts' positions are random. FastJet draws them from one generator for the whole process; every event here
restores it to the state it had when this module was imported, so each event gets the same ghosts whatever the
batch, the process or the events before it: rho depends on the event alone, as every other output does.
FastJet's area clustering runs event by event (its awkward interface has no areas): about 7 ms per refsim ttbar
event with the Delphes defaults, nearly all of it clustering the ~6300 ghosts (``ghost_area`` 0.02: 3.4 ms and rho
within 3%; passive areas: 0.5 ms, but rho 14% higher).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import awkward as ak
import fastjet
import numpy as np

from parnassus.card import Rho

_ALGORITHMS = {"antikt": fastjet.antikt_algorithm, "kt": fastjet.kt_algorithm,
               "cambridge": fastjet.cambridge_algorithm}
_AREAS = {"active": fastjet.active_area, "active_explicit_ghosts": fastjet.active_area_explicit_ghosts,
          "one_ghost_passive": fastjet.one_ghost_passive_area, "passive": fastjet.passive_area}

fastjet._swig.ClusterSequence.set_fastjet_banner_stream(None)  # keep stdout clean (pipelines)
_GHOSTS = fastjet.GhostedAreaSpec(5.0)
_GHOSTS.checkpoint_random()  # the ghost generator's state at import: restored before every event
_GHOST_LOCK = threading.Lock()  # restoring and drawing the ghosts is one step, also with threads


@dataclass
class EventRho:
    """Rho of a batch: ``values`` (events, ranges) in GeV per unit area, ``edges`` (ranges, 2) in |eta|."""

    values: np.ndarray
    edges: np.ndarray

    def at(self, eta: ak.Array) -> ak.Array:
        """Rho for objects at ``eta`` (jagged, one list per event), as Delphes' Isolation looks it up: from the
        last range with min <= |eta| < max, 0 outside every range."""
        counts = ak.to_numpy(ak.num(eta))
        abs_eta = np.abs(ak.to_numpy(ak.flatten(eta)))
        per_object = self.values[np.repeat(np.arange(len(counts)), counts)]
        rho = np.zeros(len(abs_eta))
        for k, (low, high) in enumerate(self.edges):
            rho = np.where((abs_eta >= low) & (abs_eta < high), per_object[:, k], rho)
        return ak.unflatten(rho, counts)

    def collection(self) -> ak.Array:
        """Delphes' ``Rho`` collection: one entry per range (``Rho``; its ``Edges[2]`` as the two leaves
        ``Edges0`` and ``Edges1``, since uproot cannot write a fixed-size array inside a collection)."""
        n_events, n_ranges = self.values.shape
        flat = ak.zip({"Rho": self.values.ravel(), "Edges0": np.tile(self.edges[:, 0], n_events),
                       "Edges1": np.tile(self.edges[:, 1], n_events)})
        return ak.unflatten(flat, np.full(n_events, n_ranges, dtype=np.int64))


def event_rho(particles: ak.Array, spec: Rho) -> EventRho:
    """Rho of every event of ``particles`` (fields px, py, pz, e; jagged) in each of the card's ranges."""
    ghosts = fastjet.GhostedAreaSpec(spec.ghost_eta_max, spec.repeat, spec.ghost_area, spec.grid_scatter,
                                     spec.pt_scatter, spec.mean_ghost_pt)
    jet_definition = fastjet.JetDefinition(_ALGORITHMS[spec.algorithm], spec.radius)
    area_definition = fastjet.AreaDefinition(_AREAS[spec.area], ghosts)
    selectors = [fastjet.SelectorAbsRapRange(low, high) for low, high in spec.eta_ranges]
    counts = ak.to_numpy(ak.num(particles))
    stops = np.cumsum(counts)
    flat = ak.flatten(particles)
    px, py, pz, e = (ak.to_numpy(flat[name]).astype(np.float64).tolist() for name in ("px", "py", "pz", "e"))
    values = np.zeros((len(counts), len(selectors)))
    for event, (start, stop) in enumerate(zip(stops - counts, stops, strict=True)):
        pseudojets = [fastjet.PseudoJet(*p) for p in zip(px[start:stop], py[start:stop], pz[start:stop],
                                                          e[start:stop], strict=True)]
        with _GHOST_LOCK:
            _GHOSTS.restore_checkpoint_random()
            sequence = fastjet.ClusterSequenceArea(pseudojets, jet_definition, area_definition)
        for k, selector in enumerate(selectors):
            values[event, k] = fastjet.JetMedianBackgroundEstimator(selector, sequence).rho()
    return EventRho(values, np.asarray(spec.eta_ranges, dtype=np.float64).reshape(-1, 2))
