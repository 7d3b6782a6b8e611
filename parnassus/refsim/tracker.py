"""Solenoid propagation, decays in flight and track reconstruction of the reference simulation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parnassus.pdg import ELECTRON, MUON
from parnassus.refsim.config import Effects, Geometry, ParticleFlow, Tracking
from parnassus.refsim.particles import CONVERSION, Particles, delta_phi
from parnassus.streams import EventRandom

C_LIGHT = 0.299792458  # GeV / (T m) per unit charge: p_T = 0.3 B R
MUON_MASS = 0.1056583755
# c*tau (mm) and branching ratio to mu nu of the long-lived charged hadrons (PDG)
DECAYS_TO_MUON = {211: (7804.5, 0.99988, 0.13957039), 321: (3711.0, 0.6356, 0.493677)}


@dataclass
class Impact:
    """Where each particle enters the ECAL and HCAL (eta, phi of the hit position), if it does."""

    reaches: np.ndarray
    ecal_eta: np.ndarray
    ecal_phi: np.ndarray
    hcal_eta: np.ndarray
    hcal_phi: np.ndarray


def transverse_path(x0: np.ndarray, y0: np.ndarray, phi: np.ndarray, radius: float) -> np.ndarray:
    """Transverse length of the straight line from (x0, y0) in direction ``phi`` to the circle of ``radius``
    around the beam line (forwards; 0 where the line never reaches it)."""
    b = x0 * np.cos(phi) + y0 * np.sin(phi)
    return -b + np.sqrt(np.maximum(b**2 - (x0**2 + y0**2 - radius**2), 0.0))


def _surface_hit(p: Particles, radius: float, half_length: float, geometry: Geometry, effects: Effects
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reaches, eta, phi) of the point where each particle crosses a cylinder (barrel + endcap discs).

    Particles start at their production point (decay products and conversion legs far from the beam line
    too). Charged particles follow a helix in the solenoid field (radius R = pT / (0.3 B |q|), positive
    charges turn clockwise seen from +z): the crossing with the barrel is where the helix's circle meets the
    barrel's; a particle whose circle never reaches the barrel, or that turns more than the card's
    ``looper_max_turn`` before it reaches the endcap, curls up and never arrives (a looper).
    """
    pt, eta, phi, z0 = p.pt, p.eta, p.phi, p.z
    x0, y0 = p.x, p.y
    sinh = np.sinh(eta)
    ux, uy = np.cos(phi), np.sin(phi)
    bent = (p.charge != 0) & effects.bending
    turn_sign = np.where(bent, np.sign(p.charge), 0.0)  # +1: clockwise
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rho = np.where(bent, 1000.0 * pt / (C_LIGHT * geometry.magnetic_field * np.maximum(np.abs(p.charge), 1)),
                       np.inf)
        straight_path = transverse_path(x0, y0, phi, radius)
        # helix: centre of its circle, intersections with the barrel circle
        cx, cy = x0 + turn_sign * rho * uy, y0 - turn_sign * rho * ux
        cx, cy = np.where(bent, cx, 0.0), np.where(bent, cy, 0.0)
        d = np.hypot(cx, cy)
        a = (radius**2 - rho**2 + d**2) / (2 * d)
        h2 = radius**2 - a**2
        meets = bent & (h2 >= 0) & (d > 0)
        h = np.sqrt(np.maximum(h2, 0.0))
        ex, ey = cx / np.where(d > 0, d, 1.0), cy / np.where(d > 0, d, 1.0)
        start_angle = np.arctan2(y0 - cy, x0 - cx)
        best = np.full(len(pt), np.inf)
        for side in (1.0, -1.0):
            hx, hy = a * ex - side * h * ey, a * ey + side * h * ex
            # turning angle from the start to this point, in the direction of motion
            angle = np.arctan2(hy - cy, hx - cx)
            best = np.minimum(best, np.mod(turn_sign * (start_angle - angle), 2 * np.pi))
        helix_path = np.where(meets, rho * best, np.inf)
        path_barrel = np.where(bent, helix_path, straight_path)
        z_barrel = z0 + path_barrel * sinh
        barrel = np.isfinite(path_barrel) & (np.abs(z_barrel) <= half_length)
        z_end = np.where(eta >= 0, half_length, -half_length)
        path_end = np.where(sinh != 0, (z_end - z0) / sinh, np.inf)
        turn_end = np.where(bent, path_end / rho, 0.0)
        endcap = ~barrel & (path_end > 0) & np.isfinite(path_end) & (turn_end <= geometry.looper_max_turn)
        path = np.where(barrel, path_barrel, path_end)
        turn = np.where(bent, path / rho, 0.0)
        # position after turning by `turn`: rotate the start around the centre (clockwise for turn_sign > 0)
        angle = start_angle - turn_sign * turn
        hit_x = np.where(bent, cx + rho * np.cos(angle), x0 + path * ux)
        hit_y = np.where(bent, cy + rho * np.sin(angle), y0 + path * uy)
        hit_z = np.where(barrel, z_barrel, z_end)
        hit_eta = np.arcsinh(hit_z / np.maximum(np.hypot(hit_x, hit_y), 1e-9))
        hit_phi = np.arctan2(hit_y, hit_x)
        reaches = barrel | endcap
        if not effects.loopers:  # everything arrives; loopers along their initial direction
            straight_eta = np.arcsinh((z0 + radius * sinh) / radius)
            hit_eta = np.where(reaches, hit_eta, straight_eta)
            hit_phi = np.where(reaches, hit_phi, phi)
            reaches = np.ones_like(reaches)
    return reaches, hit_eta, hit_phi


