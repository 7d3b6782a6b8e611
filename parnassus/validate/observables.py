"""The observables of the validation report, extracted chunk by chunk from a Delphes-layout file.

Definitions (after the Parnassus entire-event paper, figures 2 and 6-15):

- Event level (all candidates in the file): N_PFC (total and per class), N_jets, MET x/y, HT. Truth
  references: N and HT of the truth particles with pT > 1 GeV (the candidates' threshold), the number of
  GenJets, GenMissingET. Residuals: reco - truth for counts and MET x/y (GeV; the truth MET components
  can be 0, so not divided), (reco - truth) / truth for HT.
- Jet level: the file's ``Jet`` collection (all jets; C2, D2 of the leading jet only; bit 0 of ``BTag``, of
  all jets and of those of ``Flavor`` 5: the b-tag rate and efficiency) and its residuals
  w.r.t. the ``GenJet`` matched by Hungarian assignment on ΔR (ΔR <= 0.2): relative for pT, C2, D2
  (where the truth value is > 0), differences for eta, phi and mass (GeV: the mass of a GenJet of one or two
  particles is near 0, which would make a relative residual explode).
- Particle level, |eta| < 2.5 (tracker acceptance): candidates and truth particles (pT > 1 GeV), all, in
  jets (ΔR < 0.5 from a ``Jet`` axis; truth particles: from a ``GenJet`` axis) and out of jets, matched
  within each category by Hungarian assignment on ΔR (ΔR <= 0.6): spectra of pT, eta, phi, vertex x, y, z
  (mm); residuals relative for pT, differences otherwise; 5×5 class confusion counts; the candidates left
  unmatched in the inclusive matching ("fakes").
- Isolated electrons, muons, photons: N per event of the file's ``Electron`` / ``Muon`` / ``Photon``
  collection. Truth objects: ``Particle`` entries with |PID| 11 / 13 / 22, status 1, pT > 10 GeV,
  |eta| < 2.5 (muons 2.4), isolated at truth level: the scalar pT sum of the other status-1 truth particles
  of the file (neutrinos 12/14/16 excluded; no pT threshold) within ΔR < 0.5 is below 0.2 × its pT. Each
  truth object is found (1) or not (0) if Hungarian matching on ΔR (ΔR <= 0.1) pairs it with an object of
  the collection: the mean of the 0/1 values is the efficiency (W1 of two such samples = the difference of
  efficiencies); response pT / pT^truth of the found ones.
- MET and jets: MET is the file's ``MissingET`` (parnassus writes it downstream of the generator, from all
  its particle-flow candidates, for every generator); min over the up to 4 leading jets with pT > 30 GeV
  of |Δφ(jet, MET)|, and |Δφ(leading jet, MET)| (events with such a jet).
- Jet response in bins: the matched-jet pT residual (above) in bins of GenJet pT (20-50-100-200-∞ GeV) and,
  for GenJet pT >= 20 GeV, of GenJet |eta| (0-1.3-2.5-5).

Observables with no entries in a file (no truth muons, no jet above 30 GeV) have no distance and count for
no candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import awkward as ak
import numpy as np

from parnassus.pdg import CLASS_NAMES, charge_and_class
from parnassus.validate.matching import confusion_matrix, delta_phi, match_events, offsets
from parnassus.validate.metrics import Sample

TRUTH_PT_MIN = 1.0  # GeV: truth particles counted in N, HT and the particle-level matching
PARTICLE_ETA_MAX = 2.5  # particle-level observables: tracker acceptance
IN_JET_DR = 0.5  # a particle is "in a jet" within this ΔR of a jet axis
JET_MATCH_DR = 0.2
PARTICLE_MATCH_DR = 0.6
CATEGORIES = ("all", "in_jet", "out_jet")
CATEGORY_TITLES = {"all": "all particles", "in_jet": "particles in jets", "out_jet": "particles out of jets"}
CLASS_LABELS = ("ch. had", "electron", "muon", "neu. had", "photon")
# isolated objects: name -> (collection, |PID|, |eta| max of the truth objects, label)
ISOLATED_OBJECTS = {"electron": ("Electron", 11, 2.5, "e"), "muon": ("Muon", 13, 2.4, r"\mu"),
                    "photon": ("Photon", 22, 2.5, r"\gamma")}
ISOLATED_PT_MIN = 10.0  # GeV
TRUTH_ISOLATION_CONE = 0.5
TRUTH_ISOLATION_RATIO = 0.2
NEUTRINOS = (12, 14, 16)
OBJECT_MATCH_DR = 0.1
DPHI_JET_PT_MIN = 30.0  # GeV
DPHI_JETS = 4
JET_RESPONSE_BINS = {"pt": ((20.0, 50.0), (50.0, 100.0), (100.0, 200.0), (200.0, np.inf)),
                     "eta": ((0.0, 1.3), (1.3, 2.5), (2.5, 5.0))}

_JET_LEAVES = ("PT", "Eta", "Phi", "Mass", "C2", "D2", "BTag", "Flavor")
_PARTICLE_LEAVES = ("PT", "Eta", "Phi", "X", "Y", "Z")
BRANCHES = (
    ["Event.Number", "MissingET.MET", "MissingET.Phi", "GenMissingET.MET", "GenMissingET.Phi"]
    + [f"Particle.{leaf}" for leaf in (*_PARTICLE_LEAVES, "PID", "Status")]
    + [f"ParticleFlowCandidate.{leaf}" for leaf in (*_PARTICLE_LEAVES, "Class")]
    + [f"{jets}.{leaf}" for jets in ("Jet", "GenJet") for leaf in _JET_LEAVES]
    + [f"{collection}.{leaf}" for collection, *_ in ISOLATED_OBJECTS.values() for leaf in ("PT", "Eta", "Phi")]
)

PHI_RANGE = (-np.pi, np.pi)


def _edge(value: float) -> str:
    return "inf" if np.isinf(value) else f"{value:g}".replace(".", "p")


def jet_response_keys(quantity: str) -> list[str]:
    """Observable keys of the jet pT residual in the bins of ``quantity`` ("pt" or "eta"), e.g.
    ``jet.res.pt.pt50_100``, ``jet.res.pt.eta1p3_2p5``."""
    return [f"jet.res.pt.{quantity}{_edge(low)}_{_edge(high)}" for low, high in JET_RESPONSE_BINS[quantity]]


def jet_response_bin_labels(quantity: str) -> list[str]:
    """Tick labels of the bins ("20-50", "≥200")."""
    return [f"≥{low:g}" if np.isinf(high) else f"{low:g}-{high:g}" for low, high in JET_RESPONSE_BINS[quantity]]


@dataclass(frozen=True)
class Observable:
    """One histogrammed quantity: its key in metrics.json, axis label and the figure it is drawn in."""

    key: str
    label: str
    figure: str
    discrete: bool = False
    range: tuple[float, float] | None = None
    logy: bool = False


def _observables() -> list[Observable]:
    o = Observable
    specs = [
        o("event.n_pfc", "$N_{PFC}$", "event_spectra", discrete=True),
        o("event.n_jets", "$N_{jets}$", "event_spectra", discrete=True),
        o("event.met_x", "MET$_x$ [GeV]", "event_spectra"),
        o("event.met_y", "MET$_y$ [GeV]", "event_spectra"),
        o("event.ht", "$H_T$ [GeV]", "event_spectra"),
        o("event.res.n_pfc", "$N_{PFC} - N_{truth}$", "event_residuals", discrete=True),
        o("event.res.n_jets", "$N_{jets} - N_{GenJets}$", "event_residuals", discrete=True),
        o("event.res.met_x", "MET$_x$ - MET$_x^{truth}$ [GeV]", "event_residuals"),
        o("event.res.met_y", "MET$_y$ - MET$_y^{truth}$ [GeV]", "event_residuals"),
        o("event.res.ht", "$(H_T - H_T^{truth}) / H_T^{truth}$", "event_residuals"),
    ]
    for name, label in zip(CLASS_NAMES, CLASS_LABELS, strict=True):
        specs.append(o(f"event.n_pfc.{name}", f"$N$ {label}", "event_class_counts", discrete=True))
    for name, label in zip(CLASS_NAMES, CLASS_LABELS, strict=True):
        specs.append(o(f"event.res.n_pfc.{name}", f"$N - N_{{truth}}$ {label}", "event_class_residuals",
                       discrete=True))
    specs += [
        o("jet.pt", "jet $p_T$ [GeV]", "jet_spectra", logy=True),
        o("jet.eta", r"jet $\eta$", "jet_spectra"),
        o("jet.phi", r"jet $\phi$", "jet_spectra", range=PHI_RANGE),
        o("jet.mass", "jet mass [GeV]", "jet_spectra"),
        o("jet.lead.c2", "leading jet $C_2$", "jet_spectra"),
        o("jet.lead.d2", "leading jet $D_2$", "jet_spectra"),
        o("jet.btag", "jet b-tag, bit 0 (mean: tag rate)", "jet_spectra", discrete=True, range=(0.0, 1.0)),
        o("jet.btag.b", "b-jet (Flavor 5) b-tag (mean: efficiency)", "jet_spectra", discrete=True,
          range=(0.0, 1.0)),
        o("jet.res.pt", r"jet $\Delta p_T / p_T^{gen}$", "jet_residuals"),
        o("jet.res.eta", r"jet $\Delta\eta$", "jet_residuals"),
        o("jet.res.phi", r"jet $\Delta\phi$", "jet_residuals"),
        o("jet.res.mass", r"jet $m - m^{gen}$ [GeV]", "jet_residuals"),
        o("jet.lead.res.c2", r"leading jet $\Delta C_2 / C_2^{gen}$", "jet_residuals"),
        o("jet.lead.res.d2", r"leading jet $\Delta D_2 / D_2^{gen}$", "jet_residuals"),
    ]
    bin_titles = {"pt": "$p_T^{gen}$ %s GeV", "eta": r"$|\eta^{gen}|$ %s"}
    for quantity, title in bin_titles.items():
        for key, bin_label in zip(jet_response_keys(quantity), jet_response_bin_labels(quantity), strict=True):
            specs.append(o(key, rf"jet $\Delta p_T / p_T^{{gen}}$, {title % bin_label}", "jet_response_bins"))
    for name, (collection, _, _, symbol) in ISOLATED_OBJECTS.items():
        specs += [
            o(f"{name}.n", f"$N_{{{symbol}}}$ per event ({collection})", "isolated_objects", discrete=True),
            o(f"{name}.found", f"truth isolated ${symbol}$ found (mean: efficiency)", "isolated_objects",
              discrete=True, range=(0.0, 1.0)),
            o(f"{name}.response", f"${symbol}$ $p_T / p_T^{{truth}}$", "isolated_objects"),
        ]
    specs += [
        o("met.met", "MET [GeV]", "met_jets"),
        o("met.dphi_min_jets", r"min $|\Delta\phi(j_{1..4}, \mathrm{MET})|$", "met_jets", range=(0.0, np.pi)),
        o("met.dphi_lead_jet", r"$|\Delta\phi(j_1, \mathrm{MET})|$", "met_jets", range=(0.0, np.pi)),
    ]
    particle_labels = {"pt": "$p_T$ [GeV]", "eta": r"$\eta$", "phi": r"$\phi$", "x": "$v_x$ [mm]",
                       "y": "$v_y$ [mm]", "z": "$v_z$ [mm]"}
    residual_labels = {"pt": r"$\Delta p_T / p_T^{truth}$", "eta": r"$\Delta\eta$", "phi": r"$\Delta\phi$",
                       "x": r"$\Delta v_x$ [mm]", "y": r"$\Delta v_y$ [mm]", "z": r"$\Delta v_z$ [mm]"}
    for category in CATEGORIES:
        for quantity, label in particle_labels.items():
            spec_range = {"eta": (-PARTICLE_ETA_MAX, PARTICLE_ETA_MAX), "phi": PHI_RANGE}.get(quantity)
            specs.append(o(f"particle.{category}.{quantity}", f"PFC {label}", f"particle_{category}_spectra",
                           range=spec_range, logy=quantity in ("pt", "x", "y", "z")))
        for quantity, label in residual_labels.items():
            specs.append(o(f"particle.{category}.res.{quantity}", label, f"particle_{category}_residuals",
                           logy=True))
    specs += [
        o("particle.fake.pt", "unmatched PFC $p_T$ [GeV]", "fakes", logy=True),
        o("particle.fake.eta", r"unmatched PFC $\eta$", "fakes", range=(-PARTICLE_ETA_MAX, PARTICLE_ETA_MAX)),
        o("particle.fake.phi", r"unmatched PFC $\phi$", "fakes", range=PHI_RANGE),
        o("particle.fake.z", "unmatched PFC $v_z$ [mm]", "fakes", logy=True),
        o("particle.fake.n", "unmatched PFCs per event", "fakes", discrete=True),
    ]
    return specs


OBSERVABLES: list[Observable] = _observables()
FIGURES: dict[str, str] = {
    "event_spectra": "Event-level spectra",
    "event_residuals": "Event-level residuals w.r.t. truth",
    "event_class_counts": "Candidates per event, by class",
    "event_class_residuals": "Candidates per event by class, residuals w.r.t. truth",
    "jet_spectra": "Jet spectra (substructure: leading jet)",
    "jet_residuals": "Jet residuals w.r.t. the matched GenJet",
    "jet_response_bins": "Matched-jet pT residual in bins of GenJet pT and |eta|",
    "isolated_objects": f"Isolated electrons, muons, photons: multiplicity, efficiency and response w.r.t. "
                        f"isolated truth objects (pT > {ISOLATED_PT_MIN:g} GeV)",
    "met_jets": f"MET and its angle to the jets (pT > {DPHI_JET_PT_MIN:g} GeV)",
    **{f"particle_{c}_spectra": f"Particle spectra: {CATEGORY_TITLES[c]}, |eta| < {PARTICLE_ETA_MAX}"
       for c in CATEGORIES},
    **{f"particle_{c}_residuals": f"Matched-particle residuals: {CATEGORY_TITLES[c]}" for c in CATEGORIES},
    "fakes": "Candidates not matched to a truth particle",
}


@dataclass
class FileObservables:
    """The observables of one file, accumulated chunk by chunk (float32 values with their event index)."""

    values: dict[str, list[np.ndarray]] = field(default_factory=dict)
    events: dict[str, list[np.ndarray]] = field(default_factory=dict)
    confusion: dict[str, np.ndarray] = field(
        default_factory=lambda: {c: np.zeros((5, 5), dtype=np.int64) for c in CATEGORIES})
    counters: dict[str, int] = field(default_factory=dict)
    n_events: int = 0

    def add(self, key: str, values, events: np.ndarray) -> None:
        self.values.setdefault(key, []).append(np.asarray(values, dtype=np.float32))
        self.events.setdefault(key, []).append(np.asarray(events, dtype=np.int32))

    def count(self, key: str, n: int) -> None:
        self.counters[key] = self.counters.get(key, 0) + int(n)

    def sample(self, key: str) -> Sample:
        values, events = self.values.get(key, []), self.events.get(key, [])
        if not values:
            return Sample(np.zeros(0, np.float32), np.zeros(0, np.int32))
        return Sample(np.concatenate(values), np.concatenate(events))

    def samples(self) -> dict[str, Sample]:
        """All observables as :class:`Sample` (the chunks concatenated)."""
        return {spec.key: self.sample(spec.key) for spec in OBSERVABLES}

    def process(self, chunk: ak.Array) -> None:
        """Add the observables of one chunk of events (arrays of :data:`BRANCHES`)."""
        first = self.n_events
        self.n_events += len(chunk)
        event_index = np.arange(first, self.n_events)
        _event_level(self, chunk, event_index)
        _jet_level(self, chunk, event_index)
        _particle_level(self, chunk, event_index)
        _isolated_objects(self, chunk, event_index)
        _met_jets(self, chunk, event_index)


def _np(array) -> np.ndarray:
    return np.asarray(ak.to_numpy(array), dtype=np.float64)


def _flat(array: ak.Array) -> np.ndarray:
    return _np(ak.flatten(array, axis=1))


def _relative(reco: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(reco - truth) / truth where truth > 0, and that mask."""
    ok = truth > 0
    return (reco[ok] - truth[ok]) / truth[ok], ok


