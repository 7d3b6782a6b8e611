"""Analysis objects from particle-flow candidates (and truth): jets, isolated leptons/photons, MET, HT.

Each function takes jagged per-event particle arrays (fields pt, eta, phi, e, px, py, pz, charge, cls)
and returns collections whose field names are Delphes' leaf names, ready for the writer.
"""

from __future__ import annotations

import awkward as ak
import fastjet
import numpy as np
import vector

from parnassus.card import IsolatedObject, JetDefinition, Objects
from parnassus.pdg import ELECTRON, MUON, NEUTRAL_HADRON, PHOTON

vector.register_awkward()
fastjet._swig.ClusterSequence.set_fastjet_banner_stream(None)  # keep stdout clean (pipelines)

_ALGORITHMS = {"antikt": fastjet.antikt_algorithm, "kt": fastjet.kt_algorithm,
               "cambridge": fastjet.cambridge_algorithm}


def delta_phi(a: ak.Array | np.ndarray, b: ak.Array | np.ndarray) -> ak.Array | np.ndarray:
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def cluster(particles: ak.Array, definition: JetDefinition) -> tuple[ak.Array, ak.Array]:
    """Cluster each event with fastjet; return jets and their constituents, jets ordered by pT."""
    momenta = ak.zip({"px": particles.px, "py": particles.py, "pz": particles.pz, "E": particles.e},
                     with_name="Momentum4D")
    sequence = fastjet.ClusterSequence(momenta, fastjet.JetDefinition(_ALGORITHMS[definition.algorithm],
                                                                      definition.radius))
    jets = sequence.inclusive_jets(min_pt=definition.pt_min)
    index = sequence.constituent_index(min_pt=definition.pt_min)
    jets = ak.zip({"px": jets.px, "py": jets.py, "pz": jets.pz, "E": jets.E}, with_name="Momentum4D")
    keep = abs(jets.eta) <= definition.eta_max
    jets, index = jets[keep], index[keep]
    order = ak.argsort(jets.pt, axis=1, ascending=False)
    jets, index = jets[order], index[order]
    flat_index = ak.to_numpy(ak.flatten(index + _starts(particles), axis=None))
    constituents = ak.unflatten(ak.unflatten(ak.flatten(particles)[flat_index],
                                             ak.flatten(ak.num(index, axis=2))), ak.num(index, axis=1))
    return jets, constituents


def _starts(particles: ak.Array) -> ak.Array:
    """Index of each event's first particle in the flattened array, broadcastable over jets."""
    counts = ak.to_numpy(ak.num(particles, axis=1))
    return ak.Array(np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64))


