"""Analysis objects from particle-flow candidates (and truth): jets, isolated leptons/photons, MET, HT.

Each function takes jagged per-event particle arrays (fields pt, eta, phi, e, px, py, pz, charge, cls)
and returns collections whose field names are Delphes' leaf names, ready for the writer.

Reconstructed jets go through Delphes' CMS chain: energy scale (``JetEnergyScale``), flavour from the
generator history (``JetFlavorAssociation``), b- and tau-tagging (``BTagging``, ``TauTagging``), then the
removal of jets that hold a selected lepton or photon (``UniqueObjectFinder``). The tagging draws use
counter-based random numbers of (seed, event position in the input, jet, purpose): the same seed gives
the same tags for the same jets whatever the batch size.
"""

from __future__ import annotations

import awkward as ak
import fastjet
import numpy as np
import vector

from parnassus.card import BTagging, IsolatedObject, JetDefinition, JetFlavor, Objects, TauTagging
from parnassus.events import impact_parameters
from parnassus.formula import Formula
from parnassus.pdg import ELECTRON, MUON, NEUTRAL_HADRON, PHOTON, has_quark
from parnassus.rho import EventRho, event_rho

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
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pt, eta, phi = (ak.to_numpy(ak.flatten(flat_jets[f])) for f in ("pt", "eta", "phi"))
    c2, d2 = np.zeros(len(sizes)), np.zeros(len(sizes))
    for n in np.unique(sizes[sizes >= 2]):  # the jets of each size together: (jets, n) arrays
        jets = np.flatnonzero(sizes == n)
        index = starts[jets, None] + np.arange(n)
        z = pt[index] / pt[index].sum(axis=1, keepdims=True)
        r = np.hypot(eta[index][:, :, None] - eta[index][:, None, :],
                     delta_phi(phi[index][:, :, None], phi[index][:, None, :]))
        e2 = np.einsum("gi,gij,gj->g", z, r, z) / 2.0
        zr = z[:, :, None] * r
        e3 = np.einsum("gij,gjk,gki->g", zr, zr, zr) / 6.0
        positive = e2 > 0
        c2[jets[positive]] = e3[positive] / e2[positive] ** 2
        d2[jets[positive]] = e3[positive] / e2[positive] ** 3
    counts = ak.num(constituents, axis=1)
    return ak.unflatten(c2, counts), ak.unflatten(d2, counts)