def _singleton(chunk: ak.Array, branch: str) -> np.ndarray:
    """The one value per event of a MissingET / ScalarHT-like collection."""
    return _np(ak.fill_none(ak.firsts(chunk[branch]), 0.0))


def truth_classes(pid: ak.Array) -> ak.Array:
    """Particle-flow class of each truth particle from its PDG id (-1 for an unknown id)."""
    _, classes = charge_and_class(ak.to_numpy(ak.flatten(pid)))
    return ak.unflatten(classes, ak.num(pid))


def _event_level(obs: FileObservables, chunk: ak.Array, event: np.ndarray) -> None:
    pfc_class = chunk["ParticleFlowCandidate.Class"]
    truth_pt = chunk["Particle.PT"]
    hard = truth_pt > TRUTH_PT_MIN
    truth_class = truth_classes(chunk["Particle.PID"])
    n_pfc, n_truth = _np(ak.num(pfc_class)), _np(ak.sum(hard, axis=1))
    n_jets, n_gen_jets = _np(ak.num(chunk["Jet.PT"])), _np(ak.num(chunk["GenJet.PT"]))
    met, met_phi = _singleton(chunk, "MissingET.MET"), _singleton(chunk, "MissingET.Phi")
    gen_met, gen_phi = _singleton(chunk, "GenMissingET.MET"), _singleton(chunk, "GenMissingET.Phi")
    met_x, met_y = met * np.cos(met_phi), met * np.sin(met_phi)
    ht = _np(ak.sum(ak.values_astype(chunk["ParticleFlowCandidate.PT"], np.float64), axis=1))  # the papers' HT
    ht_truth = _np(ak.sum(truth_pt * hard, axis=1))
    for key, value in (("n_pfc", n_pfc), ("n_jets", n_jets), ("met_x", met_x), ("met_y", met_y), ("ht", ht)):
        obs.add(f"event.{key}", value, event)
    obs.add("event.res.n_pfc", n_pfc - n_truth, event)
    obs.add("event.res.n_jets", n_jets - n_gen_jets, event)
    obs.add("event.res.met_x", met_x - gen_met * np.cos(gen_phi), event)
    obs.add("event.res.met_y", met_y - gen_met * np.sin(gen_phi), event)
    relative, ok = _relative(ht, ht_truth)
    obs.add("event.res.ht", relative, event[ok])
    for cls, name in enumerate(CLASS_NAMES):
        n_cls = _np(ak.sum(pfc_class == cls, axis=1))
        obs.add(f"event.n_pfc.{name}", n_cls, event)
        obs.add(f"event.res.n_pfc.{name}", n_cls - _np(ak.sum(hard & (truth_class == cls), axis=1)), event)


