"""Particle-flow reconstruction of the reference simulation: tracks + clusters → candidates.

1. Each track is linked to the nearest ECAL and HCAL cluster around its calorimeter entry point.
2. Electrons: a track whose ECAL cluster has E/p in a window and little HCAL energy behind it (true
   electrons with an identification efficiency; other tracks with a small fake probability). The
   cluster is used up.
3. Tracks and clusters connected by links form blocks (connected components). In a block, the
   calibrated calorimeter energy (muons' expected MIP deposits removed) is compared with the sum of
   the track momenta; a significant excess becomes a photon (up to the block's ECAL energy) and a
   neutral hadron (the rest). Clusters without any track become photons (ECAL) or neutral hadrons
   (HCAL, calibrated).
4. Tracks become muons (muon-system tag), electrons, or charged hadrons, with the track's momentum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from parnassus.pdg import CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON
from parnassus.refsim.calorimeter import Clusters
from parnassus.refsim.config import Calorimetry, ParticleFlow
from parnassus.refsim.tracker import Tracks

_EVENT_SPACING = 100.0  # events are placed this far apart in eta so one tree serves the whole batch


@dataclass
class Candidates:
    """Reconstructed particle-flow candidates (flat)."""

    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    charge: np.ndarray
    cls: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray


def nearest_cluster(event: np.ndarray, eta: np.ndarray, phi: np.ndarray, clusters: Clusters, distance: float
                    ) -> np.ndarray:
    """Index of the nearest cluster of the same event within ``distance`` in eta-phi, -1 if none."""
    result = np.full(len(event), -1)
    valid = np.isfinite(eta)
    if len(clusters) == 0 or not valid.any():
        return result
    # copies shifted by +-2 pi make the phi wrap-around seamless
    copies = np.concatenate([clusters.phi, clusters.phi + 2 * np.pi, clusters.phi - 2 * np.pi])
    points = np.column_stack([np.tile(clusters.eta + clusters.event * _EVENT_SPACING, 3), copies])
    tree = cKDTree(points)
    query = np.column_stack([eta[valid] + event[valid] * _EVENT_SPACING, phi[valid]])
    dist, index = tree.query(query, k=1, distance_upper_bound=distance)
    found = np.isfinite(dist)
    result[np.flatnonzero(valid)[found]] = index[found] % len(clusters)
    return result


def reconstruct(tracks: Tracks, track_ecal: tuple[np.ndarray, np.ndarray], track_hcal: tuple[np.ndarray, np.ndarray],
                ecal: Clusters, hcal: Clusters, flow: ParticleFlow, calo: Calorimetry, primary_z: np.ndarray,
                rng: np.random.Generator) -> Candidates:
    """Particle-flow candidates of a batch (see module docstring)."""
    n_tracks = len(tracks)
    ecal_link = nearest_cluster(tracks.event, *track_ecal, ecal, flow.ecal_link_distance)
    hcal_link = nearest_cluster(tracks.event, *track_hcal, hcal, flow.hcal_link_distance)

    # electrons
    momentum = tracks.p
    has_ecal = ecal_link >= 0
    e_ecal = np.where(has_ecal, ecal.energy[np.maximum(ecal_link, 0)], 0.0)
    e_hcal = np.where(hcal_link >= 0, hcal.energy[np.maximum(hcal_link, 0)], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        e_over_p = e_ecal / momentum
        h_over_e = np.where(e_ecal > 0, e_hcal / e_ecal, np.inf)
    electron_like = has_ecal & ~tracks.muon & (tracks.pt >= flow.electron_pt_min)
    electron_like &= (e_over_p >= flow.electron_e_over_p_min) & (e_over_p <= flow.electron_e_over_p_max)
    electron_like &= h_over_e <= flow.electron_h_over_e_max
    accept = np.where(tracks.true_electron, flow.electron_id_efficiency(tracks.pt, tracks.eta, momentum),
                      flow.electron_fake_probability)
    electron = electron_like & (rng.random(n_tracks) < accept)
    ecal_used = np.zeros(len(ecal), dtype=bool)
    ecal_used[ecal_link[electron]] = True

    # blocks: tracks (not electrons) and the clusters they link
    hadronic = ~electron
    n_ecal, n_hcal = len(ecal), len(hcal)
    n_nodes = n_tracks + n_ecal + n_hcal
    link_e = hadronic & has_ecal & ~ecal_used[np.maximum(ecal_link, 0)]
    link_h = hadronic & (hcal_link >= 0)
    rows = np.concatenate([np.flatnonzero(link_e), np.flatnonzero(link_h)])
    cols = np.concatenate([n_tracks + ecal_link[link_e], n_tracks + n_ecal + hcal_link[link_h]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_nodes, n_nodes))
    _, block = connected_components(graph, directed=False)
    track_block = block[:n_tracks]
    ecal_block = block[n_tracks:n_tracks + n_ecal]
    hcal_block = block[n_tracks + n_ecal:]
    n_blocks = block.max() + 1 if n_nodes else 0

    tracks_in_block = np.bincount(track_block[hadronic], minlength=n_blocks)
    ecal_free = ~ecal_used
    block_ecal = np.bincount(ecal_block[ecal_free], weights=ecal.energy[ecal_free], minlength=n_blocks)
    block_hcal = np.bincount(hcal_block, weights=hcal.energy, minlength=n_blocks)
    muon_tracks = hadronic & tracks.muon
    mip = np.bincount(track_block[muon_tracks], minlength=n_blocks) * (calo.mip_ecal + calo.mip_hcal)
    expected = np.bincount(track_block[hadronic & ~tracks.muon], weights=momentum[hadronic & ~tracks.muon],
                           minlength=n_blocks)
    raw = np.maximum(block_ecal + block_hcal - mip, 0.0)
    calibrated = raw * flow.hadron_calibration(raw, np.zeros_like(raw), raw)
    sigma = expected * calo.hadron_resolution(expected, np.zeros_like(expected), expected) + flow.neutral_energy_min
    excess = calibrated - expected
    neutral_block = (tracks_in_block > 0) & (excess > flow.neutral_excess_significance * sigma)
    photon_energy = np.where(neutral_block, np.minimum(excess, block_ecal), 0.0)
    hadron_energy = np.where(neutral_block, excess - photon_energy, 0.0)

    event_of_block = np.zeros(n_blocks, dtype=np.int64)
    event_of_block[ecal_block] = ecal.event
    event_of_block[hcal_block] = hcal.event
    event_of_block[track_block] = tracks.event
    ecal_eta, ecal_phi = _weighted_direction(ecal_block[ecal_free], ecal.energy[ecal_free], ecal.eta[ecal_free],
                                             ecal.phi[ecal_free], n_blocks)
    hcal_eta, hcal_phi = _weighted_direction(hcal_block, hcal.energy, hcal.eta, hcal.phi, n_blocks)
    hcal_eta = np.where(block_hcal > 0, hcal_eta, ecal_eta)
    hcal_phi = np.where(block_hcal > 0, hcal_phi, ecal_phi)

    # every free ECAL cluster gives a photon: all its energy without tracks, its share of the excess with them
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(tracks_in_block > 0, photon_energy / block_ecal, 1.0)
    photon = ecal_free & (scale[ecal_block] > 0)
    lone_hcal = tracks_in_block[hcal_block] == 0
    lone_hcal_energy = hcal.energy[lone_hcal] * flow.hadron_calibration(hcal.energy[lone_hcal],
                                                                          hcal.eta[lone_hcal], hcal.energy[lone_hcal])

    track_cls = np.where(electron, ELECTRON, np.where(tracks.muon, MUON, CHARGED_HADRON))
    parts = [
        (tracks.event, tracks.pt, tracks.eta, tracks.phi, tracks.charge, track_cls, tracks.x, tracks.y, tracks.z),
        _neutral(ecal.event[photon], ecal.energy[photon] * scale[ecal_block[photon]], ecal.eta[photon],
                 ecal.phi[photon], PHOTON, primary_z),
        _neutral(event_of_block[hadron_energy > 0], hadron_energy[hadron_energy > 0],
                 hcal_eta[hadron_energy > 0], hcal_phi[hadron_energy > 0], NEUTRAL_HADRON, primary_z),
        _neutral(hcal.event[lone_hcal], lone_hcal_energy, hcal.eta[lone_hcal], hcal.phi[lone_hcal], NEUTRAL_HADRON,
                 primary_z),
    ]
    columns = [np.concatenate([part[k] for part in parts]) for k in range(9)]
    return Candidates(*columns)


def _neutral(event, energy, eta, phi, cls, primary_z) -> tuple:
    """Columns of neutral candidates, placed at their event's primary vertex."""
    n = len(energy)
    return (event, energy / np.cosh(eta), eta, phi, np.zeros(n, dtype=np.int64), np.full(n, cls),
            np.zeros(n), np.zeros(n), primary_z[event])


def _weighted_direction(block: np.ndarray, energy: np.ndarray, eta: np.ndarray, phi: np.ndarray, n_blocks: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Energy-weighted eta and (circular) phi of the clusters of each block."""
    total = np.maximum(np.bincount(block, weights=energy, minlength=n_blocks), 1e-300)
    mean_eta = np.bincount(block, weights=energy * eta, minlength=n_blocks) / total
    mean_phi = np.arctan2(np.bincount(block, weights=energy * np.sin(phi), minlength=n_blocks),
                          np.bincount(block, weights=energy * np.cos(phi), minlength=n_blocks))
    return mean_eta, mean_phi
