import itertools

import awkward as ak
import numpy as np
import pytest

from parnassus.card import IsolatedObject, Isolation, JetDefinition, Objects
from parnassus.events import make_pfcs
from parnassus.objects import build_objects, energy_correlation_ratios, isolated, jet_collection, missing_et
from parnassus.pdg import CHARGED_HADRON, ELECTRON, NEUTRAL_HADRON, PHOTON


def pfcs(events):
    """events: list of lists of (pt, eta, phi, charge, cls)."""
    flat = [p for event in events for p in event]
    cols = np.array(flat, dtype=float).reshape(-1, 5).T
    zeros = np.zeros(len(flat))
    return make_pfcs([len(e) for e in events], cols[0], cols[1], cols[2], cols[3].astype(int),
                     cols[4].astype(int), zeros, zeros, zeros)


TWO_JETS = [(50.0, 0.0, 0.0, 1, CHARGED_HADRON), (30.0, 0.1, 0.1, 0, PHOTON), (20.0, -0.1, 0.05, 0, NEUTRAL_HADRON),
            (40.0, 1.0, 3.0, -1, CHARGED_HADRON), (25.0, 1.2, 2.9, 0, PHOTON), (0.5, -2.0, -1.0, 1, CHARGED_HADRON)]


def test_jets_are_sums_of_their_constituents():
    particles = pfcs([TWO_JETS, []])
    jets, constituents = jet_collection(particles, JetDefinition(pt_min=20.0))
    assert ak.num(jets).tolist() == [2, 0]
    first = particles[0]
    lead = first[:3]
    px, py, pz, e = (float(ak.sum(lead[f])) for f in ("px", "py", "pz", "e"))
    assert jets.PT[0, 0] == pytest.approx(np.hypot(px, py))
    assert jets.Mass[0, 0] == pytest.approx(np.sqrt(e**2 - px**2 - py**2 - pz**2), rel=1e-6)
    assert jets.NCharged[0].tolist() == [1, 1] and jets.NNeutrals[0].tolist() == [2, 1]
    assert jets.Charge[0].tolist() == [1, -1]
    assert jets.EhadOverEem[0, 0] == pytest.approx(float(lead.e[2] / lead.e[1]))
    assert jets.ChargedEnergyFraction[0, 0] + jets.NeutralEnergyFraction[0, 0] == pytest.approx(1.0)
    assert jets.PT[0, 0] > jets.PT[0, 1]


def brute_force_ecf(pt, eta, phi):
    z = pt / pt.sum()

    def r(i, j):
        dphi = (phi[i] - phi[j] + np.pi) % (2 * np.pi) - np.pi
        return np.hypot(eta[i] - eta[j], dphi)

    n = range(len(pt))
    e2 = sum(z[i] * z[j] * r(i, j) for i, j in itertools.combinations(n, 2))
    e3 = sum(z[i] * z[j] * z[k] * r(i, j) * r(i, k) * r(j, k) for i, j, k in itertools.combinations(n, 3))
    return e3 / e2**2, e3 / e2**3


def test_c2_d2_match_the_definition():
    rng = np.random.default_rng(4)
    events = []
    for n in (7, 12, 2):
        events.append([(rng.uniform(1, 30), rng.normal(0, 0.2), rng.normal(3.1, 0.2), 0, PHOTON) for _ in range(n)])
    particles = pfcs(events)
    jets, constituents = jet_collection(particles, JetDefinition(radius=1.5, pt_min=1.0))
    c2, d2 = energy_correlation_ratios(constituents)
    for event in range(3):
        const = constituents[event, 0]
        expected = brute_force_ecf(*(ak.to_numpy(const[f]) for f in ("pt", "eta", "phi")))
        assert jets.C2[event, 0] == pytest.approx(expected[0], rel=1e-9)
        assert jets.D2[event, 0] == pytest.approx(expected[1], rel=1e-9)
    assert jets.C2[2, 0] == 0.0  # two constituents: e3 = 0


ELECTRONS = IsolatedObject(pt_min=10.0, eta_max=2.5, isolation=Isolation(cone=0.5, pt_min=0.5, ratio_max=0.12))


def test_isolation_sums_and_selection():
    lone = [(40.0, 0.0, 0.0, -1, ELECTRON), (2.0, 0.3, 0.0, 1, CHARGED_HADRON), (2.0, 0.0, 0.4, 0, PHOTON),
            (0.4, 0.1, 0.0, 1, CHARGED_HADRON), (50.0, 0.0, 1.0, 0, PHOTON)]
    busy = [(40.0, 0.0, 0.0, -1, ELECTRON), (10.0, 0.2, 0.0, 1, CHARGED_HADRON)]
    leaves, used = isolated(pfcs([lone, busy]), ELECTRON, ELECTRONS)
    assert ak.num(leaves).tolist() == [1, 0]
    assert leaves.SumPtCharged[0, 0] == pytest.approx(2.0)  # 0.4 GeV is below the isolation pT threshold
    assert leaves.SumPtNeutral[0, 0] == pytest.approx(2.0)  # the photon at dR = 1 is outside the cone
    assert leaves.IsolationVar[0, 0] == pytest.approx(4.0 / 40.0)  # the electron itself is not counted
    assert used.tolist() == [[True, False, False, False, False], [False, False]]