def _jet_level(obs: FileObservables, chunk: ak.Array, event: np.ndarray) -> None:
    reco = {leaf: _flat(chunk[f"Jet.{leaf}"]) for leaf in _JET_LEAVES}
    gen = {leaf: _flat(chunk[f"GenJet.{leaf}"]) for leaf in _JET_LEAVES}
    reco_counts, gen_counts = ak.to_numpy(ak.num(chunk["Jet.PT"])), ak.to_numpy(ak.num(chunk["GenJet.PT"]))
    jet_event = np.repeat(event, reco_counts)
    for leaf, key in (("PT", "pt"), ("Eta", "eta"), ("Phi", "phi"), ("Mass", "mass")):
        obs.add(f"jet.{key}", reco[leaf], jet_event)
    leading = offsets(reco_counts)[reco_counts > 0]
    tagged = (reco["BTag"].astype(np.int64) & 1).astype(np.float64)
    obs.add("jet.btag", tagged, jet_event)
    b_jet = reco["Flavor"] == 5
    obs.add("jet.btag.b", tagged[b_jet], jet_event[b_jet])
    obs.add("jet.lead.c2", reco["C2"][leading], jet_event[leading])
    obs.add("jet.lead.d2", reco["D2"][leading], jet_event[leading])
    r, g = match_events(reco["Eta"], reco["Phi"], reco_counts, gen["Eta"], gen["Phi"], gen_counts, JET_MATCH_DR)
    obs.count("jets", len(reco["PT"]))
    obs.count("gen_jets", len(gen["PT"]))
    obs.count("jets_matched", len(r))
    pair_event = jet_event[r]
    relative, ok = _relative(reco["PT"][r], gen["PT"][g])
    obs.add("jet.res.pt", relative, pair_event[ok])
    obs.add("jet.res.mass", reco["Mass"][r] - gen["Mass"][g], pair_event)
    obs.add("jet.res.eta", reco["Eta"][r] - gen["Eta"][g], pair_event)
    obs.add("jet.res.phi", delta_phi(reco["Phi"][r], gen["Phi"][g]), pair_event)
    gen_pt, gen_eta, pt_event = gen["PT"][g][ok], np.abs(gen["Eta"][g][ok]), pair_event[ok]
    for quantity, values in (("pt", gen_pt), ("eta", gen_eta)):
        in_range = gen_pt >= JET_RESPONSE_BINS["pt"][0][0]
        for key, (low, high) in zip(jet_response_keys(quantity), JET_RESPONSE_BINS[quantity], strict=True):
            in_bin = in_range & (values >= low) & (values < high)
            obs.add(key, relative[in_bin], pt_event[in_bin])
    is_leading = np.isin(r, leading)
    r_lead, g_lead = r[is_leading], g[is_leading]
    for leaf, key in (("C2", "c2"), ("D2", "d2")):
        relative, ok = _relative(reco[leaf][r_lead], gen[leaf][g_lead])
        obs.add(f"jet.lead.res.{key}", relative, pair_event[is_leading][ok])


