"""The reference simulation as a generator: truth batch → particle-flow candidates."""

from __future__ import annotations

import awkward as ak
import numpy as np

from parnassus.card import OutputCuts
from parnassus.events import TruthBatch, make_pfcs, sort_by_pt
from parnassus.pdg import ELECTRON, MUON, PHOTON
from parnassus.refsim.calorimeter import Grid, add_noise, cluster, deposit_cells, particle_deposits
from parnassus.refsim.config import RefSimParameters
from parnassus.refsim.particleflow import reconstruct
from parnassus.refsim.particles import Particles
from parnassus.refsim.pileup import PileupPool
from parnassus.refsim.tracker import decays_in_flight, propagate, reconstruct_tracks


class ReferenceSimulation:
    """Truth batch → reconstructed particle-flow candidates (see module docstring)."""

    def __init__(self, params: RefSimParameters, output: OutputCuts):
        self.params = params
        self.output = output
        geometry = params.geometry
        self.ecal_grid = Grid(geometry.ecal_cell, geometry.calorimeter_eta_max)
        self.hcal_grid = Grid(geometry.hcal_cell, geometry.calorimeter_eta_max)
        use_pileup = params.effects.pileup and params.pileup is not None and params.pileup.mu > 0
        self.pool = PileupPool(params.pileup.pool) if use_pileup else None

    def __call__(self, batch: TruthBatch, seed: int) -> ak.Array:
        rng = np.random.default_rng(seed)
        p, effects = self.params, self.params.effects
        geometry, calo, flow = p.geometry, p.calorimetry, p.particle_flow
        n_events = len(batch)
        source = batch.final_state if batch.final_state is not None else batch.particles
        particles = Particles.from_awkward(source)
        primary_z = _primary_z(particles, n_events)
        if self.pool is not None:
            pileup, _ = self.pool.overlay(n_events, p.pileup.mu, p.pileup.sigma_z, p.pileup.sigma_xy, rng)
            particles = Particles.concatenate([particles, pileup])
        if effects.brem:
            particles = _radiate(particles, calo.brem_fraction_max, geometry.tracker_eta_max, rng)

        decays = decays_in_flight(particles, geometry, effects, rng)
        impact = propagate(particles, geometry, effects)
        tracks = reconstruct_tracks(particles, impact, decays, primary_z, n_events, geometry, p.tracking, flow,
                                    effects, rng)

        hits = np.flatnonzero(impact.reaches)
        is_muon = (particles.cls[hits] == MUON) | decays.decayed[hits]
        energy = np.where(decays.decayed[hits], decays.muon_fraction[hits], 1.0) * particles.e[hits]
        ecal_deposits, hcal_deposits = particle_deposits(
            particles.cls[hits], particles.event[hits], energy, impact.ecal_eta[hits], impact.ecal_phi[hits],
            impact.hcal_eta[hits], impact.hcal_phi[hits], is_muon, calo, effects, rng)
        ecal_cells = deposit_cells(ecal_deposits, self.ecal_grid, effects.shower_spread)
        hcal_cells = deposit_cells(hcal_deposits, self.hcal_grid, effects.shower_spread)
        if effects.noise:
            ecal_cells = add_noise(ecal_cells, self.ecal_grid, calo.ecal_noise, calo.ecal_threshold, n_events, rng)
            hcal_cells = add_noise(hcal_cells, self.hcal_grid, calo.hcal_noise, calo.hcal_threshold, n_events, rng)
        ecal = cluster(ecal_cells, self.ecal_grid, calo.ecal_threshold, calo.ecal_seed, calo.ecal_share_width,
                       effects.cluster_splitting)
        hcal = cluster(hcal_cells, self.hcal_grid, calo.hcal_threshold, calo.hcal_seed, calo.hcal_share_width,
                       effects.cluster_splitting)

        # tracks are linked where their particle enters the calorimeters; fakes along their own direction
        real = tracks.particle >= 0
        source_index = np.maximum(tracks.particle, 0)
        arrives = real & impact.reaches[source_index]
        track_ecal = (np.where(arrives, impact.ecal_eta[source_index], np.where(real, np.nan, tracks.eta)),
                      np.where(arrives, impact.ecal_phi[source_index], tracks.phi))
        track_hcal = (np.where(arrives, impact.hcal_eta[source_index], np.where(real, np.nan, tracks.eta)),
                      np.where(arrives, impact.hcal_phi[source_index], tracks.phi))
        candidates = reconstruct(tracks, track_ecal, track_hcal, ecal, hcal, flow, calo, primary_z, rng)

        keep = (candidates.pt >= self.output.pt_min) & (np.abs(candidates.eta) <= self.output.eta_max)
        pfcs = make_pfcs(np.bincount(candidates.event[keep], minlength=n_events), *(
            getattr(candidates, name)[keep][np.argsort(candidates.event[keep], kind="stable")]
            for name in ("pt", "eta", "phi", "charge", "cls", "x", "y", "z")))
        return sort_by_pt(pfcs)


def _primary_z(particles: Particles, n_events: int) -> np.ndarray:
    """z of each event's hard-scatter vertex: the median production z of its charged particles."""
    result = np.zeros(n_events)
    charged = particles.charge != 0
    order = np.lexsort((particles.z[charged], particles.event[charged]))
    event, z = particles.event[charged][order], particles.z[charged][order]
    counts = np.bincount(event, minlength=n_events)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = counts > 0
    result[has] = z[starts[has] + counts[has] // 2]
    return result


def _radiate(particles: Particles, fraction_max: float, eta_max: float, rng: np.random.Generator) -> Particles:
    """Electrons in the tracker lose a uniform fraction (up to ``fraction_max``) of their momentum to one
    bremsstrahlung photon emitted along their initial direction."""
    electrons = np.flatnonzero((particles.cls == ELECTRON) & (np.abs(particles.eta) <= eta_max))
    fraction = rng.uniform(0.0, fraction_max, len(electrons))
    photons = particles.take(electrons)
    for name in ("px", "py", "pz", "e"):
        getattr(photons, name)[:] *= fraction
        getattr(particles, name)[electrons] *= 1 - fraction
    photons.pid[:] = 22
    photons.charge[:] = 0
    photons.cls[:] = PHOTON
    photons.mass[:] = 0.0
    return Particles.concatenate([particles, photons])
