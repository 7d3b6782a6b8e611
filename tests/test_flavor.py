"""Jet flavour, b- and tau-tagging and jet energy scale (Delphes' JetFlavorAssociation, BTagging, TauTagging,
JetEnergyScale), and the generator history they read."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pyhepmc
import pytest
import uproot
import yaml

from parnassus.card import (
    BTagEfficiency,
    BTagging,
    JetFlavor,
    Objects,
    TauTagEfficiency,
    TauTagging,
    TruthCuts,
    load_card,
)
from parnassus.errors import CardError
from parnassus.events import HISTORY_FIELDS, RunCounts, TruthBatch, make_pfcs
from parnassus.formula import Formula
from parnassus.io.hepmc import HepMCReader, generator_history
from parnassus.objects import build_objects, counter_uniform, jet_collection, jet_flavor
from parnassus.run import batch_collections

from .conftest import CARD, EXAMPLE, write_events

# A hand-made event with its history: (key, pid, status, pt, eta, phi, mother key); the beam is key 0.
# Jets along: b (0, 0), c (0, 2), gluon (0, -2), u + gluon (1.5, -0.9), nothing (-1.5, 1) with a b quark of
# 0.5 GeV (below PartonPTMin) at its centre, a tau- decaying hadronically (-1, -2.6; the first tau is a copy).
HISTORY_EVENT = [
    ("b", 5, 23, 60.0, 0.0, 0.0, 0), ("B+", 521, 2, 55.0, 0.0, 0.0, "b"), ("D0", 421, 2, 35.0, 0.02, 0.02, "B+"),
    ("pi1", 211, 1, 20.0, -0.05, 0.0, "B+"), ("K1", -321, 1, 20.0, 0.0, 0.05, "D0"),
    ("pi2", 211, 1, 15.0, 0.05, 0.0, "D0"),
    ("c", 4, 23, 50.0, 0.0, 2.0, 0), ("D+", 411, 2, 50.0, 0.0, 2.0, "c"), ("K2", -321, 1, 20.0, 0.0, 2.0, "D+"),
    ("pi3", 211, 1, 15.0, 0.05, 2.0, "D+"), ("pi4", 211, 1, 15.0, 0.0, 2.05, "D+"),
    ("g", 21, 23, 50.0, 0.0, -2.0, 0), ("pi5", 211, 1, 25.0, 0.0, -2.0, "g"), ("pi6", -211, 1, 25.0, 0.05, -2.0, "g"),
    ("u", 2, 23, 40.0, 1.5, -0.9, 0), ("g2", 21, 51, 10.0, 1.55, -0.9, "u"), ("pi7", 211, 1, 20.0, 1.5, -0.9, "u"),
    ("KL", 130, 1, 20.0, 1.5, -0.85, "g2"),
    ("soft b", 5, 71, 0.5, -1.5, 1.0, 0), ("pi8", 211, 1, 20.0, -1.5, 1.0, 0), ("pi9", -211, 1, 20.0, -1.45, 1.0, 0),
    ("tau copy", 15, 23, 45.0, -1.0, -2.6, 0), ("tau", 15, 2, 45.0, -1.0, -2.6, "tau copy"),
    ("pi10", -211, 1, 30.0, -1.0, -2.6, "tau"), ("pi0", 111, 2, 10.0, -1.0, -2.55, "tau"),
    ("nu", 16, 1, 5.0, -0.9, -2.7, "tau"), ("gamma1", 22, 1, 5.0, -1.0, -2.55, "pi0"),
    ("gamma2", 22, 1, 5.0, -1.02, -2.55, "pi0"),
]
JET_DIRECTIONS = {"b": (0.0, 0.0), "c": (0.0, 2.0), "gluon": (0.0, -2.0), "light": (1.5, -0.9),
                  "none": (-1.5, 1.0), "tau": (-1.0, -2.6)}


def history_genevent(number: int = 0, momentum_unit: str = "GEV") -> pyhepmc.GenEvent:
    from particle import Particle

    scale = 1000.0 if momentum_unit == "MEV" else 1.0
    event = pyhepmc.GenEvent(getattr(pyhepmc.Units, momentum_unit), pyhepmc.Units.MM)
    event.event_number = number
    particles = {0: pyhepmc.GenParticle(pyhepmc.FourVector(0, 0, 3500 * scale, 3500 * scale), 2212, 4)}
    vertices = {}
    for key, pid, status, pt, eta, phi, mother in HISTORY_EVENT:
        mass = 0.0 if abs(pid) <= 5 or pid == 21 else (Particle.from_pdgid(pid).mass or 0.0) / 1000.0
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        energy = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
        particle = pyhepmc.GenParticle(pyhepmc.FourVector(px * scale, py * scale, pz * scale, energy * scale), pid,
                                       status)
        particle.generated_mass = mass * scale
        if mother not in vertices:
            vertices[mother] = pyhepmc.GenVertex()
            vertices[mother].add_particle_in(particles[mother])
            event.add_vertex(vertices[mother])
        vertices[mother].add_particle_out(particle)
        particles[key] = particle
    event.weights = [1.0]
    return event


def read(path, batch_size: int = 10, cuts: TruthCuts | None = None, max_events: int | None = None,
         history: JetFlavor | None = None) -> list[TruthBatch]:
    """The batches of a file, with the generator history within ``history``'s cuts (default Delphes CMS')."""
    return list(HepMCReader(path, cuts or TruthCuts(), batch_size, RunCounts(), max_events=max_events,
                            history=history or JetFlavor()))


def truth_pfcs(particles: ak.Array) -> ak.Array:
    """The truth particles as particle-flow candidates (a perfect detector), so that jets are the GenJets."""
    flat = ak.flatten(particles)
    return make_pfcs(ak.num(particles), *(ak.to_numpy(flat[f]) for f in ("pt", "eta", "phi", "charge", "cls")),
                     *(np.zeros(len(flat)),) * 3)


def jet_at(jets: ak.Array, eta: float, phi: float) -> int:
    """Index of the jet of the (single-event) ``jets`` nearest to (eta, phi)."""
    dphi = (ak.to_numpy(jets.Phi) - phi + np.pi) % (2 * np.pi) - np.pi
    return int(np.argmin(np.hypot(ak.to_numpy(jets.Eta) - eta, dphi)))


@pytest.fixture
def history_file(tmp_path):
    return write_events(tmp_path / "history.hepmc", [history_genevent(i) for i in range(2)])


# -- the history the readers keep ----------------------------------------------------------------------------------

def test_reader_keeps_partons_weakly_decaying_heavy_hadrons_and_last_taus(history_file):
    (batch,) = read(history_file, history=JetFlavor(pt_min=0.0))
    assert set(batch.history.fields) == set(HISTORY_FIELDS)
    event = batch.history[0]
    pids = sorted(ak.to_list(event.pid))
    # partons b, c, g, u, g (status 51), soft b; B+ (its daughter D0 is charm, not bottom), D0, D+; the last tau
    assert pids == sorted([5, 4, 21, 2, 21, 5, 521, 421, 411, 15])
    (batch,) = read(history_file, history=JetFlavor(pt_min=1.0, eta_max=1.2))  # the card's cuts: fewer
    assert sorted(ak.to_list(batch.history.pid[0])) == sorted([5, 4, 21, 521, 421, 411, 15])
    assert list(HepMCReader(history_file, TruthCuts(), 10, RunCounts()))[0].history is None  # not asked for
    tau = event[event.pid == 15][0]
    assert tau.status == 2 and tau.pt == pytest.approx(45.0)
    # visible momentum: the daughters but the neutrino (pi- 30 GeV + pi0 10 GeV, nearly collinear)
    assert tau.vis_pt == pytest.approx(40.0, rel=2e-3)
    assert tau.vis_eta == pytest.approx(-1.0, abs=0.02) and tau.vis_phi == pytest.approx(-2.5875, abs=0.01)
    assert ak.num(batch.particles).tolist() == [15, 15]  # the final state (neutrino dropped) is unchanged


def test_history_is_in_gev_whatever_the_file_units(tmp_path):
    gev = read(write_events(tmp_path / "gev.hepmc", [history_genevent(0)]))[0].history
    mev = read(write_events(tmp_path / "mev.hepmc", [history_genevent(0, "MEV")]))[0].history
    for field in HISTORY_FIELDS:
        np.testing.assert_allclose(ak.to_numpy(ak.flatten(mev[field])), ak.to_numpy(ak.flatten(gev[field])),
                                   rtol=1e-9, err_msg=field)
    assert ak.max(gev.pt) == pytest.approx(60.0)


def test_generator_history_of_a_record():
    # 0 tau+ (copy) -> 1 tau+ -> 2 e+ 3 nu_e 4 nu_taubar (leptonic: kept, as Delphes 3.5.1 does; visible = e+ nu_e);
    # 5 B0 -> 6 B0bar (mixing: not the last b hadron) -> 7 D- (last c) 8 pi+; 9 d quark (status 1: not a parton)
    pid = np.array([-15, -15, -11, 12, -16, 511, -511, -411, 211, 1])
    status = np.array([23, 2, 1, 1, 1, 2, 2, 2, 1, 1])
    parent = np.array([-1, 0, 1, 1, 1, -1, 5, 6, 6, -1])
    momentum = np.zeros((4, 10))
    momentum[0] = [20, 20, 8, 4, 8, 30, 30, 20, 10, 5]  # px
    momentum[3] = np.abs(momentum[0]) + 1.0
    history = generator_history(pid, status, momentum, parent)
    assert history["pid"].tolist() == [-15, -511, -411]
    assert history["vis_pt"].tolist() == pytest.approx([12.0, 30.0, 20.0])
    assert history["pt"].tolist() == pytest.approx([20.0, 30.0, 20.0])


# -- flavour ---------------------------------------------------------------------------------------------------------

def test_flavor_of_jets_in_a_hand_made_event(history_file):
    (batch,) = read(history_file)
    pfcs = truth_pfcs(batch.particles)
    jets = build_objects(batch.particles, pfcs, Objects(), history=batch.history)["Jet"][0]
    assert len(jets) == len(JET_DIRECTIONS)
    flavor = {name: int(jets.Flavor[jet_at(jets, *where)]) for name, where in JET_DIRECTIONS.items()}
    # Delphes' codes: highest quark |PDG id|, 21 for gluons only, 0 for nothing (the soft b is below PartonPTMin)
    assert flavor == {"b": 5, "c": 4, "gluon": 21, "light": 2, "none": 0, "tau": 0}
    hadrons = build_objects(batch.particles, pfcs, Objects(jet_flavor=JetFlavor(definition="hadrons")),
                            history=batch.history)["Jet"][0]
    flavor = {name: int(hadrons.Flavor[jet_at(hadrons, *where)]) for name, where in JET_DIRECTIONS.items()}
    assert flavor == {"b": 5, "c": 4, "gluon": 0, "light": 0, "none": 0, "tau": 0}
    without = build_objects(batch.particles, pfcs, Objects())["Jet"]  # no history: Delphes' 0
    assert ak.all(without.Flavor == 0) and ak.all(without.BTag == 0)


def _history(rows: list[list[tuple]]) -> ak.Array:
    """History of several events from (pid, status, pt, eta, phi) rows (visible momentum = own)."""
    flat = [r for event in rows for r in event]
    columns = {name: np.array([r[i] for r in flat]) for i, name in enumerate(("pid", "status", "pt", "eta", "phi"))}
    columns |= {"vis_pt": columns["pt"], "vis_eta": columns["eta"], "vis_phi": columns["phi"]}
    return TruthBatch.jagged(np.array([len(e) for e in rows]), columns, HISTORY_FIELDS)


def _jets(positions: list[list[tuple]]) -> ak.Array:
    """Jets (PT, Eta, Phi, Mass) of several events from (pt, eta) rows at phi 0."""
    counts = [len(e) for e in positions]
    pt = np.array([p[0] for e in positions for p in e], dtype=float)
    eta = np.array([p[1] for e in positions for p in e], dtype=float)
    zero = np.zeros(len(pt))
    unsigned = np.zeros(len(pt), dtype=np.uint32)
    leaves = {"PT": pt, "Eta": eta, "Phi": zero, "Mass": zero, "Flavor": unsigned, "FlavorAlgo": unsigned,
              "FlavorPhys": unsigned, "BTag": unsigned, "BTagAlgo": unsigned, "BTagPhys": unsigned,
              "TauTag": unsigned}
    return ak.unflatten(ak.zip(leaves), counts)


def test_parton_cuts_and_delta_r():
    jets = _jets([[(50.0, 0.0), (50.0, 2.4), (50.0, -1.0)]])
    history = _history([[
        (5, 23, 20.0, 0.49, 0.0),   # b within 0.5 of the first jet
        (4, 62, 20.0, 2.45, 0.0),   # c within 0.5 of the second...
        (5, 71, 20.0, 2.6, 0.0),    # ...and a b beyond PartonEtaMax
        (5, 23, 20.0, -1.51, 0.0),  # b just outside Delta R 0.5 of the third
        (-3, 43, 2.0, -1.0, 0.1),   # anti-s inside
        (21, 43, 30.0, -1.0, -0.1),  # gluon inside: lower priority than any quark
        (-5, 1, 20.0, -1.0, 0.0),   # status 1 is not a parton
    ]])
    assert jet_flavor(jets, history, JetFlavor()).tolist() == [[5, 4, 3]]
    assert jet_flavor(jets, history, JetFlavor(delta_r=0.52, eta_max=2.7)).tolist() == [[5, 5, 5]]
    assert jet_flavor(jets, history, JetFlavor(pt_min=2.5)).tolist() == [[5, 4, 21]]


# -- tagging ---------------------------------------------------------------------------------------------------------

def _b_tagging(b: str, c: str, other: str, bit: int = 0) -> BTagging:
    return BTagging(efficiency=BTagEfficiency(b=Formula(b), c=Formula(c), other=Formula(other)), bit=bit)


def _tau_tagging(tau: str, other: str) -> TauTagging:
    return TauTagging(efficiency=TauTagEfficiency(tau=Formula(tau), other=Formula(other)))


def test_tags_with_efficiency_one_zero_and_per_flavor(history_file):
    (batch,) = read(history_file)
    pfcs = truth_pfcs(batch.particles)

    def jets(**objects):
        return build_objects(batch.particles, pfcs, Objects(**objects), history=batch.history, seed=3)["Jet"]

    assert ak.all(jets(b_tagging=_b_tagging("1", "1", "1")).BTag == 1)
    assert ak.all(jets(b_tagging=_b_tagging("0", "0", "0")).BTag == 0)
    per_flavor = jets(b_tagging=_b_tagging("1", "0", "0", bit=3))
    assert ak.to_list(per_flavor.BTag) == ak.to_list(ak.where(per_flavor.Flavor == 5, 8, 0))
    charm = jets(b_tagging=_b_tagging("0", "1", "0"))
    assert ak.to_list(charm.BTag) == ak.to_list(ak.values_astype(charm.Flavor == 4, np.uint32))
    assert ak.all(charm.BTagAlgo == 0) and ak.all(charm.BTagPhys == 0)  # FlavorAlgo/Phys 0: the "other" formula
    # pT-dependent: evaluated at each jet's pT (b jet 55 GeV, c jet 50 GeV)
    by_pt = jets(b_tagging=_b_tagging("pt > 52", "pt > 52", "0"))
    assert ak.sum(by_pt.BTag) == 2 and ak.all(by_pt.BTag[by_pt.Flavor == 4] == 0)

    taus = jets(tau_tagging=_tau_tagging("1", "0"))
    tau_jet = jet_at(taus[0], *JET_DIRECTIONS["tau"])
    assert ak.to_list(taus.TauTag[0]) == [int(i == tau_jet) for i in range(len(taus[0]))]
    assert ak.to_list(taus.TauFlavor[0]) == [15 * int(i == tau_jet) for i in range(len(taus[0]))]
    assert taus.Charge[0, tau_jet] == -1  # the tau-'s charge
    assert ak.all(abs(taus.Charge) == 1)  # Delphes gives the other jets a random charge of +-1
    assert ak.to_list(taus.TauWeight[0]) == [float(i == tau_jet) for i in range(len(taus[0]))]
    assert ak.all(jets(tau_tagging=_tau_tagging("0", "0")).TauTag == 0)
    assert ak.all(jets(tau_tagging=_tau_tagging("1", "1")).TauTag == 1)
    untagged = jets()
    assert ak.all(untagged.BTag == 0) and ak.all(untagged.TauTag == 0) and ak.all(untagged.TauFlavor == 0)


def test_tag_rates_follow_the_efficiency():
    n_events, per_event = 400, 5
    jets = _jets([[(40.0, 0.0)] * per_event] * n_events)
    jets = ak.with_field(jets, ak.values_astype(ak.zeros_like(jets.PT) + 5, np.uint32), "Flavor")
    objects = Objects(b_tagging=_b_tagging("0.3", "1", "0"))
    from parnassus.objects import tag_jets

    tagged = tag_jets(jets, objects, None, seed=1, events=np.arange(n_events))
    rate = float(ak.mean(tagged.BTag))
    assert rate == pytest.approx(0.3, abs=4 * np.sqrt(0.3 * 0.7 / (n_events * per_event)))
    u = counter_uniform(7, np.repeat(np.arange(1000), 10), np.tile(np.arange(10), 1000), 1)
    assert np.all((u > 0) & (u <= 1)) and len(np.unique(u)) == len(u)
    assert abs(u.mean() - 0.5) < 0.01 and abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.03


def test_same_seed_same_tags_whatever_the_batch_size():
    card = load_card(CARD)
    objects = Objects(jet_energy_scale=card.objects.jet_energy_scale, b_tagging=_b_tagging("0.5", "0.5", "0.5"),
                      tau_tagging=_tau_tagging("0.5", "0.5"))
    cuts = card.truth

    def jets(batch_size: int, seed: int) -> ak.Array:
        collections = [batch_collections(batch, truth_pfcs(batch.particles), objects, seed)["Jet"]
                       for batch in read(EXAMPLE, batch_size, cuts, max_events=14)]
        return ak.concatenate(collections)

    seven, one = jets(7, 11), jets(1, 11)
    for leaf in ("PT", "Flavor", "BTag", "BTagAlgo", "BTagPhys", "TauTag", "Charge"):
        assert ak.to_list(seven[leaf]) == ak.to_list(one[leaf]), leaf
    assert 0.3 < ak.mean(seven.BTag) < 0.7
    other = jets(7, 12)
    assert ak.to_list(other.BTag) != ak.to_list(seven.BTag)
    assert ak.any(seven.Flavor == 5) and ak.any(seven.Flavor == 21)


# -- jet energy scale ------------------------------------------------------------------------------------------------

def test_energy_scale_scales_jets_not_genjets(history_file):
    (batch,) = read(history_file)
    pfcs = truth_pfcs(batch.particles)
    plain = build_objects(batch.particles, pfcs, Objects(), history=batch.history)
    scaled = build_objects(batch.particles, pfcs, Objects(jet_energy_scale=Formula("1.1")), history=batch.history)
    assert ak.to_list(scaled["GenJet"].PT) == ak.to_list(plain["GenJet"].PT)
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(scaled["Jet"].PT)),
                               1.1 * ak.to_numpy(ak.flatten(plain["Jet"].PT)))
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(scaled["Jet"].Mass)),
                               1.1 * ak.to_numpy(ak.flatten(plain["Jet"].Mass)), rtol=1e-6)
    assert ak.to_list(scaled["Jet"].Eta) == ak.to_list(plain["Jet"].Eta)
    assert ak.to_list(scaled["Jet"].Flavor) == ak.to_list(plain["Jet"].Flavor)
    # the Delphes CMS formula, evaluated at the unscaled jet's pT, eta and energy
    delphes = load_card(CARD).objects.jet_energy_scale
    raw, _ = jet_collection(pfcs, Objects().jets)
    pt, eta, mass = (ak.to_numpy(ak.flatten(raw[f])) for f in ("PT", "Eta", "Mass"))
    expected = pt * delphes(pt, eta, np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2))
    corrected, _ = jet_collection(pfcs, Objects().jets, delphes)
    np.testing.assert_allclose(np.sort(ak.to_numpy(ak.flatten(corrected.PT))), np.sort(expected), rtol=1e-9)
    assert np.all(expected / pt > 1.0) and np.all(expected / pt < 1.2)  # 20-60 GeV jets: +3 to +15%


def test_energy_scale_reorders_jets_and_tags_use_the_scaled_pt():
    particles = make_pfcs([2], np.array([50.0, 30.0]), np.array([0.0, 1.5]), np.array([0.0, 2.0]),
                          np.array([1, 1]), np.zeros(2, dtype=int), *(np.zeros(2),) * 3)
    objects = Objects(jet_energy_scale=Formula("1 + 1.2 * (abs(eta) > 1)"), b_tagging=_b_tagging("0", "0", "pt > 60"))
    jets = build_objects(particles, particles, objects)["Jet"]
    assert jets.PT.tolist() == [[pytest.approx(66.0), pytest.approx(50.0)]]
    assert jets.Eta.tolist()[0][0] == pytest.approx(1.5)
    assert jets.BTag.tolist() == [[1, 0]]


# -- cards and output ------------------------------------------------------------------------------------------------

def _card(tmp_path, change):
    data = yaml.safe_load(CARD.read_text())
    change(data["objects"])
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("change, message", [
    (lambda o: o["b_tagging"]["efficiency"].update(b="1.5"), "objects.b_tagging.efficiency.b: gives 1.5"),
    (lambda o: o["tau_tagging"]["efficiency"].update(tau="pt"), "objects.tau_tagging.efficiency.tau: gives"),
    (lambda o: o.update(jet_energy_scale="1 - pt / 100"), "objects.jet_energy_scale: gives"),
    (lambda o: o["b_tagging"].update(bit=32), "objects.b_tagging.bit: must be <= 31"),
    (lambda o: o["jet_flavor"].update(definition="ghosts"), "objects.jet_flavor.definition: expected one of"),
    (lambda o: o["b_tagging"]["efficiency"].pop("c"), "objects.b_tagging.efficiency.c: missing required key"),
])
def test_bad_tagging_cards(tmp_path, change, message):
    with pytest.raises(CardError, match=message.replace(".", r"\.")):
        load_card(_card(tmp_path, change))


def test_shipped_cards_have_the_delphes_cms_numbers():
    for name in ("delphes_cms_like", "refsim_cms2011", "cms2011"):
        objects = load_card(CARD.parent / f"{name}.yaml").objects
        assert objects.b_tagging.efficiency.b(np.array([100.0]), np.array([0.0]))[0] == pytest.approx(
            0.85 * np.tanh(0.25) * 25.0 / 7.3)
        assert objects.tau_tagging.efficiency.tau(np.array([50.0]), np.array([0.0]))[0] == 0.6
        jes = objects.jet_energy_scale(np.array([25.0]), np.array([0.0]))[0]
        if name == "delphes_cms_like":  # Delphes' formula; the refsim cards' is fitted to refsim (fit_jes.py)
            assert jes == pytest.approx(np.sqrt(1.25))
        else:
            assert jes == pytest.approx(np.sqrt(1.830**2 / 25.0 + 0.9885))
        assert objects.jet_flavor == JetFlavor(delta_r=0.5, pt_min=1.0, eta_max=2.5)


def test_run_output_has_flavor_and_tags_with_delphes_types(example_run):
    with uproot.open(example_run) as file:
        tree = file["Delphes"]
        types = {leaf: tree[f"Jet.{leaf}"].typename for leaf in
                 ("Flavor", "FlavorAlgo", "FlavorPhys", "TauFlavor", "BTag", "BTagAlgo", "BTagPhys", "TauTag",
                  "TauWeight", "Charge")}
        jets = tree.arrays(["Jet.Flavor", "Jet.BTag", "Jet.PT", "GenJet.Flavor"])
    assert types == {"Flavor": "uint32_t[]", "FlavorAlgo": "uint32_t[]", "FlavorPhys": "uint32_t[]",
                     "TauFlavor": "uint32_t[]", "BTag": "uint32_t[]", "BTagAlgo": "uint32_t[]",
                     "BTagPhys": "uint32_t[]", "TauTag": "uint32_t[]", "TauWeight": "float[]", "Charge": "int32_t[]"}
    flavor = ak.flatten(jets["Jet.Flavor"])
    assert ak.sum(flavor == 5) > 0.1 * len(flavor)  # ttbar
    assert 0 < ak.sum(jets["Jet.BTag"][jets["Jet.Flavor"] == 5]) < ak.sum(flavor == 5)
    assert ak.all(jets["GenJet.Flavor"] == 0)  # as in Delphes' CMS card


def test_heavy_quark_content_of_pdg_codes():
    from parnassus.pdg import has_quark

    pids = np.array([511, -521, 541, 5122, 4122, -421, 211, 15, 5, 1000005, 5101, 100443, 9000553])
    np.testing.assert_array_equal(has_quark(pids, 5), [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(has_quark(pids, 4), [0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0])
    as_awkward = has_quark(ak.Array([[511, 211], [4122]]), 5)
    assert as_awkward.tolist() == [[True, False], [False]]