def near_any(eta: ak.Array, phi: ak.Array, axis_eta: ak.Array, axis_phi: ak.Array, radius: float) -> ak.Array:
    """For each particle: is it within ``radius`` (ΔR) of any axis of the same event."""
    deta = eta[:, :, np.newaxis] - axis_eta[:, np.newaxis, :]
    dphi = delta_phi(phi[:, :, np.newaxis], axis_phi[:, np.newaxis, :])
    return ak.any(deta**2 + dphi**2 < radius**2, axis=-1)


def _particles(chunk: ak.Array, collection: str, classes: ak.Array) -> ak.Array:
    fields = {leaf.lower(): chunk[f"{collection}.{leaf}"] for leaf in _PARTICLE_LEAVES}
    return ak.zip({**fields, "cls": classes})


def _particle_level(obs: FileObservables, chunk: ak.Array, event: np.ndarray) -> None:
    pfc = _particles(chunk, "ParticleFlowCandidate", chunk["ParticleFlowCandidate.Class"])
    truth = _particles(chunk, "Particle", truth_classes(chunk["Particle.PID"]))
    pfc = pfc[abs(pfc.eta) < PARTICLE_ETA_MAX]
    truth = truth[(abs(truth.eta) < PARTICLE_ETA_MAX) & (truth.pt > TRUTH_PT_MIN)]
    pfc_in = near_any(pfc.eta, pfc.phi, chunk["Jet.Eta"], chunk["Jet.Phi"], IN_JET_DR)
    truth_in = near_any(truth.eta, truth.phi, chunk["GenJet.Eta"], chunk["GenJet.Phi"], IN_JET_DR)
    selections = {"all": (None, None), "in_jet": (pfc_in, truth_in), "out_jet": (~pfc_in, ~truth_in)}
    for category, (pfc_mask, truth_mask) in selections.items():
        p = pfc if pfc_mask is None else pfc[pfc_mask]
        t = truth if truth_mask is None else truth[truth_mask]
        p_counts, t_counts = ak.to_numpy(ak.num(p)), ak.to_numpy(ak.num(t))
        p_flat = {name: _flat(p[name]) for name in p.fields}
        t_flat = {name: _flat(t[name]) for name in t.fields}
        p_event = np.repeat(event, p_counts)
        prefix = f"particle.{category}"
        for name in ("pt", "eta", "phi", "x", "y", "z"):
            obs.add(f"{prefix}.{name}", p_flat[name], p_event)
        r, m = match_events(p_flat["eta"], p_flat["phi"], p_counts, t_flat["eta"], t_flat["phi"], t_counts,
                            PARTICLE_MATCH_DR)
        pair_event = p_event[r]
        relative, ok = _relative(p_flat["pt"][r], t_flat["pt"][m])
        obs.add(f"{prefix}.res.pt", relative, pair_event[ok])
        obs.add(f"{prefix}.res.eta", p_flat["eta"][r] - t_flat["eta"][m], pair_event)
        obs.add(f"{prefix}.res.phi", delta_phi(p_flat["phi"][r], t_flat["phi"][m]), pair_event)
        for name in ("x", "y", "z"):
            obs.add(f"{prefix}.res.{name}", p_flat[name][r] - t_flat[name][m], pair_event)
        known = t_flat["cls"][m] >= 0
        obs.confusion[category] += confusion_matrix(t_flat["cls"][m][known], p_flat["cls"][r][known])
        obs.count(f"{category}.pfcs", len(p_event))
        obs.count(f"{category}.truth", len(t_flat["pt"]))
        obs.count(f"{category}.matched", len(r))
        for cls, name in enumerate(CLASS_NAMES):
            obs.count(f"{category}.pfcs.{name}", np.count_nonzero(p_flat["cls"] == cls))
            obs.count(f"{category}.truth.{name}", np.count_nonzero(t_flat["cls"] == cls))
        if category == "all":
            fake = np.ones(len(p_event), dtype=bool)
            fake[r] = False
            for name in ("pt", "eta", "phi", "z"):
                obs.add(f"particle.fake.{name}", p_flat[name][fake], p_event[fake])
            obs.add("particle.fake.n", np.bincount(p_event[fake] - event[0], minlength=len(event))
                    if len(event) else np.zeros(0), event)
            for cls, name in enumerate(CLASS_NAMES):
                obs.count(f"fake.{name}", np.count_nonzero(p_flat["cls"][fake] == cls))


