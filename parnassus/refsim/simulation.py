"""The reference simulation as a generator: truth batch → particle-flow candidates."""

from __future__ import annotations

import awkward as ak
import numpy as np

from parnassus.card import OutputCuts
from parnassus.events import TruthBatch, make_pfcs, primary_vertices, sort_by_pt
from parnassus.pdg import MUON
from parnassus.refsim.calorimeter import Deposits, Grid, add_noise, cluster, deposit_cells, particle_deposits
from parnassus.refsim.config import RefSimParameters
from parnassus.refsim.interactions import convert_photons, decay_long_lived, radiate
from parnassus.refsim.particleflow import reconstruct
from parnassus.refsim.particles import Particles, delta_phi
from parnassus.refsim.pileup import load_pool
from parnassus.refsim.tracker import decays_in_flight, propagate, reconstruct_tracks, straight_eta
from parnassus.streams import EventRandom


class ReferenceSimulation:
    """Truth batch → reconstructed particle-flow candidates (see module docstring)."""

    def __init__(self, params: RefSimParameters, output: OutputCuts):
        self.params = params
        self.output = output
        geometry = params.geometry
        self.ecal_grid = Grid(geometry.ecal_cell, geometry.calorimeter_eta_max)
        self.hcal_grid = Grid(geometry.hcal_cell, geometry.calorimeter_eta_max)
        use_pileup = params.effects.pileup and params.pileup is not None and params.pileup.mu > 0
        self.pool = load_pool(params.pileup) if use_pileup else None  # made on first use if missing

    def __call__(self, batch: TruthBatch, seed: int) -> ak.Array:
        rng = EventRandom(seed, batch.index)
        p, effects = self.params, self.params.effects
        geometry, calo, flow = p.geometry, p.calorimetry, p.particle_flow
        n_events = len(batch)
        source = batch.final_state if batch.final_state is not None else batch.particles
        particles = Particles.from_awkward(source)
        # the hard-scatter vertex, before pileup: the median production point of the event's charged particles
        vertex = primary_vertices(particles.event, particles.charge, particles.x, particles.y, particles.z,
                                  n_events)
        if self.pool is not None:
            pileup, _ = self.pool.overlay(n_events, p.pileup.mu, p.pileup.sigma_z, p.pileup.sigma_xy, rng)
            particles = Particles.concatenate([particles, pileup])
        interactions = p.interactions
        if effects.long_lived_decays:
            particles = decay_long_lived(particles, interactions.decays, geometry, rng)
        if effects.brem:
            particles = radiate(particles, interactions.radiation_lengths, geometry, rng)
        if effects.conversions:
            particles = convert_photons(particles, interactions.radiation_lengths,
                                        interactions.material_inner_radius, geometry, rng)

        decays = decays_in_flight(particles, geometry, effects, rng)
        impact = propagate(particles, geometry, effects)
        tracks = reconstruct_tracks(particles, impact, decays, vertex[:, 2], n_events, geometry, p.tracking, flow,
                                    effects, rng)

        hits = np.flatnonzero(impact.reaches)
        is_muon = (particles.cls[hits] == MUON) | decays.decayed[hits]
        energy = np.where(decays.decayed[hits], decays.muon_fraction[hits], 1.0) * particles.e[hits]
        ecal_deposits, hcal_deposits = particle_deposits(
            particles.cls[hits], particles.event[hits], energy, impact.ecal_eta[hits], impact.ecal_phi[hits],
            impact.hcal_eta[hits], impact.hcal_phi[hits], is_muon, calo, effects, rng,
            interactions, geometry.ecal_cell, pileup=particles.pileup[hits])
        if self.pool is not None and effects.out_of_time_pileup:
            ecal_deposits, hcal_deposits = self._out_of_time(ecal_deposits, hcal_deposits, n_events, rng)
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
        # the brem road of a track: photons fly straight from the vertex at the track's eta; in phi the road ends
        # where the track lands, or for a track that curls up before the ECAL, at the card's widest road
        road_eta = straight_eta(tracks.eta, tracks.phi, tracks.x, tracks.y, tracks.z, geometry.ecal_radius,
                                geometry.ecal_half_length)
        road_phi = np.where(arrives, track_ecal[1],
                            delta_phi(tracks.phi - np.sign(tracks.charge) * flow.electron_road_phi, 0.0))
        candidates = reconstruct(tracks, track_ecal, track_hcal, ecal, hcal, flow, calo, vertex, rng,
                                 road=(road_eta, road_phi))

        keep = (candidates.pt >= self.output.pt_min) & (np.abs(candidates.eta) <= self.output.eta_max)
        order = np.argsort(candidates.event[keep], kind="stable")
        pfcs = make_pfcs(np.bincount(candidates.event[keep], minlength=n_events), *(
            getattr(candidates, name)[keep][order] for name in ("pt", "eta", "phi", "charge", "cls", "x", "y", "z")),
            is_pu=candidates.is_pu[keep][order])
        return sort_by_pt(pfcs)

    def _out_of_time(self, ecal: Deposits, hcal: Deposits, n_events: int, rng: EventRandom
                     ) -> tuple[Deposits, Deposits]:
        """Add the calorimeter deposits of the neighbouring bunch crossings' interactions, scaled by the
        fractions of their energy that the in-time reconstruction picks up."""
        p = self.params
        pileup = p.pileup
        particles, _ = self.pool.overlay(n_events, 2 * pileup.mu, pileup.sigma_z, pileup.sigma_xy, rng)
        impact = propagate(particles, p.geometry, p.effects)
        hits = np.flatnonzero(impact.reaches)
        ecal_oot, hcal_oot = particle_deposits(
            particles.cls[hits], particles.event[hits], particles.e[hits], impact.ecal_eta[hits],
            impact.ecal_phi[hits], impact.hcal_eta[hits], impact.hcal_phi[hits], particles.cls[hits] == MUON,
            p.calorimetry, p.effects, rng, p.interactions, p.geometry.ecal_cell, pileup=particles.pileup[hits])
        ecal_oot.energy = ecal_oot.energy * pileup.out_of_time_ecal
        hcal_oot.energy = hcal_oot.energy * pileup.out_of_time_hcal
        return Deposits.concatenate([ecal, ecal_oot]), Deposits.concatenate([hcal, hcal_oot])
