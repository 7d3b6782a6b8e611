"""ECAL/HCAL response, cells, noise and topological clustering of the reference simulation.

Each calorimeter is a grid of cells of equal size in eta and phi. Particles deposit energy around their
entry point (electromagnetic showers in the ECAL; hadrons split between ECAL and HCAL with a response
below one; muons as MIPs); the deposit is shared between neighbouring cells by the integral of a
Gaussian lateral profile. Every cell gets Gaussian electronic noise (cells with no deposit only appear when
the noise passes the threshold, drawn directly from the Gaussian tail). Cells above threshold are grouped
into topological clusters (8-neighbour connected components); each local maximum above the seed
threshold makes a cluster, and a topocluster's energy is shared between its seeds with Gaussian weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import ndtr, ndtri

from parnassus.formula import Formula
from parnassus.pdg import ELECTRON, PHOTON
from parnassus.refsim.config import Calorimetry, Effects, Interactions
from parnassus.refsim.particles import delta_phi
from parnassus.streams import EventRandom


@dataclass
class Grid:
    """Cells of size ``cell`` in eta (|eta| < eta_max) and 2 pi / n_phi in phi."""

    cell: float
    eta_max: float

    @property
    def n_phi(self) -> int:
        return int(round(2 * np.pi / self.cell))

    @property
    def phi_cell(self) -> float:
        return 2 * np.pi / self.n_phi

    @property
    def n_eta(self) -> int:
        return 2 * int(np.ceil(self.eta_max / self.cell))

    def eta_position(self, eta: np.ndarray) -> np.ndarray:
        """Position in units of cells from the grid's lower eta edge."""
        return eta / self.cell + self.n_eta / 2

    def phi_position(self, phi: np.ndarray) -> np.ndarray:
        return np.mod(phi + np.pi, 2 * np.pi) / self.phi_cell

    def key(self, event: np.ndarray, ieta: np.ndarray, iphi: np.ndarray) -> np.ndarray:
        return (event.astype(np.int64) * self.n_eta + ieta) * self.n_phi + np.mod(iphi, self.n_phi)

    def unpack(self, key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        iphi = key % self.n_phi
        rest = key // self.n_phi
        return rest // self.n_eta, rest % self.n_eta, iphi

    def cell_eta(self, ieta: np.ndarray) -> np.ndarray:
        return (ieta + 0.5 - self.n_eta / 2) * self.cell

    def cell_phi(self, iphi: np.ndarray) -> np.ndarray:
        return (iphi + 0.5) * self.phi_cell - np.pi


@dataclass
class Cells:
    """Energies of the cells of a batch, keyed by (event, ieta, iphi) through the grid; ``pileup``: the part of
    the deposited energy (before noise) from pileup particles."""

    key: np.ndarray
    energy: np.ndarray
    pileup: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.pileup is None:
            self.pileup = np.zeros(len(self.energy))


@dataclass
class Clusters:
    event: np.ndarray
    energy: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    pileup: np.ndarray | None = None  # the part of the energy from pileup particles (their cells' share)

    def __post_init__(self) -> None:
        if self.pileup is None:
            self.pileup = np.zeros(len(self.energy))

    def __len__(self) -> int:
        return len(self.energy)


@dataclass
class Deposits:
    """Energy deposited by particles at (eta, phi), with the lateral shower width in cells; ``pileup``: made by a
    pileup particle."""

    event: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    energy: np.ndarray
    spread: np.ndarray
    pileup: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.pileup is None:
            self.pileup = np.zeros(len(self.energy), dtype=bool)

    @classmethod
    def concatenate(cls, parts: list[Deposits]) -> Deposits:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__))


def _window_weights(position: np.ndarray, spread: np.ndarray, half_width: int) -> tuple[np.ndarray, np.ndarray]:
    """Fractions of a Gaussian profile (sigma ``spread`` cells) centred at ``position`` in each cell.

    Returns (cell index offsets, weights) of shape (n, 2 * half_width + 1); weights sum to one.
    """
    base = np.floor(position).astype(np.int64)
    offsets = np.arange(-half_width, half_width + 1)
    lower = (base[:, None] + offsets[None, :]) - position[:, None]
    sigma = np.maximum(spread, 1e-6)[:, None]
    weights = ndtr((lower + 1) / sigma) - ndtr(lower / sigma)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-300)
    return base[:, None] + offsets[None, :], weights