def test_jets_containing_isolated_objects_are_removed():
    event = [(40.0, 0.0, 0.0, -1, ELECTRON), (60.0, 2.0, 2.0, 1, CHARGED_HADRON), (45.0, -1.0, -2.0, 0, PHOTON)]
    objects = build_objects(pfcs([event]), pfcs([event]), Objects(electrons=ELECTRONS, photons=ELECTRONS))
    assert ak.num(objects["Electron"]).tolist() == [1]
    assert ak.num(objects["Photon"]).tolist() == [1]
    assert objects["Jet"].PT.tolist() == [[pytest.approx(60.0)]]
    assert ak.num(objects["GenJet"]).tolist() == [3]


def test_missing_et_is_minus_the_vector_sum():
    particles = pfcs([[(10.0, 0.0, 0.0, 0, PHOTON), (4.0, 0.0, np.pi / 2, 0, PHOTON)], []])
    met = missing_et(particles)
    assert ak.num(met).tolist() == [1, 1]
    assert met.MET[0, 0] == pytest.approx(np.hypot(10, 4))
    assert met.Phi[0, 0] == pytest.approx(np.arctan2(-4, -10))
    assert met.MET[1, 0] == 0.0


def test_isolation_excludes_leptons_and_separates_pileup_by_dz():
    from parnassus.card import Isolation
    from parnassus.pdg import MUON

    # (pt, eta, phi, charge, cls, z): a muon at the primary vertex and, in its cone, a 3 GeV track from the same
    # vertex, a 6 GeV track 40 mm away (pileup), a 2 GeV photon and a 5 GeV electron
    event = [(20.0, 0.0, 0.0, -1, MUON, 0.0), (3.0, 0.1, 0.0, 1, CHARGED_HADRON, 0.0),
             (6.0, 0.0, 0.2, -1, CHARGED_HADRON, 40.0), (2.0, 0.2, 0.1, 0, PHOTON, 0.0),
             (5.0, -0.1, 0.1, 1, ELECTRON, 0.0)]
    cols = np.array(event, dtype=float).T
    particles = make_pfcs([len(event)], cols[0], cols[1], cols[2], cols[3].astype(int), cols[4].astype(int),
                          np.zeros(len(event)), np.zeros(len(event)), cols[5])

    def muons(pileup_dz, ratio_max=0.25):
        spec = IsolatedObject(pt_min=10.0, eta_max=2.4, isolation=Isolation(cone=0.5, pt_min=0.5, ratio_max=ratio_max,
                                                                            pileup_dz=pileup_dz))
        return isolated(particles, MUON, spec)[0]

    with_dz = muons(1.0)
    assert ak.num(with_dz).tolist() == [1]  # (3 + 2) / 20 = 0.25: passes at <=
    leaves = with_dz[0, 0]
    assert leaves.SumPtCharged == pytest.approx(3.0)  # the electron is not counted (EFlowFilter)
    assert leaves.SumPtChargedPU == pytest.approx(6.0)
    assert leaves.SumPtNeutral == pytest.approx(2.0)
    assert leaves.SumPt == pytest.approx(11.0)
    assert leaves.IsolationVarRhoCorr == pytest.approx((3.0 + 2.0) / 20.0)
    assert leaves.IsolationVar == pytest.approx((3.0 + max(2.0 - 0.5 * 6.0, 0.0)) / 20.0)
    assert ak.num(muons(1.0, ratio_max=0.2)).tolist() == [0]  # the cut is on IsolationVarRhoCorr, not IsolationVar
    # without the dz cut every track is from the primary vertex: (3 + 6 + 2) / 20 = 0.55, not isolated
    assert ak.num(muons(None)).tolist() == [0]
    leaves = muons(None, ratio_max=1.0)[0, 0]
    assert leaves.SumPtCharged == pytest.approx(9.0) and leaves.SumPtChargedPU == 0.0
    assert leaves.IsolationVarRhoCorr == pytest.approx(0.55) and leaves.IsolationVar == pytest.approx(0.55)
    # the Delta-beta correction subtracts half the pileup from the neutrals: 2 GeV of neutrals, 2 GeV of pileup
    event[2] = (2.0, 0.0, 0.2, -1, CHARGED_HADRON, 40.0)
    cols = np.array(event, dtype=float).T
    particles = make_pfcs([len(event)], cols[0], cols[1], cols[2], cols[3].astype(int), cols[4].astype(int),
                          np.zeros(len(event)), np.zeros(len(event)), cols[5])
    assert muons(1.0)[0, 0].IsolationVar == pytest.approx((3.0 + 2.0 - 0.5 * 2.0) / 20.0)