def jet_collection(particles: ak.Array, definition: JetDefinition, energy_scale: Formula | None = None
                   ) -> tuple[ak.Array, ak.Array]:
    """Delphes ``Jet`` leaves for the jets of ``particles``; also returns the constituents.

    ``energy_scale`` (Delphes' ``EnergyScale`` module): each jet's four-momentum is multiplied by this formula
    of its pt, eta and energy (when positive), after the clustering's pT threshold, and the jets are pT-ordered
    again; the energy fractions stay those of the constituents, as Delphes computes them before the scaling.
    Flavour and tagging leaves are 0 (see :func:`tag_jets`).
    """
    jets, const = cluster(particles, definition)
    charged = const.charge != 0
    energy = jets.E
    pt, mass = jets.pt, jets.mass
    if energy_scale is not None:
        counts = ak.num(jets)
        scale = energy_scale(ak.to_numpy(ak.flatten(pt)), ak.to_numpy(ak.flatten(jets.eta)),
                             ak.to_numpy(ak.flatten(energy)))
        scale = ak.unflatten(np.where(scale > 0, scale, 1.0), counts)
        pt, mass = pt * scale, mass * scale
    e_had = ak.sum(const.e * (const.cls == NEUTRAL_HADRON), axis=-1)
    e_em = ak.sum(const.e * (const.cls == PHOTON), axis=-1)
    sum_pt = ak.sum(const.pt, axis=-1)
    sum_pt2 = ak.sum(const.pt**2, axis=-1)
    deta = const.eta - jets.eta
    dphi = delta_phi(const.phi, jets.phi)
    c2, d2 = energy_correlation_ratios(const)
    unsigned = ak.zeros_like(jets.pt, dtype=np.uint32)
    collection = ak.zip({
        "PT": pt, "Eta": jets.eta, "Phi": jets.phi, "T": ak.zeros_like(jets.pt), "Mass": mass,
        "DeltaEta": ak.fill_none(ak.max(abs(deta), axis=-1), 0.0),
        "DeltaPhi": ak.fill_none(ak.max(abs(dphi), axis=-1), 0.0),
        "Flavor": unsigned, "FlavorAlgo": unsigned, "FlavorPhys": unsigned, "TauFlavor": unsigned,
        "BTag": unsigned, "BTagAlgo": unsigned, "BTagPhys": unsigned, "TauTag": unsigned,
        "TauWeight": ak.zeros_like(jets.pt),
        "Charge": ak.sum(const.charge, axis=-1),
        "EhadOverEem": ak.where(e_em > 0, e_had / ak.where(e_em > 0, e_em, 1.0), 999.9),
        "NCharged": ak.sum(charged, axis=-1), "NNeutrals": ak.sum(~charged, axis=-1),
        "NeutralEnergyFraction": ak.sum(const.e * ~charged, axis=-1) / energy,
        "ChargedEnergyFraction": ak.sum(const.e * charged, axis=-1) / energy,
        "MeanSqDeltaR": ak.sum(const.pt**2 * (deta**2 + dphi**2), axis=-1) / sum_pt2,
        "PTD": np.sqrt(sum_pt2) / sum_pt,
        "C2": c2, "D2": d2,
    })
    if energy_scale is not None:  # the scaled pT can change the order of jets at different eta
        order = ak.argsort(collection.PT, axis=1, ascending=False, stable=True)
        collection, const = collection[order], const[order]
    return collection, const


# Counter-based random numbers: a SplitMix64 hash of (seed, event, stream, item) -> uniform in (0, 1].
_GOLDEN, _MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
STREAM_BTAG, STREAM_BTAG_ALGO, STREAM_BTAG_PHYS, STREAM_TAUTAG, STREAM_TAU_CHARGE = range(1, 6)


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX1
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX2
    return x ^ (x >> np.uint64(31))


def counter_uniform(seed: int, event: np.ndarray, item: np.ndarray, stream: int) -> np.ndarray:
    """Uniform numbers in (0, 1], one per (``event``, ``item``) pair, fixed by ``seed`` and ``stream`` alone.

    A draw depends only on its seed, event (position in the input), item (a jet's rank) and stream (what it
    is for), never on how events are grouped into batches; vectorised (a SplitMix64-style hash, whose output
    passes the usual statistical tests).
    """
    with np.errstate(over="ignore"):
        h = _mix(np.full(np.shape(event), np.uint64(seed % 2**64)) + _GOLDEN)
        h = _mix(h ^ (np.asarray(event, dtype=np.int64).astype(np.uint64) * _GOLDEN + np.uint64(stream)))
        h = _mix(h + np.asarray(item, dtype=np.int64).astype(np.uint64) * _GOLDEN)
    return ((h >> np.uint64(11)).astype(np.float64) + 1.0) * 2.0**-53


def _flat_jets(jets: ak.Array, events: np.ndarray) -> tuple[np.ndarray, ...]:
    """Flat pt, eta, phi, energy of the jets, with each jet's event (input position) and rank in its event."""
    counts = ak.to_numpy(ak.num(jets))
    pt, eta, phi, mass = (ak.to_numpy(ak.flatten(jets[f])).astype(np.float64) for f in ("PT", "Eta", "Phi", "Mass"))
    energy = np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2)
    event = np.repeat(np.asarray(events, dtype=np.int64), counts)
    rank = np.arange(len(pt)) - np.repeat(np.cumsum(counts) - counts, counts)
    return pt, eta, phi, energy, event, rank