def deposit_cells(deposits: Deposits, grid: Grid, shower_spread: bool) -> Cells:
    """Sum deposits into cells, spreading each over a window of +-1.5 times the widest profile when enabled."""
    inside = np.abs(deposits.eta) < grid.eta_max
    event, energy = deposits.event[inside], deposits.energy[inside]
    pileup_energy = np.where(deposits.pileup[inside], energy, 0.0)
    eta_pos = grid.eta_position(deposits.eta[inside])
    phi_pos = grid.phi_position(deposits.phi[inside])
    if shower_spread and len(event):
        spread = deposits.spread[inside]
        half_width = max(1, int(np.ceil(1.5 * spread.max())))
        ieta, weta = _window_weights(eta_pos, spread, half_width)
        iphi, wphi = _window_weights(phi_pos, spread, half_width)
        width = 2 * half_width + 1
        ieta = np.repeat(ieta, width, axis=1)
        iphi = np.tile(iphi, (1, width))
        weight = (weta[:, :, None] * wphi[:, None, :]).reshape(len(event), -1)
        valid = (ieta >= 0) & (ieta < grid.n_eta)
        keys = grid.key(np.repeat(event[:, None], width * width, axis=1)[valid], ieta[valid], iphi[valid])
        values = (energy[:, None] * weight)[valid]
        pileup_values = (pileup_energy[:, None] * weight)[valid]
    else:
        keys = grid.key(event, np.floor(eta_pos).astype(np.int64), np.floor(phi_pos).astype(np.int64))
        values, pileup_values = energy, pileup_energy
    unique, inverse = np.unique(keys, return_inverse=True)
    return Cells(unique, np.bincount(inverse, weights=values, minlength=len(unique)),
                 np.bincount(inverse, weights=pileup_values, minlength=len(unique)))


def add_noise(cells: Cells, grid: Grid, noise: float, threshold: float, n_events: int,
              rng: EventRandom) -> Cells:
    """Gaussian noise on hit cells; noise-only cells above ``threshold`` drawn from the Gaussian tail."""
    energy = cells.energy + noise * rng.standard_normal(grid.unpack(cells.key)[0])
    tail = ndtr(-threshold / noise)
    n_cells = grid.n_eta * grid.n_phi
    n_noisy = rng.poisson(np.arange(n_events), tail * n_cells)
    event = np.repeat(np.arange(n_events), n_noisy)
    keys = grid.key(event, rng.integers(event, 0, grid.n_eta), rng.integers(event, 0, grid.n_phi))
    u = rng.random(event)
    values = noise * ndtri(1 - tail * (1 - u))  # uniform over the tail above the threshold
    fresh = ~np.isin(keys, cells.key)
    keys, index = np.unique(keys[fresh], return_index=True)
    merged_keys = np.concatenate([cells.key, keys])
    order = np.argsort(merged_keys)
    return Cells(merged_keys[order], np.concatenate([energy, values[fresh][index]])[order],
                 np.concatenate([cells.pileup, np.zeros(len(keys))])[order])


