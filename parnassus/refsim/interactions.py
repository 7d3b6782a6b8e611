"""What happens to particles between the interaction point and the calorimeters in the reference simulation.

- **Decays of long-lived hadrons** the generator left stable (K0S, Lambda, Sigma, Xi, Omega with
  c*tau > 10 mm, as CMS generator records keep them): each decays at a distance drawn from its
  lifetime (c*tau from the ``particle`` package), if that lies before the ECAL, into one of the card's
  two-body channels, isotropically in its rest frame; neutral pions decay to two photons on the spot.
- **Bremsstrahlung**: electrons crossing t = X/X0 of tracker material keep a fraction z of their energy
  drawn from the Bethe-Heitler distribution (-ln z ~ Gamma(t / ln 2)); the rest goes to one photon emitted
  tangent to the electron's helix at a random depth.
- **Photon conversions**: a photon converts with probability 1 - exp(-7/9 t) at a depth uniform in the
  material, into an e+e- pair sharing its energy as in the Bethe-Heitler high-energy limit
  (dsigma/dx ~ 1 - 4/3 x(1 - x)). The two legs share a ``group`` id so that particle flow can identify
  the pair.

Each step returns new :class:`Particles` (the input is never modified).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from particle import Particle
from particle.particle.particle import InvalidParticle, ParticleNotFound

from parnassus.pdg import ELECTRON, PHOTON, charge_and_class
from parnassus.refsim.config import Decay, Geometry
from parnassus.refsim.particles import BREM, CONVERSION, DECAY, Particles
from parnassus.refsim.tracker import C_LIGHT, transverse_path
from parnassus.streams import EventRandom


@lru_cache(maxsize=256)
def _properties(pid: int) -> tuple[float, float]:
    """(mass in GeV, c*tau in mm) of a PDG id, from the ``particle`` package."""
    particle = Particle.from_pdgid(pid)
    return (particle.mass or 0.0) / 1000.0, float(particle.ctau or 0.0)


def _lookup(pid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mass in GeV, c*tau in mm) arrays for an array of PDG ids, each distinct id looked up once."""
    unique, inverse = np.unique(np.asarray(pid, dtype=np.int64), return_inverse=True)
    table = np.array([_properties(int(i)) for i in unique], dtype=np.float64).reshape(-1, 2)
    return table[inverse, 0], table[inverse, 1]


@lru_cache(maxsize=256)
def _conjugate(pid: int) -> int:
    """The antiparticle's PDG id (the same id for self-conjugate particles)."""
    try:
        Particle.from_pdgid(-pid)
    except (ParticleNotFound, InvalidParticle):
        return pid
    return -pid