def straight_eta(eta: np.ndarray, phi: np.ndarray, x0: np.ndarray, y0: np.ndarray, z0: np.ndarray, radius: float,
                 half_length: float) -> np.ndarray:
    """Eta, seen from the beam line, of the point where a straight line from (x0, y0, z0) in the direction
    (eta, phi) crosses a cylinder (barrel or endcap)."""
    sinh = np.sinh(eta)
    z_barrel = z0 + transverse_path(x0, y0, phi, radius) * sinh
    with np.errstate(divide="ignore", invalid="ignore"):
        path_end = (np.sign(eta) * half_length - z0) / sinh
        rho_end = np.hypot(x0 + path_end * np.cos(phi), y0 + path_end * np.sin(phi))
        endcap = np.arcsinh(np.sign(eta) * half_length / np.maximum(rho_end, 1e-9))
    return np.where(np.abs(z_barrel) <= half_length, np.arcsinh(z_barrel / radius), endcap)


def propagate(p: Particles, geometry: Geometry, effects: Effects) -> Impact:
    """Calorimeter entry points of every particle."""
    reaches_e, ecal_eta, ecal_phi = _surface_hit(p, geometry.ecal_radius, geometry.ecal_half_length, geometry,
                                                 effects)
    _, hcal_eta, hcal_phi = _surface_hit(p, geometry.hcal_radius, geometry.hcal_half_length, geometry, effects)
    reaches = reaches_e & (np.abs(ecal_eta) <= geometry.calorimeter_eta_max)
    return Impact(reaches, ecal_eta, ecal_phi, hcal_eta, hcal_phi)


@dataclass
class DecaysInFlight:
    """Charged pions and kaons that decay to a muon inside the tracker."""

    decayed: np.ndarray  # bool per particle
    muon_fraction: np.ndarray  # momentum fraction carried by the muon
    depth: np.ndarray  # decay point as a fraction of the path through the tracker


def decays_in_flight(p: Particles, geometry: Geometry, effects: Effects, rng: EventRandom
                     ) -> DecaysInFlight:
    n = len(p)
    decayed = np.zeros(n, dtype=bool)
    fraction = np.ones(n)
    depth = np.ones(n)
    if not effects.decays_in_flight:
        return DecaysInFlight(decayed, fraction, depth)
    eta, momentum = p.eta, p.p
    path = np.minimum(geometry.tracker_radius * np.cosh(eta),
                      geometry.tracker_half_length * np.cosh(eta) / np.maximum(np.abs(np.sinh(eta)), 1e-9))
    for pid, (ctau, branching, mass) in DECAYS_TO_MUON.items():
        mask = np.abs(p.pid) == pid
        decay_length = ctau * momentum[mask] / mass
        u = rng.random(p.event[mask])
        probability = -np.expm1(-path[mask] / decay_length) * branching
        hit = u < probability
        idx = np.flatnonzero(mask)[hit]
        decayed[idx] = True
        # decay point: exponential truncated to the tracker, as a fraction of the path
        reach = -np.expm1(-path[idx] / decay_length[hit])
        depth[idx] = -decay_length[hit] * np.log1p(-rng.random(p.event[idx]) * reach)
        depth[idx] /= path[idx]
        lowest = (MUON_MASS / mass) ** 2  # two-body decay: muon energy fraction uniform in [(m_mu/m)^2, 1]
        fraction[idx] = lowest + (1 - lowest) * rng.random(p.event[idx])
    return DecaysInFlight(decayed, fraction, depth)