def _neighbour_edges(cells: Cells, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) of cells of the same event that touch (8 neighbours, phi wraps around)."""
    event, ieta, iphi = grid.unpack(cells.key)
    first, second = [], []
    for deta in (-1, 0, 1):
        for dphi in (-1, 0, 1):
            if deta == 0 and dphi == 0:
                continue
            neighbour_eta = ieta + deta
            inside = (neighbour_eta >= 0) & (neighbour_eta < grid.n_eta)
            keys = grid.key(event[inside], neighbour_eta[inside], iphi[inside] + dphi)
            where = np.searchsorted(cells.key, keys)
            where = np.minimum(where, len(cells.key) - 1)
            found = cells.key[where] == keys
            first.append(np.flatnonzero(inside)[found])
            second.append(where[found])
    return np.concatenate(first), np.concatenate(second)


def cluster(cells: Cells, grid: Grid, threshold: float, seed_threshold: float, share_width: float,
            splitting: bool) -> Clusters:
    """Topological clustering with seed sharing (see module docstring)."""
    keep = cells.energy >= threshold
    cells = Cells(cells.key[keep], cells.energy[keep], cells.pileup[keep])
    n = len(cells.key)
    if n == 0:
        return Clusters(*(np.zeros(0) for _ in range(4)))
    i, j = _neighbour_edges(cells, grid)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    is_max = np.ones(n, dtype=bool)
    is_max[i[cells.energy[j] > cells.energy[i]]] = False
    seeds = np.flatnonzero(is_max & (cells.energy >= seed_threshold))
    event, ieta, iphi = grid.unpack(cells.key)
    if not splitting:  # one cluster per topocluster that has a seed
        seeds = seeds[np.unique(label[seeds], return_index=True)[1]]
    # pair every cell with every seed of its topocluster
    seed_order = np.argsort(label[seeds], kind="stable")
    seeds = seeds[seed_order]
    n_labels = label.max() + 1
    seeds_per_label = np.bincount(label[seeds], minlength=n_labels)
    first_seed = np.concatenate([[0], np.cumsum(seeds_per_label)[:-1]])
    repeats = seeds_per_label[label]
    cell_index = np.repeat(np.arange(n), repeats)
    within = np.arange(len(cell_index)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    seed_slot = first_seed[label[cell_index]] + within
    seed_index = seeds[seed_slot]
    deta = (ieta[cell_index] - ieta[seed_index]).astype(float)
    dphi = np.mod(iphi[cell_index] - iphi[seed_index] + grid.n_phi // 2, grid.n_phi) - grid.n_phi // 2
    if splitting:
        weight = cells.energy[seed_index] * np.exp(-(deta**2 + dphi**2) / (2 * share_width**2))
    else:
        weight = np.ones(len(cell_index))
    total = np.bincount(cell_index, weights=weight, minlength=n)
    share = cells.energy[cell_index] * weight / np.maximum(total[cell_index], 1e-300)
    energy = np.bincount(seed_slot, weights=share, minlength=len(seeds))
    pileup_share = cells.pileup[cell_index] * weight / np.maximum(total[cell_index], 1e-300)
    pileup = np.bincount(seed_slot, weights=pileup_share, minlength=len(seeds))
    safe = np.maximum(energy, 1e-300)
    eta = grid.cell_eta(ieta[seeds]) + np.bincount(seed_slot, weights=share * deta, minlength=len(seeds)) / safe \
        * grid.cell
    phi = grid.cell_phi(iphi[seeds]) + np.bincount(seed_slot, weights=share * dphi, minlength=len(seeds)) / safe \
        * grid.phi_cell
    return Clusters(event=event[seeds], energy=energy, eta=eta, phi=delta_phi(phi, 0.0), pileup=pileup)


def particle_deposits(cls: np.ndarray, event: np.ndarray, energy: np.ndarray, ecal_eta: np.ndarray,
                      ecal_phi: np.ndarray, hcal_eta: np.ndarray, hcal_phi: np.ndarray, is_muon: np.ndarray,
                      calo: Calorimetry, effects: Effects, rng: EventRandom, fragments: Interactions,
                      cell: float, pileup: np.ndarray | None = None) -> tuple[Deposits, Deposits]:
    """ECAL and HCAL deposits of particles that reach the calorimeters (already selected); with
    ``effects.shower_fragments``, hadron showers leave extra EM sub-showers in the ECAL (the ``fragments``
    parameters; offsets in cells of size ``cell``). ``pileup``: which particles come from pileup (none: no one)."""
    n = len(energy)
    em = ((cls == PHOTON) | (cls == ELECTRON)) & ~is_muon
    hadron = ~em & ~is_muon
    ecal_energy = np.zeros(n)
    hcal_energy = np.zeros(n)

    sigma = calo.ecal_resolution(energy[em] / np.cosh(ecal_eta[em]), ecal_eta[em], energy[em])
    ecal_energy[em] = np.maximum(energy[em] + sigma * rng.standard_normal(event[em]), 0.0)

    e_h, hadron_event = energy[hadron], event[hadron]
    if effects.hadron_response:
        response = calo.hadron_response(e_h / np.cosh(ecal_eta[hadron]), ecal_eta[hadron], e_h)
        width = calo.hadron_resolution(e_h / np.cosh(ecal_eta[hadron]), ecal_eta[hadron], e_h)
        visible = e_h * response * np.exp(width * rng.standard_normal(hadron_event) - width**2 / 2)
    else:
        visible = e_h
    mip = rng.random(hadron_event) < calo.hadron_mip_probability
    mean, spread = calo.hadron_em_fraction_mean, calo.hadron_em_fraction_width
    concentration = mean * (1 - mean) / spread**2 - 1
    fraction = rng.beta(hadron_event, mean * concentration, (1 - mean) * concentration)
    to_ecal = np.where(mip, np.minimum(calo.mip_ecal, visible), fraction * visible)
    ecal_energy[hadron] = to_ecal
    hcal_energy[hadron] = visible - to_ecal

    ecal_energy[is_muon] = calo.mip_ecal * rng.lognormal(event[is_muon], 0.0, 0.3)
    hcal_energy[is_muon] = calo.mip_hcal * rng.lognormal(event[is_muon], 0.0, 0.3)

    ecal_spread = np.where(em, calo.em_spread, np.where(is_muon, 0.3, calo.hadron_ecal_spread))
    hcal_spread = np.where(is_muon, 0.3, calo.hadron_hcal_spread)
    ecal = Deposits(event, ecal_eta, ecal_phi, ecal_energy, ecal_spread, pileup)
    hcal = Deposits(event, hcal_eta, hcal_phi, hcal_energy, hcal_spread, pileup)
    if effects.shower_fragments:
        showering = np.zeros(n, dtype=bool)
        showering[np.flatnonzero(hadron)[~mip]] = True
        ecal = _fragment(ecal, showering, fragments.hadron_fragments, fragments.fragment_spread * cell,
                         calo.em_spread, fragments.fragment_core_weight, rng)
    return ecal, hcal


def _fragment(ecal: Deposits, showering: np.ndarray, fragments: Formula, spread: float, em_spread: float,
              core_weight: float, rng: EventRandom) -> Deposits:
    """Split the ECAL deposits of showering hadrons into the core and Poisson(``fragments``) EM sub-showers at
    Gaussian offsets (``spread`` in eta and phi); the energy is shared as Dirichlet(core_weight, 1, 1, ...)."""
    index = np.flatnonzero(showering & (ecal.energy > 0))
    energy, eta = ecal.energy[index], ecal.eta[index]
    extra = rng.poisson(ecal.event[index], fragments(energy / np.cosh(eta), eta, energy))
    index = index[extra > 0]
    extra = extra[extra > 0]
    if len(index) == 0:
        return ecal
    owner = np.repeat(np.arange(len(index)), extra + 1)  # the core and the sub-showers of each deposit
    source = index[owner]
    is_core = np.r_[True, owner[1:] != owner[:-1]]
    # Dirichlet(core_weight, 1, 1, ...) shares
    weight = rng.gamma(ecal.event[source], np.where(is_core, core_weight, 1.0))
    share = weight / np.bincount(owner, weights=weight)[owner]
    offset = np.where(is_core, 0.0, 1.0) * spread
    pieces = Deposits(ecal.event[source], ecal.eta[source] + offset * rng.standard_normal(ecal.event[source]),
                      delta_phi(ecal.phi[source] + offset * rng.standard_normal(ecal.event[source]), 0.0),
                      ecal.energy[source] * share, np.where(is_core, ecal.spread[source], em_spread),
                      ecal.pileup[source])
    rest = np.ones(len(ecal.energy), dtype=bool)
    rest[index] = False
    kept = Deposits(*(getattr(ecal, name)[rest] for name in Deposits.__dataclass_fields__))
    return Deposits.concatenate([kept, pieces])