def energy_correlation_ratios(constituents: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """C2 = e3/e2**2 and D2 = e3/e2**3 (beta = 1, pT fractions, eta-phi distances) for every jet.

    e2 = sum_{i<j} z_i z_j R_ij = z.R.z / 2 and e3 = sum_{i<j<k} z_i z_j z_k R_ij R_ik R_jk = tr((Z R)^3) / 6,
    since R_ii = 0 removes every term with a repeated index. Jets with fewer than two constituents get 0.
    """
    flat_jets = ak.flatten(constituents, axis=1)
    sizes = ak.to_numpy(ak.num(flat_jets, axis=1))
    pt, eta, phi = (ak.to_numpy(ak.flatten(flat_jets[f])) for f in ("pt", "eta", "phi"))
    c2, d2 = np.zeros(len(sizes)), np.zeros(len(sizes))
    start = 0
    for j, n in enumerate(sizes):
        stop = start + n
        if n >= 2:
            z = pt[start:stop] / pt[start:stop].sum()
            deta = eta[start:stop, None] - eta[None, start:stop]
            dphi = delta_phi(phi[start:stop, None], phi[None, start:stop])
            r = np.sqrt(deta**2 + dphi**2)
            e2 = z @ r @ z / 2.0
            zr = z[:, None] * r
            e3 = np.einsum("ij,jk,ki->", zr, zr, zr) / 6.0
            if e2 > 0:
                c2[j], d2[j] = e3 / e2**2, e3 / e2**3
        start = stop
    counts = ak.num(constituents, axis=1)
    return ak.unflatten(c2, counts), ak.unflatten(d2, counts)


def jet_collection(particles: ak.Array, definition: JetDefinition) -> tuple[ak.Array, ak.Array]:
    """Delphes ``Jet`` leaves for the jets of ``particles``; also returns the constituents."""
    jets, const = cluster(particles, definition)
    charged = const.charge != 0
    energy = jets.E
    e_had = ak.sum(const.e * (const.cls == NEUTRAL_HADRON), axis=-1)
    e_em = ak.sum(const.e * (const.cls == PHOTON), axis=-1)
    sum_pt = ak.sum(const.pt, axis=-1)
    sum_pt2 = ak.sum(const.pt**2, axis=-1)
    deta = const.eta - jets.eta
    dphi = delta_phi(const.phi, jets.phi)
    c2, d2 = energy_correlation_ratios(const)
    collection = ak.zip({
        "PT": jets.pt, "Eta": jets.eta, "Phi": jets.phi, "T": ak.zeros_like(jets.pt), "Mass": jets.mass,
        "DeltaEta": ak.fill_none(ak.max(abs(deta), axis=-1), 0.0),
        "DeltaPhi": ak.fill_none(ak.max(abs(dphi), axis=-1), 0.0),
        "Flavor": ak.zeros_like(jets.pt, dtype=np.uint32), "BTag": ak.zeros_like(jets.pt, dtype=np.uint32),
        "TauTag": ak.zeros_like(jets.pt, dtype=np.uint32),
        "Charge": ak.sum(const.charge, axis=-1),
        "EhadOverEem": ak.where(e_em > 0, e_had / ak.where(e_em > 0, e_em, 1.0), 999.9),
        "NCharged": ak.sum(charged, axis=-1), "NNeutrals": ak.sum(~charged, axis=-1),
        "NeutralEnergyFraction": ak.sum(const.e * ~charged, axis=-1) / energy,
        "ChargedEnergyFraction": ak.sum(const.e * charged, axis=-1) / energy,
        "MeanSqDeltaR": ak.sum(const.pt**2 * (deta**2 + dphi**2), axis=-1) / sum_pt2,
        "PTD": np.sqrt(sum_pt2) / sum_pt,
        "C2": c2, "D2": d2,
    })
    return collection, const


def _isolation(particles: ak.Array, selected: ak.Array, spec: IsolatedObject) -> dict[str, ak.Array]:
    """Delphes Isolation sums for the ``selected`` particles of each event (the candidate itself excluded).

    As Delphes' ``Isolation`` module fed by its ``EFlowFilter`` (particle flow without electrons and muons):
    charged particles flagged as pileup (here: further than the card's ``pileup_dz`` from the candidate along z,
    when set) go to SumPtChargedPU; IsolationVar is the Delta-beta corrected ratio, IsolationVarRhoCorr the
    rho-corrected one (rho = 0: no rho input, as in the Delphes CMS card), and the cut uses the latter
    (Delphes' default ``UseRhoCorrection``).
    """
    index = ak.local_index(particles.pt)
    cands = ak.zip({"pt": particles.pt, "eta": particles.eta, "phi": particles.phi, "z": particles.z,
                    "i": index})[selected]
    others = ak.zip({"pt": particles.pt, "eta": particles.eta, "phi": particles.phi, "z": particles.z, "i": index,
                     "charged": particles.charge != 0})
    others = others[(particles.cls != ELECTRON) & (particles.cls != MUON)]  # Delphes' EFlowFilter drops leptons
    pairs = ak.cartesian({"c": cands, "o": others}, axis=1, nested=True)
    c, o = pairs.c, pairs.o
    d_r2 = (c.eta - o.eta) ** 2 + delta_phi(c.phi, o.phi) ** 2
    inside = (d_r2 <= spec.isolation.cone**2) & (o.pt > spec.isolation.pt_min) & (o.i != c.i)
    dz = spec.isolation.pileup_dz if spec.isolation.pileup_dz is not None else np.inf
    pileup = o.charged & (abs(o.z - c.z) > dz)
    charged = ak.sum(o.pt * (inside & o.charged & ~pileup), axis=-1)
    charged_pu = ak.sum(o.pt * (inside & pileup), axis=-1)
    neutral = ak.sum(o.pt * (inside & ~o.charged), axis=-1)
    delta_beta = charged + np.maximum(neutral - 0.5 * charged_pu, 0.0)
    rho_corrected = charged + neutral
    return {"SumPtCharged": charged, "SumPtNeutral": neutral, "SumPtChargedPU": charged_pu,
            "SumPt": charged + charged_pu + neutral, "IsolationVar": delta_beta / cands.pt,
            "IsolationVarRhoCorr": rho_corrected / cands.pt}


def isolated(particles: ak.Array, cls: int, spec: IsolatedObject) -> tuple[ak.Array, ak.Array]:
    """Candidates of class ``cls`` passing pT, |eta| and isolation; returns (Delphes leaves, mask on PFCs)."""
    candidate = (particles.cls == cls) & (particles.pt >= spec.pt_min) & (abs(particles.eta) <= spec.eta_max)
    iso = _isolation(particles, candidate, spec)
    passed = iso["IsolationVarRhoCorr"] <= spec.isolation.ratio_max
    chosen = particles[candidate][passed]
    leaves = {"PT": chosen.pt, "Eta": chosen.eta, "Phi": chosen.phi, "T": ak.zeros_like(chosen.pt)}
    if cls == PHOTON:
        leaves |= {"E": chosen.e, "EhadOverEem": ak.zeros_like(chosen.pt)}
    else:
        d0 = (chosen.x * chosen.py - chosen.y * chosen.px) / chosen.pt
        leaves |= {"Charge": chosen.charge, "D0": d0, "DZ": chosen.z,
                   "ErrorD0": ak.zeros_like(d0), "ErrorDZ": ak.zeros_like(d0)}
        if cls == ELECTRON:
            leaves["EhadOverEem"] = ak.zeros_like(chosen.pt)
    leaves |= {name: value[passed] for name, value in iso.items()}
    chosen_index = ak.local_index(particles.pt)[candidate][passed]
    return ak.zip(leaves), _member(particles, chosen_index)


def _member(particles: ak.Array, chosen_index: ak.Array) -> ak.Array:
    """Boolean per particle: is its index among ``chosen_index`` of the same event."""
    local = ak.local_index(particles.pt)
    return ak.any(local[:, :, None] == chosen_index[:, None, :], axis=-1)


def missing_et(particles: ak.Array) -> ak.Array:
    """Delphes MissingET from the negative vector sum of the particles (one entry per event)."""
    px, py, pz = (-ak.sum(particles[f], axis=1) for f in ("px", "py", "pz"))
    met = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(met > 0, pz / np.where(met > 0, met, 1.0), 0.0))
    return _singleton({"MET": met, "Eta": eta, "Phi": np.arctan2(py, px)})