@dataclass
class Tracks:
    """Reconstructed tracks (flat); ``particle`` is the index of the truth particle, -1 for fakes."""

    particle: np.ndarray
    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    charge: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    muon: np.ndarray  # identified by the muon system
    true_electron: np.ndarray
    group: np.ndarray | None = None  # the particle's group (brem, conversion pair), -1 for none and for fakes
    conversion: np.ndarray | None = None  # a leg of a photon conversion
    pileup: np.ndarray | None = None  # the particle comes from a pileup interaction (False for fakes)

    def __post_init__(self) -> None:
        if self.group is None:
            self.group = np.full(len(self.pt), -1, dtype=np.int64)
        if self.conversion is None:
            self.conversion = np.zeros(len(self.pt), dtype=bool)
        if self.pileup is None:
            self.pileup = np.zeros(len(self.pt), dtype=bool)

    @property
    def p(self) -> np.ndarray:
        return self.pt * np.cosh(self.eta)

    def take(self, index: np.ndarray) -> Tracks:
        return Tracks(**{name: getattr(self, name)[index] for name in self.__dataclass_fields__})

    def __len__(self) -> int:
        return len(self.pt)


def _close_pairs(event: np.ndarray, eta: np.ndarray, phi: np.ndarray, distance: float, neighbours: int = 8
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) of tracks of the same event closer than ``distance`` in eta-phi (nearby in eta order)."""
    order = np.lexsort((eta, event))
    first, second = [], []
    for shift in range(1, neighbours + 1):
        a, b = order[:-shift], order[shift:]
        close = (event[a] == event[b]) & (np.abs(eta[a] - eta[b]) < distance)
        close &= np.hypot(eta[a] - eta[b], delta_phi(phi[a], phi[b])) < distance
        first.append(a[close])
        second.append(b[close])
    return np.concatenate(first), np.concatenate(second)


def reconstruct_tracks(p: Particles, impact: Impact, decays: DecaysInFlight, primary_z: np.ndarray,
                       n_events: int, geometry: Geometry, tracking: Tracking, flow: ParticleFlow,
                       effects: Effects, rng: EventRandom) -> Tracks:
    """Efficiency, merging of close tracks, resolution, fakes and muon identification."""
    pt, eta, phi, energy = p.pt, p.eta, p.phi, p.e
    candidate = (p.charge != 0) & (np.abs(eta) <= geometry.tracker_eta_max) & (pt >= tracking.pt_min)
    candidate &= np.hypot(p.x, p.y) <= tracking.production_radius_max
    efficiency = np.where(p.cls == MUON, tracking.muon_efficiency(pt, eta, energy),
                          np.where(p.cls == ELECTRON, tracking.electron_efficiency(pt, eta, energy),
                                   tracking.efficiency(pt, eta, energy)))
    candidate &= rng.random(p.event) < efficiency
    index = np.flatnonzero(candidate)
    if effects.track_merging and len(index):
        i, j = _close_pairs(p.event[index], eta[index], phi[index], tracking.merge_distance)
        softer = np.where(pt[index[i]] < pt[index[j]], i, j)
        lost = softer[rng.random(p.event[index[softer]]) < tracking.merge_probability]
        index = np.delete(index, np.unique(lost))

    # measured momentum: a kinked track from a decay in flight measures a mix of hadron and muon
    true_pt = pt[index] * np.where(decays.decayed[index],
                                   1 - (1 - decays.muon_fraction[index]) * (1 - decays.depth[index]), 1.0)
    # electrons: the Gaussian-sum fit measures the momentum at the vertex, before the brem losses
    electron = p.cls[index] == ELECTRON
    true_pt = np.where(electron, true_pt / np.maximum(1 - p.radiated[index], 1e-3), true_pt)
    # the fit measures the signed curvature q/pT: where the smeared value changes sign, so does the charge
    sigma = np.where(electron, tracking.electron_pt_resolution(true_pt, eta[index], energy[index]),
                     tracking.pt_resolution(true_pt, eta[index], energy[index]))
    track_event = p.event[index]
    curvature = np.sign(p.charge[index]) / true_pt
    curvature = curvature + sigma * np.abs(curvature) * rng.standard_normal(track_event)
    track_charge = np.where(curvature < 0, -1, 1) * np.abs(p.charge[index])
    track_pt = 1.0 / np.maximum(np.abs(curvature), 1e-12)
    angle = tracking.angular_resolution(true_pt, eta[index], energy[index])
    track_eta = eta[index] + angle * rng.standard_normal(track_event)
    track_phi = delta_phi(phi[index] + angle * rng.standard_normal(track_event), 0.0)
    # the track's reference point: its point of closest approach to the beam line (for displaced tracks not
    # their production point; straight-line approximation)
    x, y, z = (getattr(p, axis)[index] for axis in ("x", "y", "z"))
    back = -(x * np.cos(phi[index]) + y * np.sin(phi[index]))
    x, y, z = x + back * np.cos(phi[index]), y + back * np.sin(phi[index]), z + back * np.sinh(eta[index])
    if effects.vertex_resolution:  # the transverse impact parameter is measured across the track
        d0 = tracking.d0_resolution(true_pt, eta[index], energy[index]) * rng.standard_normal(track_event)
        x -= d0 * np.sin(phi[index])
        y += d0 * np.cos(phi[index])
        z += tracking.dz_resolution(true_pt, eta[index], energy[index]) * rng.standard_normal(track_event)

    muon = _muon_identification(p, index, decays, geometry, flow, effects, rng)
    tracks = Tracks(particle=index, event=track_event, pt=track_pt, eta=track_eta, phi=track_phi,
                    charge=track_charge, x=x, y=y, z=z, muon=muon,
                    true_electron=electron, group=p.group[index], conversion=p.origin[index] == CONVERSION,
                    pileup=p.pileup[index])
    if effects.fake_tracks:
        tracks = _add_fakes(tracks, primary_z, n_events, geometry, tracking, rng)
    return tracks


def _muon_identification(p: Particles, index: np.ndarray, decays: DecaysInFlight, geometry: Geometry,
                         flow: ParticleFlow, effects: Effects, rng: EventRandom) -> np.ndarray:
    """Which tracks the muon system tags: true muons, decays in flight, and punch-through hadrons."""
    pt, eta, momentum, energy = p.pt[index], p.eta[index], p.p[index], p.e[index]
    in_acceptance = np.abs(eta) <= geometry.muon_eta_max
    u = rng.random(p.event[index])
    true_muon = (p.cls[index] == MUON) & in_acceptance & (momentum >= flow.muon_p_min)
    true_muon &= u < flow.muon_id_efficiency(pt, eta, energy)
    decayed = decays.decayed[index]
    decay_muon = decayed & in_acceptance & (decays.muon_fraction[index] * momentum >= flow.muon_p_min)
    decay_muon &= u < flow.decay_muon_id_efficiency
    punch = np.zeros(len(index), dtype=bool)
    if effects.punch_through:
        hadron = (p.cls[index] != MUON) & (p.cls[index] != ELECTRON) & ~decayed & in_acceptance
        punch = hadron & (rng.random(p.event[index]) < flow.punch_through_probability(pt, eta, energy))
    return true_muon | decay_muon | punch


def _add_fakes(tracks: Tracks, primary_z: np.ndarray, n_events: int, geometry: Geometry, tracking: Tracking,
               rng: EventRandom) -> Tracks:
    per_event = np.bincount(tracks.event, minlength=n_events)
    n_fake = rng.poisson(np.arange(n_events), tracking.fake_rate * per_event)
    event = np.repeat(np.arange(n_events), n_fake)
    n = len(event)
    fake = Tracks(particle=np.full(n, -1), event=event,
                  pt=tracking.pt_min + rng.exponential(event, tracking.fake_pt_mean),
                  eta=rng.uniform(event, -geometry.tracker_eta_max, geometry.tracker_eta_max),
                  phi=rng.uniform(event, -np.pi, np.pi), charge=rng.sign(event),
                  x=np.zeros(n), y=np.zeros(n), z=primary_z[event] + rng.normal(event, 0, 0.1),
                  muon=np.zeros(n, dtype=bool), true_electron=np.zeros(n, dtype=bool),
                  group=np.full(n, -1, dtype=np.int64), conversion=np.zeros(n, dtype=bool),
                  pileup=np.zeros(n, dtype=bool))
    return Tracks(**{name: np.concatenate([getattr(tracks, name), getattr(fake, name)])
                     for name in tracks.__dataclass_fields__})
