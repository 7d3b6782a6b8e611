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

Every candidate records whether it comes from a pileup interaction: a track's particle does; a neutral
candidate's clusters (its block's, for the neutral excess) hold more pileup energy than hard-scatter energy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from parnassus.pdg import CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON
from parnassus.refsim.calorimeter import Clusters
from parnassus.refsim.config import Calorimetry, ParticleFlow
from parnassus.refsim.particles import delta_phi
from parnassus.refsim.tracker import Tracks
from parnassus.streams import EventRandom

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
    is_pu: np.ndarray | None = None  # from a pileup interaction (see module docstring)

    def __post_init__(self) -> None:
        if self.is_pu is None:
            self.is_pu = np.zeros(len(self.pt), dtype=bool)


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
                ecal: Clusters, hcal: Clusters, flow: ParticleFlow, calo: Calorimetry, primary_vertex: np.ndarray,
                rng: EventRandom, road: tuple[np.ndarray, np.ndarray] | None = None) -> Candidates:
    """Particle-flow candidates of a batch (see module docstring); ``primary_vertex`` is (x, y, z) per event."""
    # empty inputs come with float event columns; blocks and vertices are looked up by event
    tracks = replace(tracks, event=tracks.event.astype(np.int64))
    ecal, hcal = (replace(c, event=c.event.astype(np.int64)) for c in (ecal, hcal))
    # identified conversions: both legs tracked and recognised as a pair; the legs are then not candidates and
    # the photon comes from the ECAL clusters
    keep = ~_identified_conversions(tracks, flow.conversion_identification, rng)
    tracks = tracks.take(keep)
    track_ecal = tuple(a[keep] for a in track_ecal)
    road = track_ecal if road is None else tuple(a[keep] for a in road)
    track_hcal = tuple(a[keep] for a in track_hcal)
    n_tracks = len(tracks)
    ecal_link = nearest_cluster(tracks.event, *track_ecal, ecal, flow.ecal_link_distance)
    hcal_link = nearest_cluster(tracks.event, *track_hcal, hcal, flow.hcal_link_distance)

    # electrons: the ECAL clusters in the brem road (the supercluster) against the momentum at the vertex
    momentum = tracks.p
    has_ecal = ecal_link >= 0
    road_track, road_cluster = _brem_road(tracks, road, ecal, flow)
    e_supercluster = np.bincount(road_track, weights=ecal.energy[road_cluster], minlength=n_tracks)
    e_hcal = _at(hcal.energy, hcal_link, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        e_over_p = e_supercluster / momentum
        h_over_e = np.where(e_supercluster > 0, e_hcal / e_supercluster, np.inf)
    electron_like = has_ecal & ~tracks.muon & (tracks.pt >= flow.electron_pt_min)
    electron_like &= (e_over_p >= flow.electron_e_over_p_min) & (e_over_p <= flow.electron_e_over_p_max)
    electron_like &= h_over_e <= flow.electron_h_over_e_max
    accept = np.where(tracks.true_electron, flow.electron_id_efficiency(tracks.pt, tracks.eta, momentum),
                      flow.electron_fake_probability)
    electron = electron_like & (rng.random(tracks.event) < accept)
    ecal_used = np.zeros(len(ecal), dtype=bool)
    ecal_used[road_cluster[electron[road_track]]] = True

    # blocks: tracks (not electrons) and the clusters they link
    hadronic = ~electron
    n_ecal, n_hcal = len(ecal), len(hcal)
    n_nodes = n_tracks + n_ecal + n_hcal
    link_e = hadronic & has_ecal & ~_at(ecal_used, ecal_link, True)
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
    block_pileup = np.bincount(ecal_block[ecal_free], weights=ecal.pileup[ecal_free], minlength=n_blocks) + \
        np.bincount(hcal_block, weights=hcal.pileup, minlength=n_blocks)
    block_is_pu = block_pileup > 0.5 * (block_ecal + block_hcal)
    muon_tracks = hadronic & tracks.muon
    mip = np.bincount(track_block[muon_tracks], minlength=n_blocks) * flow.muon_calo_energy
    charged = hadronic & ~tracks.muon
    expected = np.bincount(track_block[charged], weights=momentum[charged], minlength=n_blocks)
    raw = np.maximum(block_ecal + block_hcal - mip, 0.0)
    # formulas in (pt, eta, energy) at the block's direction: of its clusters for the calorimeter energy,
    # of its tracks for the expected one
    cluster_eta, _ = _weighted_direction(np.concatenate([ecal_block[ecal_free], hcal_block]),
                                         np.concatenate([ecal.energy[ecal_free], hcal.energy]),
                                         np.concatenate([ecal.eta[ecal_free], hcal.eta]),
                                         np.concatenate([ecal.phi[ecal_free], hcal.phi]), n_blocks)
    calibrated = raw * flow.hadron_calibration(raw / np.cosh(cluster_eta), cluster_eta, raw)
    track_eta = np.bincount(track_block[charged], weights=momentum[charged] * tracks.eta[charged],
                            minlength=n_blocks) / np.maximum(expected, 1e-300)
    sigma = expected * calo.hadron_resolution(expected / np.cosh(track_eta), track_eta, expected)
    sigma = sigma + flow.neutral_energy_min
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
    lone_energy, lone_eta = hcal.energy[lone_hcal], hcal.eta[lone_hcal]
    lone_hcal_energy = lone_energy * flow.hadron_calibration(lone_energy / np.cosh(lone_eta), lone_eta, lone_energy)

    # photon energies: the clusters' (or their share of the excess), calibrated for the energy lost under thresholds
    photon_energy_out = ecal.energy[photon] * scale[ecal_block[photon]]
    photon_energy_out = photon_energy_out * flow.photon_calibration(
        photon_energy_out / np.cosh(ecal.eta[photon]), ecal.eta[photon], photon_energy_out)
    track_cls = np.where(electron, ELECTRON, np.where(tracks.muon, MUON, CHARGED_HADRON))
    mostly_pileup = (ecal.pileup > 0.5 * ecal.energy, hcal.pileup > 0.5 * hcal.energy)
    parts = [
        (tracks.event, tracks.pt, tracks.eta, tracks.phi, tracks.charge, track_cls, tracks.x, tracks.y, tracks.z,
         tracks.pileup),
        _neutral(ecal.event[photon], photon_energy_out, ecal.eta[photon], ecal.phi[photon], PHOTON, primary_vertex,
                 mostly_pileup[0][photon]),
        _neutral(event_of_block[hadron_energy > 0], hadron_energy[hadron_energy > 0],
                 hcal_eta[hadron_energy > 0], hcal_phi[hadron_energy > 0], NEUTRAL_HADRON, primary_vertex,
                 block_is_pu[hadron_energy > 0]),
        _neutral(hcal.event[lone_hcal], lone_hcal_energy, hcal.eta[lone_hcal], hcal.phi[lone_hcal], NEUTRAL_HADRON,
                 primary_vertex, mostly_pileup[1][lone_hcal]),
    ]
    columns = [np.concatenate([part[k] for part in parts]) for k in range(10)]
    return Candidates(*columns)


def _identified_conversions(tracks: Tracks, identification: float, rng: EventRandom) -> np.ndarray:
    """Tracks that are legs of a conversion whose two legs were both tracked and that the pair finder identifies."""
    legs = np.flatnonzero(tracks.conversion)
    _, first, inverse, counts = np.unique(tracks.group[legs], return_index=True, return_inverse=True,
                                          return_counts=True)
    found = (counts == 2) & (rng.random(tracks.event[legs[first]]) < identification)
    result = np.zeros(len(tracks), dtype=bool)
    result[legs[found[inverse]]] = True
    return result


def _brem_road(tracks: Tracks, road: tuple[np.ndarray, np.ndarray], ecal: Clusters, flow: ParticleFlow
               ) -> tuple[np.ndarray, np.ndarray]:
    """(track, cluster) pairs of the ECAL clusters in each track's brem road: within ``electron_road_eta`` of
    the road's eta, and in phi from the track's direction at the vertex to the road's end (where the
    electron itself lands), widened by ``electron_road_margin`` on both sides. ``road`` is (eta, phi end)."""
    impact_eta, impact_phi = road
    seeds = np.flatnonzero(np.isfinite(impact_eta) & (tracks.pt >= flow.electron_pt_min))
    if len(seeds) == 0 or len(ecal) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    bend = delta_phi(impact_phi[seeds], tracks.phi[seeds])
    middle = tracks.phi[seeds] + bend / 2
    reach = np.abs(bend) / 2 + flow.electron_road_margin + flow.electron_road_eta
    copies = np.concatenate([ecal.phi, ecal.phi + 2 * np.pi, ecal.phi - 2 * np.pi])
    tree = cKDTree(np.column_stack([np.tile(ecal.eta + ecal.event * _EVENT_SPACING, 3), copies]))
    found = tree.query_ball_point(np.column_stack([impact_eta[seeds] + tracks.event[seeds] * _EVENT_SPACING,
                                                   delta_phi(middle, 0.0)]), reach)
    counts = np.array([len(f) for f in found])
    track = np.repeat(seeds, counts)
    cluster = np.concatenate([np.asarray(f, dtype=np.int64) for f in found]) % len(ecal)
    along = delta_phi(ecal.phi[cluster], tracks.phi[track])
    bend = np.repeat(bend, counts)
    margin = flow.electron_road_margin
    inside = (np.abs(ecal.eta[cluster] - impact_eta[track]) <= flow.electron_road_eta)
    inside &= (along >= np.minimum(bend, 0) - margin) & (along <= np.maximum(bend, 0) + margin)
    track, cluster = track[inside], cluster[inside]
    unique = np.unique(track * len(ecal) + cluster)  # a cluster found through two phi copies counts once
    return unique // len(ecal), unique % len(ecal)


def _neutral(event: np.ndarray, energy: np.ndarray, eta: np.ndarray, phi: np.ndarray, cls: int,
             primary_vertex: np.ndarray, is_pu: np.ndarray) -> tuple:
    """Columns of neutral candidates, placed at their event's primary vertex (the Delphes convention)."""
    n = len(energy)
    x, y, z = primary_vertex[event].T
    return (event, energy / np.cosh(eta), eta, phi, np.zeros(n, dtype=np.int64), np.full(n, cls), x, y, z, is_pu)


def _at(values: np.ndarray, link: np.ndarray, default: float | bool) -> np.ndarray:
    """``values[link]`` where ``link`` >= 0, else ``default`` (also when ``values`` is empty)."""
    result = np.full(len(link), default, dtype=values.dtype)
    found = link >= 0
    result[found] = values[link[found]]
    return result


def _weighted_direction(block: np.ndarray, energy: np.ndarray, eta: np.ndarray, phi: np.ndarray, n_blocks: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Energy-weighted eta and (circular) phi of the clusters of each block."""
    total = np.maximum(np.bincount(block, weights=energy, minlength=n_blocks), 1e-300)
    mean_eta = np.bincount(block, weights=energy * eta, minlength=n_blocks) / total
    mean_phi = np.arctan2(np.bincount(block, weights=energy * np.sin(phi), minlength=n_blocks),
                          np.bincount(block, weights=energy * np.cos(phi), minlength=n_blocks))
    return mean_eta, mean_phi