def scalar_ht(particles: ak.Array) -> ak.Array:
    """Scalar sum of the particles' pT (one entry per event)."""
    return _singleton({"HT": ak.sum(particles.pt, axis=1)})


def _singleton(columns: dict) -> ak.Array:
    flat = ak.zip({k: ak.to_numpy(v).astype(np.float64) for k, v in columns.items()})
    return ak.unflatten(flat, np.ones(len(flat), dtype=np.int64))


def build_objects(truth: ak.Array, pfcs: ak.Array, objects: Objects) -> dict[str, ak.Array]:
    """All analysis collections of a batch, keyed by Delphes collection name.

    Jets that contain a selected photon, electron or muon are removed, as Delphes' UniqueObjectFinder does.
    """
    photons, used = isolated(pfcs, PHOTON, objects.photons)
    electrons, used_e = isolated(pfcs, ELECTRON, objects.electrons)
    muons, used_m = isolated(pfcs, MUON, objects.muons)
    used = used | used_e | used_m
    jets, constituents = jet_collection(ak.with_field(pfcs, used, "used"), objects.jets)
    jets = jets[~ak.any(constituents.used, axis=-1)]
    gen_jets, _ = jet_collection(truth, objects.jets)
    return {"Jet": jets, "GenJet": gen_jets, "Electron": electrons, "Muon": muons, "Photon": photons,
            "MissingET": missing_et(pfcs), "ScalarHT": scalar_ht(pfcs), "GenMissingET": missing_et(truth)}