def truth_isolated(chunk: ak.Array) -> ak.Array:
    """The isolated truth electrons, muons and photons of each event (fields pt, eta, phi, pid = |PID|).

    Status 1, pT > :data:`ISOLATED_PT_MIN`, |eta| below the object's limit, and the scalar pT sum of the other
    status-1 non-neutrino truth particles within ΔR < :data:`TRUTH_ISOLATION_CONE` below
    :data:`TRUTH_ISOLATION_RATIO` × pT.
    """
    pid = abs(chunk["Particle.PID"])
    particles = ak.zip({"pt": chunk["Particle.PT"], "eta": chunk["Particle.Eta"], "phi": chunk["Particle.Phi"],
                        "pid": pid, "i": ak.local_index(pid)})
    visible = chunk["Particle.Status"] == 1
    for neutrino in NEUTRINOS:
        visible = visible & (pid != neutrino)
    eta_max = 0.0 * particles.eta
    for _, code, limit, _ in ISOLATED_OBJECTS.values():
        eta_max = ak.where(pid == code, limit, eta_max)
    others = particles[visible]
    candidates = particles[visible & (particles.pt > ISOLATED_PT_MIN) & (abs(particles.eta) < eta_max)]
    pairs = ak.cartesian({"c": candidates, "o": others}, axis=1, nested=True)
    c, o = pairs.c, pairs.o
    inside = ((c.eta - o.eta) ** 2 + delta_phi(c.phi, o.phi) ** 2 < TRUTH_ISOLATION_CONE**2) & (o.i != c.i)
    cone = ak.sum(o.pt * inside, axis=-1)
    return candidates[cone < TRUTH_ISOLATION_RATIO * candidates.pt]