def _decay_table(decays: list[Decay]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """pid (both signs) → (cumulative channel fractions, products of shape (channels, 2))."""
    table = {}
    for decay in decays:
        fractions = np.array([c.fraction for c in decay.channels])
        products = np.array([c.products for c in decay.channels], dtype=np.int64)
        cumulative = np.cumsum(fractions) / fractions.sum()
        table[decay.pid] = (cumulative, products)
        anti = _conjugate(decay.pid)
        if anti != decay.pid:
            table[anti] = (cumulative, np.vectorize(lambda i: _conjugate(int(i)))(products))
    return table


def two_body(parent_p: np.ndarray, parent_e: np.ndarray, parent_mass: np.ndarray, m1: np.ndarray,
             m2: np.ndarray, rng: EventRandom, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Momenta (n, 3) of the two products of isotropic two-body decays of parents with momenta ``parent_p``
    (``event``: each parent's event, for the random directions)."""
    mass = parent_mass
    p_star = np.sqrt(np.maximum((mass**2 - (m1 + m2) ** 2) * (mass**2 - (m1 - m2) ** 2), 0.0)) / (2 * mass)
    cos_theta = rng.uniform(event, -1.0, 1.0)
    phi = rng.uniform(event, -np.pi, np.pi)
    sin_theta = np.sqrt(1 - cos_theta**2)
    direction = np.column_stack([sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta])
    beta = parent_p / parent_e[:, None]
    beta2 = np.maximum((beta**2).sum(axis=1), 1e-300)
    gamma = 1.0 / np.sqrt(np.maximum(1 - beta2, 1e-300))
    result = []
    for sign, m in ((1.0, m1), (-1.0, m2)):
        p_rest = sign * p_star[:, None] * direction
        e_rest = np.sqrt(p_star**2 + m**2)
        along = (p_rest * beta).sum(axis=1)
        result.append(p_rest + ((gamma - 1) * along / beta2 + gamma * e_rest)[:, None] * beta)
    return result[0], result[1]


def _distance_to_surface(p: Particles, radius: float, half_length: float) -> np.ndarray:
    """Straight-line distance from each production point to a cylinder (barrel + endcaps)."""
    momentum, pt = np.maximum(p.p, 1e-12), p.pt
    uz = p.pz / momentum
    with np.errstate(divide="ignore", invalid="ignore"):
        barrel = np.where(pt > 0, transverse_path(p.x, p.y, p.phi, radius) * momentum / pt, np.inf)
        endcap = np.where(uz != 0, (np.sign(uz) * half_length - p.z) / uz, np.inf)
    return np.maximum(np.minimum(barrel, np.where(endcap >= 0, endcap, 0.0)), 0.0)


def _with_products(p: Particles, gone: np.ndarray, parts: list[Particles]) -> Particles:
    return Particles.concatenate([p.take(~gone), *parts])


def _new_particles(template: Particles, pid: np.ndarray, momentum: np.ndarray, vertex: tuple, origin: int,
                   group: np.ndarray | None = None) -> Particles:
    """Particles with the events/pileup flags of ``template`` (one row each), new ids, momenta and vertices."""
    mass, _ = _lookup(pid)
    charge, cls = charge_and_class(pid)
    px, py, pz = momentum[:, 0], momentum[:, 1], momentum[:, 2]
    return Particles(event=template.event, pid=pid, charge=charge, cls=cls, px=px, py=py, pz=pz,
                     e=np.sqrt(px**2 + py**2 + pz**2 + mass**2), mass=mass, x=vertex[0], y=vertex[1], z=vertex[2],
                     pileup=template.pileup, origin=np.full(len(pid), origin, dtype=np.int8),
                     group=np.full(len(pid), -1, dtype=np.int64) if group is None else group)


def decay_long_lived(p: Particles, decays: list[Decay], geometry: Geometry, rng: EventRandom,
                     generations: int = 4) -> Particles:
    """Decay the card's long-lived hadrons (and their long-lived products) before the ECAL (module docstring)."""
    table = _decay_table(decays)
    start = 0  # only particles added by the previous generation can still decay
    for _ in range(generations):
        candidates = np.flatnonzero(np.isin(p.pid[start:], list(table))) + start
        if len(candidates) == 0:
            break
        parents = p.take(candidates)
        _, ctau = _lookup(parents.pid)
        decay_length = ctau * parents.p / np.maximum(parents.mass, 1e-9)
        distance = rng.exponential(parents.event) * decay_length
        inside = distance < _distance_to_surface(parents, geometry.ecal_radius, geometry.ecal_half_length)
        if not inside.any():
            break
        parents, distance = parents.take(inside), distance[inside]
        n = len(parents)
        products = np.zeros((n, 2), dtype=np.int64)
        u = rng.random(parents.event)
        for pid in np.unique(parents.pid):
            cumulative, channels = table[int(pid)]
            rows = parents.pid == pid
            products[rows] = channels[np.searchsorted(cumulative, u[rows], side="right").clip(max=len(channels) - 1)]
        m1, _ = _lookup(products[:, 0])
        m2, _ = _lookup(products[:, 1])
        momentum = np.column_stack([parents.px, parents.py, parents.pz])
        on_shell = np.sqrt(parents.p**2 + parents.mass**2)  # records round E: E < |p| would boost to infinity
        first, second = two_body(momentum, on_shell, parents.mass, m1, m2, rng, parents.event)
        unit = momentum / np.maximum(parents.p, 1e-12)[:, None]
        vertex = tuple(np.tile(getattr(parents, axis) + distance * unit[:, k], 2)
                       for k, axis in enumerate(("x", "y", "z")))
        doubled = parents.take(np.tile(np.arange(n), 2))
        born = _new_particles(doubled, np.concatenate([products[:, 0], products[:, 1]]),
                              np.concatenate([first, second]), vertex, DECAY)
        gone = np.zeros(len(p), dtype=bool)
        gone[candidates[inside]] = True
        p = _with_products(p, gone, [born])
        start = len(p) - len(born)
    return p


def radiate(p: Particles, radiation_lengths, geometry: Geometry, rng: EventRandom) -> Particles:
    """Electrons inside the tracker lose energy to one bremsstrahlung photon (Bethe-Heitler, module docstring)."""
    electrons = np.flatnonzero((p.cls == ELECTRON) & (np.abs(p.eta) <= geometry.tracker_eta_max)
                               & (p.origin != CONVERSION))
    e = p.take(electrons)
    thickness = np.maximum(radiation_lengths(e.pt, e.eta, e.e), 1e-6)
    kept = np.exp(-rng.gamma(e.event, thickness / np.log(2.0)))
    # emission at a uniform fraction of the tracker radius, tangent to the helix there; the photon is aimed
    # at the point where that tangent crosses the ECAL barrel radius (or, beyond it, the endcap)
    radius = 1000.0 * e.pt / (C_LIGHT * geometry.magnetic_field)
    emission = rng.random(e.event) * geometry.tracker_radius
    turn = np.arcsin(np.minimum(emission / (2 * radius), 1.0))
    position_phi = e.phi - e.charge * turn
    direction_phi = e.phi - 2 * e.charge * turn
    px0, py0 = emission * np.cos(position_phi), emission * np.sin(position_phi)
    s = transverse_path(px0, py0, direction_phi, geometry.ecal_radius)
    photon_phi = np.arctan2(py0 + s * np.sin(direction_phi), px0 + s * np.cos(direction_phi))
    lost = (1 - kept) * e.pt
    momentum = np.column_stack([lost * np.cos(photon_phi), lost * np.sin(photon_phi), (1 - kept) * e.pz])
    group = np.arange(len(e)) + _next_group(p)
    photons = _new_particles(e, np.full(len(e), 22), momentum, (e.x, e.y, e.z), BREM, group)
    radiated = np.array(p.radiated)
    radiated[electrons] = 1 - kept
    columns = {name: np.array(getattr(p, name)) for name in ("px", "py", "pz", "e", "group")}
    for name in ("px", "py", "pz"):
        columns[name][electrons] *= kept
    columns["e"][electrons] = np.sqrt(columns["px"][electrons] ** 2 + columns["py"][electrons] ** 2
                                      + columns["pz"][electrons] ** 2 + e.mass**2)
    columns["group"][electrons] = group
    return Particles.concatenate([p.replace(radiated=radiated, **columns), photons])


def convert_photons(p: Particles, radiation_lengths, inner_radius: float, geometry: Geometry,
                    rng: EventRandom) -> Particles:
    """Photons convert to e+e- pairs in the tracker material (module docstring)."""
    # brem photons are left alone: their conversions belong to the electron's reconstruction [CMS-PF]
    photons = np.flatnonzero((p.cls == PHOTON) & (p.origin != BREM))
    g = p.take(photons)
    thickness = np.maximum(radiation_lengths(g.pt, g.eta, g.e), 0.0)
    converts = rng.random(g.event) < -np.expm1(-7.0 / 9.0 * thickness)
    g, photons = g.take(converts), photons[converts]
    n = len(g)
    # depth: uniform in the material between the beam pipe and the tracker's outer surface
    outer = _distance_to_surface(g, geometry.tracker_radius, geometry.tracker_half_length)
    inner = np.minimum(_distance_to_surface(g, inner_radius, geometry.tracker_half_length), outer)
    depth = inner + rng.random(g.event) * (outer - inner)
    # energy sharing: x from 1 - 4/3 x (1 - x) on [0, 1] by rejection (the envelope is 1, acceptance >= 2/3)
    x = rng.random(g.event)
    redo = rng.random(g.event) > 1 - 4.0 / 3.0 * x * (1 - x)
    while redo.any():
        x[redo] = rng.random(g.event[redo])
        redo[redo] = rng.random(g.event[redo]) > 1 - 4.0 / 3.0 * x[redo] * (1 - x[redo])
    momentum = np.column_stack([g.px, g.py, g.pz])
    unit = momentum / np.maximum(g.p, 1e-12)[:, None]
    vertex = tuple(np.tile(getattr(g, axis) + depth * unit[:, k], 2) for k, axis in enumerate(("x", "y", "z")))
    group = np.tile(np.arange(n) + _next_group(p), 2)
    legs = _new_particles(g.take(np.tile(np.arange(n), 2)), np.concatenate([np.full(n, 11), np.full(n, -11)]),
                          np.concatenate([x[:, None] * momentum, (1 - x)[:, None] * momentum]), vertex, CONVERSION,
                          group)
    gone = np.zeros(len(p), dtype=bool)
    gone[photons] = True
    return _with_products(p, gone, [legs])


def _next_group(p: Particles) -> int:
    return int(p.group.max()) + 1 if len(p) else 0
