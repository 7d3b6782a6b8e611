"""The parametric ("Delphes-like") generator: each truth particle is smeared independently.

Chain per particle, after the Delphes CMS card (all numbers in the card):
charged particles are tracked with a pT/eta-dependent efficiency and log-normal pT resolution; tracked
electrons and muons keep their class with an identification efficiency (else they become charged
hadrons); photons and untracked electrons deposit in the ECAL, neutral and untracked charged hadrons in
the HCAL, with an absolute energy resolution and the direction moved to a random point of their tower
(Delphes' SmearTowerCenter); untracked muons leave nothing. Candidates below the card's output pT or
outside its |eta| are dropped. Track candidates keep the truth production vertex, calorimeter
candidates sit at the event's primary vertex (as in Delphes and the reference simulation). What it
cannot do — merging of nearby deposits, confusion between classes, fakes, pileup — is what the learned
models are for.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from parnassus.card import OutputCuts, ParametricParameters
from parnassus.events import TruthBatch, make_pfcs, primary_vertices, sort_by_pt
from parnassus.pdg import CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON
from parnassus.streams import EventRandom


def log_normal(rng: EventRandom, event: np.ndarray, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Log-normal samples with the given mean and standard deviation (Delphes' LogNormal)."""
    mean = np.asarray(mean, dtype=np.float64)
    sigma = np.maximum(np.asarray(sigma, dtype=np.float64), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio2 = np.where(mean > 0, (sigma / mean) ** 2, 0.0)
        mu = np.log(np.where(mean > 0, mean, 1.0) / np.sqrt(1.0 + ratio2))
    width = np.sqrt(np.log1p(ratio2))
    return np.where(mean > 0, np.exp(mu + width * rng.standard_normal(event)), 0.0)


def smear_in_cell(rng: EventRandom, event: np.ndarray, value: np.ndarray, cell: float) -> np.ndarray:
    """Move each value to a uniformly random point of the grid cell of size ``cell`` that contains it."""
    return (np.floor(value / cell) + rng.random(event)) * cell


class ParametricGenerator:
    """Per-particle Delphes-CMS-style response; see the module docstring."""

    def __init__(self, params: ParametricParameters, output: OutputCuts):
        self.params = params
        self.output = output

    def __call__(self, batch: TruthBatch, seed: int) -> ak.Array:
        rng = EventRandom(seed, batch.index)
        p = self.params
        truth = ak.flatten(batch.particles)
        event = np.repeat(np.arange(len(batch)), ak.num(batch.particles))
        cls, charge = ak.to_numpy(truth.cls), ak.to_numpy(truth.charge)
        pt, eta, phi, energy = (ak.to_numpy(truth[f]) for f in ("pt", "eta", "phi", "e"))

        # Tracking: efficiency and pT resolution by class.
        efficiency = np.zeros_like(pt)
        resolution = np.zeros_like(pt)
        identified = np.zeros_like(pt)
        for code, name in ((CHARGED_HADRON, "charged_hadron"), (ELECTRON, "electron"), (MUON, "muon")):
            mask = (cls == code) & (charge != 0)
            efficiency[mask] = getattr(p.tracking_efficiency, name)(pt[mask], eta[mask], energy[mask])
            resolution[mask] = getattr(p.track_pt_resolution, name)(pt[mask], eta[mask], energy[mask])
            if code != CHARGED_HADRON:
                identified[mask] = getattr(p.identification_efficiency, name)(pt[mask], eta[mask],
                                                                              energy[mask])
        tracked = (charge != 0) & (rng.random(event) < efficiency)
        track_cls = np.where(rng.random(event) < identified, cls, CHARGED_HADRON)

        # Calorimeters: ECAL for photons and untracked electrons, HCAL for (untracked) hadrons.
        ecal = ((cls == PHOTON) | ((cls == ELECTRON) & ~tracked)) & (np.abs(eta) <= p.ecal_eta_max)
        hcal = ((cls == NEUTRAL_HADRON) | ((cls == CHARGED_HADRON) & ~tracked)) & (
            np.abs(eta) <= p.hcal_eta_max)
        sigma_e = np.zeros_like(pt)
        sigma_e[ecal] = p.ecal_resolution(pt[ecal], eta[ecal], energy[ecal])
        sigma_e[hcal] = p.hcal_resolution(pt[hcal], eta[hcal], energy[hcal])
        cell = np.where(ecal, p.ecal_cell, p.hcal_cell)
        calo_eta = smear_in_cell(rng, event, eta, cell)
        calo_phi = np.mod(smear_in_cell(rng, event, phi + np.pi, cell), 2 * np.pi) - np.pi
        calo_pt = log_normal(rng, event, energy, sigma_e) / np.cosh(calo_eta)
        track_pt = log_normal(rng, event, pt, resolution * pt)

        out_pt = np.where(tracked, track_pt, calo_pt)
        out_eta = np.where(tracked, eta, calo_eta)
        keep = (tracked | ecal | hcal) & (out_pt >= self.output.pt_min) & (
            np.abs(out_eta) <= self.output.eta_max)
        out_cls = np.where(tracked, track_cls, np.where(ecal, PHOTON, NEUTRAL_HADRON))
        production = [ak.to_numpy(truth[f]) for f in ("x", "y", "z")]
        vertex = primary_vertices(event, charge, *production, len(batch))
        position = [np.where(tracked, values, vertex[event, k])[keep] for k, values in enumerate(production)]
        pfcs = make_pfcs(
            counts=np.bincount(event[keep], minlength=len(batch)),
            pt=out_pt[keep], eta=out_eta[keep], phi=np.where(tracked, phi, calo_phi)[keep],
            charge=np.where(tracked, charge, 0)[keep], cls=out_cls[keep],
            x=position[0], y=position[1], z=position[2])
        return sort_by_pt(pfcs)