def _isolated_objects(obs: FileObservables, chunk: ak.Array, event: np.ndarray) -> None:
    truth = truth_isolated(chunk)
    for name, (collection, code, _, _) in ISOLATED_OBJECTS.items():
        reco_pt = chunk[f"{collection}.PT"]
        reco_counts = ak.to_numpy(ak.num(reco_pt))
        obs.add(f"{name}.n", reco_counts, event)
        t = truth[truth.pid == code]
        t_counts = ak.to_numpy(ak.num(t))
        t_pt, t_eta, t_phi = _flat(t.pt), _flat(t.eta), _flat(t.phi)
        r, m = match_events(_flat(chunk[f"{collection}.Eta"]), _flat(chunk[f"{collection}.Phi"]), reco_counts,
                            t_eta, t_phi, t_counts, OBJECT_MATCH_DR)
        found = np.zeros(len(t_pt))
        found[m] = 1.0
        t_event = np.repeat(event, t_counts)
        obs.add(f"{name}.found", found, t_event)
        obs.add(f"{name}.response", _flat(reco_pt)[r] / t_pt[m], t_event[m])
        obs.count(f"{name}.truth", len(t_pt))
        obs.count(f"{name}.found", len(m))


def _met_jets(obs: FileObservables, chunk: ak.Array, event: np.ndarray) -> None:
    met, met_phi = _singleton(chunk, "MissingET.MET"), _singleton(chunk, "MissingET.Phi")
    obs.add("met.met", met, event)
    jet_pt, jet_phi = chunk["Jet.PT"], chunk["Jet.Phi"]
    jet_phi = jet_phi[ak.argsort(jet_pt, axis=1, ascending=False)]
    jet_pt = ak.sort(jet_pt, axis=1, ascending=False)
    hard_phi = jet_phi[jet_pt > DPHI_JET_PT_MIN][:, :DPHI_JETS]
    counts = ak.to_numpy(ak.num(hard_phi))
    dphi = np.abs(delta_phi(_flat(hard_phi), np.repeat(met_phi, counts)))
    with_jet = counts > 0
    starts = offsets(counts)[with_jet]
    obs.add("met.dphi_min_jets", np.minimum.reduceat(dphi, starts) if len(starts) else np.zeros(0), event[with_jet])
    obs.add("met.dphi_lead_jet", dphi[starts], event[with_jet])