def _pairs(jets: ak.Array, eta: ak.Array, phi: ak.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (jet, object) pair of the same event, flat: the jet's index among the flattened jets, the object's
    among the flattened objects (``eta``, ``phi``: jagged per event) and Delta R^2 between the two."""
    jet_counts, object_counts = ak.to_numpy(ak.num(jets)), ak.to_numpy(ak.num(eta))
    per_jet = np.repeat(object_counts, jet_counts)  # objects in each jet's event
    first_object = np.repeat(np.cumsum(object_counts) - object_counts, jet_counts)
    jet = np.repeat(np.arange(len(per_jet)), per_jet)
    first_pair = np.cumsum(per_jet) - per_jet
    other = np.arange(int(per_jet.sum())) - np.repeat(first_pair - first_object, per_jet)
    jet_eta, jet_phi = (ak.to_numpy(ak.flatten(jets[f])).astype(np.float64)[jet] for f in ("Eta", "Phi"))
    object_eta, object_phi = (ak.to_numpy(ak.flatten(a)).astype(np.float64)[other] for a in (eta, phi))
    return jet, other, (jet_eta - object_eta) ** 2 + delta_phi(jet_phi, object_phi) ** 2


def _largest_within(jets: ak.Array, objects: ak.Array, values: ak.Array, delta_r: float) -> np.ndarray:
    """Per jet (flattened), the largest of ``values`` over the ``objects`` of its event (fields eta, phi; jagged
    like ``values``) within ``delta_r`` of its axis (Delphes' ``DeltaR <= DeltaR``), -1 where there is none."""
    jet, other, d_r2 = _pairs(jets, objects.eta, objects.phi)
    inside = d_r2 <= delta_r**2
    best = np.full(int(ak.sum(ak.num(jets))), -1, dtype=np.int64)
    np.maximum.at(best, jet[inside], ak.to_numpy(ak.flatten(values)).astype(np.int64)[other[inside]])
    return best


def jet_flavor(jets: ak.Array, history: ak.Array, spec: JetFlavor) -> ak.Array:
    """Delphes ``JetFlavorAssociation`` (or the hadron definition): ``Jet.Flavor`` of each jet (see JetFlavor)."""
    pid = abs(history.pid)
    accepted = (history.pt > spec.pt_min) & (abs(history.eta) <= spec.eta_max)
    if spec.definition == "partons":
        chosen = (((pid >= 1) & (pid <= 5)) | (pid == 21)) & (history.status != 1) & accepted
        code = ak.where(pid == 21, 0, pid)  # a gluon has the lowest priority
    else:
        bottom, charm = has_quark(pid, 5), has_quark(pid, 4)
        chosen = (bottom | charm) & accepted
        code = ak.where(bottom, 5, 4)
    best = _largest_within(jets, history[chosen], code[chosen], spec.delta_r)
    if spec.definition == "partons":
        best = np.where(best == 0, 21, best)  # gluons only
    return ak.unflatten(np.maximum(best, 0).astype(np.uint32), ak.num(jets))


def b_tag(jets: ak.Array, spec: BTagging, seed: int, events: np.ndarray) -> dict[str, ak.Array]:
    """Delphes ``BTagging``: ``BTag`` from the jet's ``Flavor``; ``BTagAlgo``, ``BTagPhys`` likewise from
    ``FlavorAlgo``, ``FlavorPhys`` (0 without a Les Houches record, as for Delphes reading HepMC)."""
    counts = ak.num(jets)
    pt, eta, _, energy, event, rank = _flat_jets(jets, events)
    efficiency = spec.efficiency
    leaves = {}
    for leaf, flavor_leaf, stream in (("BTag", "Flavor", STREAM_BTAG), ("BTagAlgo", "FlavorAlgo", STREAM_BTAG_ALGO),
                                      ("BTagPhys", "FlavorPhys", STREAM_BTAG_PHYS)):
        flavor = ak.to_numpy(ak.flatten(jets[flavor_leaf]))
        probability = efficiency.other(pt, eta, energy)
        for code, formula in ((5, efficiency.b), (4, efficiency.c)):
            chosen = flavor == code
            probability[chosen] = formula(pt[chosen], eta[chosen], energy[chosen])
        tagged = counter_uniform(seed, event, rank, stream) <= probability
        bits = ak.to_numpy(ak.flatten(jets[leaf])) | (tagged.astype(np.uint32) << np.uint32(spec.bit))
        leaves[leaf] = ak.unflatten(bits.astype(np.uint32), counts)
    return leaves


def tau_tag(jets: ak.Array, history: ak.Array | None, spec: TauTagging, seed: int, events: np.ndarray
            ) -> dict[str, ak.Array]:
    """Delphes ``TauTagging``: ``TauFlavor`` (15 for a jet within ``delta_r`` of a decayed tau's visible
    momentum, see :data:`~parnassus.events.HISTORY_FIELDS`), ``TauTag`` drawn with the efficiency of its kind,
    ``TauWeight`` that efficiency, and ``Charge``: the tau's (the nearest one's) for a tau jet, +1 or -1 at
    random for the others, as Delphes sets it."""
    counts = ak.num(jets)
    pt, eta, _, energy, event, rank = _flat_jets(jets, events)
    matched_charge = np.zeros(len(pt), dtype=np.int64)
    if history is not None:
        tau = (abs(history.pid) == 15) & (history.pt > spec.tau_pt_min) & (abs(history.eta) <= spec.tau_eta_max)
        taus = history[tau]
        jet, other, d_r2 = _pairs(jets, taus.vis_eta, taus.vis_phi)
        inside = d_r2 <= spec.delta_r**2
        jet, other, d_r2 = jet[inside], other[inside], d_r2[inside]
        order = np.lexsort((d_r2, jet))  # by jet, nearest tau first
        matched, first = np.unique(jet[order], return_index=True)
        charge = -np.sign(ak.to_numpy(ak.flatten(taus.pid)).astype(np.int64))  # tau- is PDG 15
        matched_charge[matched] = charge[other[order][first]]
    is_tau = matched_charge != 0
    probability = np.where(is_tau, spec.efficiency.tau(pt, eta, energy), spec.efficiency.other(pt, eta, energy))
    tagged = counter_uniform(seed, event, rank, STREAM_TAUTAG) <= probability
    random_charge = np.where(counter_uniform(seed, event, rank, STREAM_TAU_CHARGE) > 0.5, 1, -1)
    bits = ak.to_numpy(ak.flatten(jets.TauTag)) | (tagged.astype(np.uint32) << np.uint32(spec.bit))
    return {"TauFlavor": ak.unflatten(np.where(is_tau, 15, 0).astype(np.uint32), counts),
            "TauTag": ak.unflatten(bits.astype(np.uint32), counts),
            "TauWeight": ak.unflatten(probability, counts),
            "Charge": ak.unflatten(np.where(is_tau, matched_charge, random_charge).astype(np.int32), counts)}


def tag_jets(jets: ak.Array, objects: Objects, history: ak.Array | None, seed: int, events: np.ndarray) -> ak.Array:
    """Flavour (from the generator ``history``; 0 without one), b- and tau-tagging leaves of the jets, as the
    card's ``objects`` say. ``events``: the position of each event in the input (seeds the tagging draws)."""
    if history is not None:
        jets = ak.with_field(jets, jet_flavor(jets, history, objects.jet_flavor), "Flavor")
    leaves = {}
    if objects.b_tagging is not None:
        leaves |= b_tag(jets, objects.b_tagging, seed, events)
    if objects.tau_tagging is not None:
        leaves |= tau_tag(jets, history, objects.tau_tagging, seed, events)
    for name, values in leaves.items():
        jets = ak.with_field(jets, values, name)
    return jets


def isolation_candidates(particles: ak.Array, cls: int, spec: IsolatedObject) -> ak.Array:
    """Mask of the candidates of class ``cls`` within the object's pT and |eta| cuts (before isolation)."""
    return (particles.cls == cls) & (particles.pt >= spec.pt_min) & (abs(particles.eta) <= spec.eta_max)


def isolation_cone(particles: ak.Array, selected: ak.Array, spec: IsolatedObject, fields: tuple[str, ...] = ()
                   ) -> tuple[ak.Array, ak.Array, ak.Array]:
    """The ``selected`` particles, their (candidate ``c``, other ``o``) pairs with the event's other particles
    (one list per candidate; electrons and muons left out, as Delphes' ``EFlowFilter`` does) and which pairs count
    in the isolation: within the cone, above the isolation's pT threshold, not the candidate itself. Records hold
    pt, eta, phi, z, the index ``i`` and the particles' ``fields``."""
    columns = {name: particles[name] for name in ("pt", "eta", "phi", "z", *fields)}
    records = ak.zip({**columns, "i": ak.local_index(particles.pt)})
    cands = records[selected]
    others = records[(particles.cls != ELECTRON) & (particles.cls != MUON)]
    pairs = ak.cartesian({"c": cands, "o": others}, axis=1, nested=True)
    c, o = pairs.c, pairs.o
    d_r2 = (c.eta - o.eta) ** 2 + delta_phi(c.phi, o.phi) ** 2
    inside = (d_r2 <= spec.isolation.cone**2) & (o.pt > spec.isolation.pt_min) & (o.i != c.i)
    return cands, pairs, inside


def _isolation(particles: ak.Array, selected: ak.Array, spec: IsolatedObject, rho: EventRho | None = None
               ) -> dict[str, ak.Array]:
    """Delphes Isolation sums for the ``selected`` particles of each event (the candidate itself excluded).

    As Delphes' ``Isolation`` module fed by its ``EFlowFilter`` (particle flow without electrons and muons):
    charged particles flagged as pileup (here: further than the card's ``pileup_dz`` from the candidate along z,
    when set) go to SumPtChargedPU; IsolationVar is the Delta-beta corrected ratio, charged + max(neutral -
    SumPtChargedPU / 2, 0), and IsolationVarRhoCorr the rho-corrected one, charged + max(neutral - rho pi cone^2,
    0), with the event's ``rho`` of the range holding the candidate's |eta| (none: rho = 0, as for the Delphes
    CMS card, which has no rho input); both are divided by the candidate's pT.
    """
    cands, pairs, inside = isolation_cone(particles, selected, spec, ("charge",))
    c, o = pairs.c, pairs.o
    o_charged = o.charge != 0
    dz = spec.isolation.pileup_dz if spec.isolation.pileup_dz is not None else np.inf
    pileup = o_charged & (abs(o.z - c.z) > dz)
    charged = ak.sum(o.pt * (inside & o_charged & ~pileup), axis=-1)
    charged_pu = ak.sum(o.pt * (inside & pileup), axis=-1)
    neutral = ak.sum(o.pt * (inside & ~o_charged), axis=-1)
    delta_beta = charged + np.maximum(neutral - 0.5 * charged_pu, 0.0)
    rho_here = 0.0 if rho is None else np.maximum(rho.at(cands.eta), 0.0)
    rho_corrected = charged + np.maximum(neutral - rho_here * np.pi * spec.isolation.cone**2, 0.0)
    return {"SumPtCharged": charged, "SumPtNeutral": neutral, "SumPtChargedPU": charged_pu,
            "SumPt": charged + charged_pu + neutral, "IsolationVar": delta_beta / cands.pt,
            "IsolationVarRhoCorr": rho_corrected / cands.pt}


def isolated(particles: ak.Array, cls: int, spec: IsolatedObject, rho: EventRho | None = None
             ) -> tuple[ak.Array, ak.Array]:
    """Candidates of class ``cls`` passing pT, |eta| and isolation; returns (Delphes leaves, mask on PFCs).

    The ratio cut is on IsolationVarRhoCorr, or on IsolationVar without ``use_rho_correction`` (Delphes'
    ``UseRhoCorrection``); ``rho``: the events' pileup density (none: 0)."""
    candidate = isolation_candidates(particles, cls, spec)
    iso = _isolation(particles, candidate, spec, rho)
    ratio = iso["IsolationVarRhoCorr"] if spec.isolation.use_rho_correction else iso["IsolationVar"]
    passed = ratio <= spec.isolation.ratio_max
    chosen = particles[candidate][passed]
    leaves = {"PT": chosen.pt, "Eta": chosen.eta, "Phi": chosen.phi, "T": ak.zeros_like(chosen.pt)}
    if cls == PHOTON:
        leaves |= {"E": chosen.e, "EhadOverEem": ak.zeros_like(chosen.pt)}
    else:
        d0, dz = impact_parameters(chosen.x, chosen.y, chosen.z, chosen.px, chosen.py, chosen.pz, chosen.pt)
        leaves |= {"Charge": chosen.charge, "D0": d0, "DZ": dz,
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


def scalar_ht(*objects: ak.Array) -> ak.Array:
    """Delphes' ``ScalarHT``: the scalar sum of the ``PT`` of the given collections (one entry per event)."""
    return _singleton({"HT": sum(ak.sum(collection.PT, axis=1) for collection in objects)})


def _singleton(columns: dict) -> ak.Array:
    flat = ak.zip({k: ak.to_numpy(v).astype(np.float64) for k, v in columns.items()})
    return ak.unflatten(flat, np.ones(len(flat), dtype=np.int64))


def build_objects(truth: ak.Array, pfcs: ak.Array, objects: Objects, *, history: ak.Array | None = None,
                  seed: int = 0, events: np.ndarray | None = None) -> dict[str, ak.Array]:
    """All analysis collections of a batch, keyed by Delphes collection name.

    Reconstructed jets are energy-scaled, given their flavour from the generator ``history`` (the batch's
    :attr:`~parnassus.events.TruthBatch.history`; none: flavour 0) and tagged as the card's ``objects`` say,
    with draws fixed by ``seed`` and ``events`` (each event's position in the input; default 0, 1, ...).
    Jets that contain a selected photon, electron or muon are then removed, as Delphes' UniqueObjectFinder does;
    ``ScalarHT`` sums the pT of the remaining jets, electrons, muons and photons, as Delphes' CMS card does.
    With the card's ``rho``, the events' pileup density (all candidates) is the ``Rho`` collection and corrects
    the isolation.
    """
    events = np.arange(len(pfcs)) if events is None else np.asarray(events)
    rho = event_rho(pfcs, objects.rho) if objects.rho is not None else None
    photons, used = isolated(pfcs, PHOTON, objects.photons, rho)
    electrons, used_e = isolated(pfcs, ELECTRON, objects.electrons, rho)
    muons, used_m = isolated(pfcs, MUON, objects.muons, rho)
    used = used | used_e | used_m
    jets, constituents = jet_collection(ak.with_field(pfcs, used, "used"), objects.jets, objects.jet_energy_scale)
    jets = tag_jets(jets, objects, history, seed, events)
    jets = jets[~ak.any(constituents.used, axis=-1)]
    gen_jets, _ = jet_collection(truth, objects.jets)
    collections = {"Jet": jets, "GenJet": gen_jets, "Electron": electrons, "Muon": muons, "Photon": photons,
                   "MissingET": missing_et(pfcs), "ScalarHT": scalar_ht(jets, electrons, muons, photons),
                   "GenMissingET": missing_et(truth)}
    if rho is not None:
        collections["Rho"] = rho.collection()
    return collections
