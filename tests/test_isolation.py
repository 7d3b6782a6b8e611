"""Isolation as Delphes' Isolation module with pileup: the sums, rho (Delphes' Rho module) and its correction,
and the pileup origin (IsPU) that the reference simulation writes."""

import subprocess
import sys

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

from parnassus.card import IsolatedObject, Isolation, Objects, Rho, load_card
from parnassus.errors import CardError
from parnassus.events import RunCounts, make_pfcs
from parnassus.io.hepmc import HepMCReader
from parnassus.objects import build_objects, isolated
from parnassus.pdg import CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON
from parnassus.refsim.pileup import write_pool
from parnassus.rho import EventRho, event_rho
from parnassus.run import run

from .conftest import CARD, EXAMPLE, ROOT

REFSIM_CARD = ROOT / "cards" / "refsim_cms2011.yaml"


def candidates(events: list[list[tuple]]) -> ak.Array:
    """PFCs from (pt, eta, phi, charge, cls, z) tuples, one list per event."""
    flat = np.array([p for event in events for p in event], dtype=float).reshape(-1, 6).T
    zeros = np.zeros(flat.shape[1])
    return make_pfcs([len(e) for e in events], flat[0], flat[1], flat[2], flat[3].astype(int), flat[4].astype(int),
                     zeros, zeros, flat[5])


def muons(ratio_max: float = 1.0, pileup_dz: float | None = 1.0, use_rho_correction: bool = True) -> IsolatedObject:
    return IsolatedObject(pt_min=10.0, eta_max=2.4, isolation=Isolation(
        cone=0.5, pt_min=0.5, ratio_max=ratio_max, pileup_dz=pileup_dz, use_rho_correction=use_rho_correction))


# a 20 GeV muon at z = 0 and, in its cone, a 3 GeV track 0.3 mm away (same vertex), a 2 GeV photon, a 1 GeV
# neutral hadron, a 5 GeV electron (not counted: Delphes' EFlowFilter drops leptons); a 50 GeV photon outside
HARD = [(20.0, 0.0, 0.0, -1, MUON, 0.0), (3.0, 0.1, 0.0, 1, CHARGED_HADRON, 0.3), (2.0, 0.2, 0.1, 0, PHOTON, 0.0),
        (1.0, -0.2, -0.2, 0, NEUTRAL_HADRON, 0.0), (5.0, -0.1, 0.1, 1, ELECTRON, 0.0),
        (50.0, 0.0, 1.0, 0, PHOTON, 0.0)]
# pileup on top: a 4 GeV track 30 mm away, a 2.5 GeV one 12 mm away (the other side), a 1.5 GeV photon in the cone
PILEUP = [(4.0, 0.3, 0.0, 1, CHARGED_HADRON, 30.0), (2.5, 0.0, -0.3, -1, CHARGED_HADRON, -12.0),
          (1.5, -0.3, 0.1, 0, PHOTON, 0.0)]


def test_isolation_sums_with_and_without_pileup():
    clean, _ = isolated(candidates([HARD]), MUON, muons())
    busy, _ = isolated(candidates([HARD + PILEUP]), MUON, muons())
    for leaves in (clean, busy):
        assert ak.num(leaves).tolist() == [1]
        assert leaves.SumPtCharged[0, 0] == pytest.approx(3.0)  # the nearby track; never the electron
    assert clean.SumPtChargedPU[0, 0] == 0.0 and busy.SumPtChargedPU[0, 0] == pytest.approx(6.5)
    assert clean.SumPtNeutral[0, 0] == pytest.approx(3.0) and busy.SumPtNeutral[0, 0] == pytest.approx(4.5)
    assert busy.SumPt[0, 0] == pytest.approx(3.0 + 6.5 + 4.5)
    # Delta-beta: half the charged pileup taken off the neutrals, never below 0; rho 0: no correction
    assert busy.IsolationVar[0, 0] == pytest.approx((3.0 + max(4.5 - 0.5 * 6.5, 0.0)) / 20.0)
    assert clean.IsolationVar[0, 0] == pytest.approx(6.0 / 20.0)
    assert busy.IsolationVarRhoCorr[0, 0] == pytest.approx(7.5 / 20.0)
    # no pileup_dz: every track counts as from the muon's vertex
    every, _ = isolated(candidates([HARD + PILEUP]), MUON, muons(pileup_dz=None))
    assert every.SumPtCharged[0, 0] == pytest.approx(9.5) and every.SumPtChargedPU[0, 0] == 0.0
    # the cut: on IsolationVarRhoCorr (7.5 / 20), or on IsolationVar (4.25 / 20) without use_rho_correction
    assert ak.num(isolated(candidates([HARD + PILEUP]), MUON, muons(0.3))[0]).tolist() == [0]
    assert ak.num(isolated(candidates([HARD + PILEUP]), MUON, muons(0.3, use_rho_correction=False))[0]).tolist() == [1]


def test_rho_correction_per_eta_range():
    # two muons, at eta 0.2 and 2.0, each with 3 GeV of neutrals and 1 GeV of charged in its cone
    def muon_with_cone(eta: float) -> list[tuple]:
        return [(20.0, eta, 0.0, -1, MUON, 0.0), (2.0, eta + 0.1, 0.1, 0, PHOTON, 0.0),
                (1.0, eta - 0.1, -0.1, 0, NEUTRAL_HADRON, 0.0), (1.0, eta, 0.2, 1, CHARGED_HADRON, 0.0)]

    pfcs = candidates([muon_with_cone(0.2), muon_with_cone(2.0)])
    area = np.pi * 0.5**2
    rho = EventRho(values=np.array([[2.0, 8.0], [2.0, 1.0]]), edges=np.array([[0.0, 1.5], [1.5, 2.5]]))
    leaves, _ = isolated(pfcs, MUON, muons(), rho)
    # event 0: the muon at 0.2 takes rho 2; event 1: the muon at 2.0 takes that event's second range, rho 1
    assert leaves.IsolationVarRhoCorr[0, 0] == pytest.approx((1.0 + 3.0 - 2.0 * area) / 20.0)
    assert leaves.IsolationVarRhoCorr[1, 0] == pytest.approx((1.0 + 3.0 - 1.0 * area) / 20.0)
    assert leaves.SumPtNeutral.tolist() == [[pytest.approx(3.0)], [pytest.approx(3.0)]]  # the sums stay raw
    # rho pi R^2 above the neutral sum: the neutrals count 0, the charged stay
    dense = EventRho(values=np.array([[8.0, 8.0], [8.0, 8.0]]), edges=rho.edges)
    assert isolated(pfcs, MUON, muons(), dense)[0].IsolationVarRhoCorr.tolist() == [[pytest.approx(0.05)]] * 2
    # the lookup: |eta| in [min, max), the last range that holds it, 0 outside every range
    overlapping = EventRho(values=np.array([[1.0, 2.0, 3.0]]),
                           edges=np.array([[0.0, 1.5], [1.5, 2.5], [1.0, 2.0]]))
    assert overlapping.at(ak.Array([[0.5, -1.5, 1.2, 2.2, 2.5, -3.0]])).tolist() == [[1.0, 3.0, 3.0, 2.0, 0.0, 0.0]]


def test_rho_of_a_uniform_event_is_its_density():
    rng = np.random.default_rng(3)
    n = 1000  # 1 GeV photons spread uniformly over |eta| < 5 (where the ghosts are): 1000 / (10 * 2 pi) GeV
    uniform = make_pfcs([n, 0], np.ones(n), rng.uniform(-5, 5, n), rng.uniform(-np.pi, np.pi, n), np.zeros(n),
                        np.full(n, PHOTON), np.zeros(n), np.zeros(n), np.zeros(n))
    rho = event_rho(uniform, Rho())
    density = n / (10 * 2 * np.pi)
    assert rho.values.shape == (2, 2)
    assert rho.values[0] == pytest.approx([density, density], rel=0.05)
    assert rho.values[1].tolist() == [0.0, 0.0]  # an event without candidates
    # the same event alone, or after others: the same rho (the ghosts are the same for every event)
    assert event_rho(uniform[:1], Rho()).values[0].tolist() == rho.values[0].tolist()
    assert event_rho(uniform[::-1], Rho()).values[1].tolist() == rho.values[0].tolist()
    # only central candidates: nothing in the forward range
    central = uniform[abs(uniform.eta) < 2.0]
    assert event_rho(central, Rho(eta_ranges=[[0.0, 1.5], [3.0, 5.0]])).values[0, 1] == 0.0


def test_rho_collection_and_objects():
    # the pileup event with 500 soft photons spread over |eta| < 2.5: below the isolation's 0.5 GeV, but not rho's
    rng = np.random.default_rng(1)
    soft = [(0.4, eta, phi, 0, PHOTON, 0.0) for eta, phi in zip(rng.uniform(-2.5, 2.5, 500),
                                                               rng.uniform(-np.pi, np.pi, 500), strict=True)]
    pfcs = candidates([HARD + PILEUP + soft, []])
    plain = build_objects(pfcs, pfcs, Objects(muons=muons()))
    assert "Rho" not in plain and plain["Muon"].IsolationVarRhoCorr.tolist() == [[pytest.approx(7.5 / 20)], []]
    with_rho = build_objects(pfcs, pfcs, Objects(muons=muons(), rho=Rho()))
    rho = with_rho["Rho"]
    assert ak.num(rho).tolist() == [2, 2]
    assert rho.Edges0.tolist() == [[0.0, 2.5]] * 2 and rho.Edges1.tolist() == [[2.5, 5.0]] * 2
    assert 2.0 < rho.Rho[0, 0] < 0.4 * 500 / (5 * 2 * np.pi) and rho.Rho[1].tolist() == [0.0, 0.0]
    # the muon: (3 + max(4.5 - rho pi 0.25, 0)) / 20, rho of the central range
    expected = (3.0 + max(4.5 - rho.Rho[0, 0] * np.pi * 0.25, 0.0)) / 20.0
    assert with_rho["Muon"].IsolationVarRhoCorr[0, 0] == pytest.approx(expected)
    assert with_rho["Muon"].IsolationVarRhoCorr[0, 0] < plain["Muon"].IsolationVarRhoCorr[0, 0]


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r.update(eta_ranges=[[2.5, 1.0]]), r"objects.rho.eta_ranges\[0\]: expected \[min, max\] with"),
    (lambda r: r.update(eta_ranges=[[0.0, 1.0, 2.0]]), r"objects.rho.eta_ranges\[0\]: expected \[min, max\]"),
    (lambda r: r.update(eta_ranges=[[-1.0, 1.0]]), r"objects.rho.eta_ranges\[0\]: expected \[min, max\]"),
    (lambda r: r.update(eta_ranges=[]), "objects.rho.eta_ranges: needs at least one"),
    (lambda r: r.update(eta_ranges=[["a", 1.0]]), r"objects.rho.eta_ranges\[0\]\[0\]: expected a number"),
    (lambda r: r.update(area="voronoi"), "objects.rho.area: expected one of active, active_explicit_ghosts"),
    (lambda r: r.update(algorithm="siscone"), "objects.rho.algorithm: expected one of"),
    (lambda r: r.update(radius=0), "objects.rho.radius: must be > 0"),
    (lambda r: r.update(ghost_area=-0.01), "objects.rho.ghost_area: must be > 0"),
    (lambda r: r.update(repeat=1.5), "objects.rho.repeat: expected an integer"),
    (lambda r: r.update(ghosts=5), "objects.rho.ghosts: unknown key"),
])
def test_bad_rho_settings_are_one_line_errors(tmp_path, change, message):
    data = yaml.safe_load(REFSIM_CARD.read_text())
    change(data["objects"]["rho"])
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CardError, match=message) as error:
        load_card(path)
    assert "\n" not in str(error.value)


def test_cards_with_and_without_rho():
    assert load_card(CARD).objects.rho is None  # the Delphes CMS card has no Rho module
    for name in ("refsim_cms2011", "cms2011", "cms2011_2step", "cms2011_anchored", "cms2011_gaussian"):
        card = load_card(name)
        assert card.objects.rho == Rho(algorithm="kt", radius=0.6, eta_ranges=[[0.0, 2.5]], ghost_eta_max=3.1,
                                       ghost_area=0.02)
        assert card.objects.electrons.isolation.pileup_dz == 1.0


@pytest.fixture(scope="module")
def refsim_card(tmp_path_factory):
    """The refsim card with a small pileup pool (example ttbar events stand in for minimum bias)."""
    folder = tmp_path_factory.mktemp("pileup")
    pool = folder / "pool.npz"
    write_pool(HepMCReader(EXAMPLE, load_card(CARD).truth, 10, RunCounts(), max_events=10), pool)
    data = yaml.safe_load(REFSIM_CARD.read_text())
    data["generator"]["refsim"]["pileup"]["pool"] = str(pool)
    path = folder / "refsim.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def refsim_output(refsim_card, tmp_path_factory):
    """4 example events through the refsim card (pileup on, rho on)."""
    output = tmp_path_factory.mktemp("refsim") / "refsim.root"
    run(load_card(refsim_card), EXAMPLE, output, max_events=4, progress=False)
    return output


def test_refsim_writes_the_pileup_origin(refsim_output):
    with uproot.open(refsim_output) as file:
        data = file["Delphes"].arrays()
    pileup = ak.to_numpy(ak.flatten(data["EFlowTrack.IsPU"])) == 1
    z = ak.to_numpy(ak.flatten(data["EFlowTrack.Z"]))
    assert 0 < pileup.mean() < 1
    # the hard-scatter tracks come from z = 0 (the example's vertex), the pileup tracks from the luminous region
    assert np.median(abs(z[~pileup])) < 0.5 and np.median(abs(z[pileup])) > 10
    neutral = np.concatenate([ak.to_numpy(ak.flatten(data[f"{name}.IsPU"]))
                              for name in ("EFlowPhoton", "EFlowNeutralHadron")])
    assert set(neutral) == {0, 1}
    flow = data["ParticleFlowCandidate.IsPU"]
    assert ak.sum(flow) == ak.sum(data["EFlowTrack.IsPU"]) + neutral.sum()
    assert ak.all(data["Particle.IsPU"] == 0)  # the truth written is the hard scatter's
    assert ak.num(data["Rho.Rho"]).tolist() == [1] * 4 and ak.all(data["Rho_size"] == 1)
    assert ak.mean(data["Rho.Rho"][:, 0]) > 0


def test_coffea_reads_rho_per_range(refsim_output):
    pytest.importorskip("coffea")
    from coffea.nanoevents import NanoEventsFactory

    from parnassus.coffea_schema import DelphesSchema

    events = NanoEventsFactory.from_root({str(refsim_output): "Delphes"}, schemaclass=DelphesSchema,
                                         mode="virtual").events()
    with uproot.open(refsim_output) as file:
        rho = file["Delphes"]["Rho.Rho"].array()
    assert ak.to_list(events.Rho.Rho) == ak.to_list(rho) and ak.num(events.Rho).tolist() == [1] * 4
    assert ak.to_list(events.Rho.Edges1) == [[2.5]] * 4


def test_generators_without_pileup_write_zero(refsim_card, tmp_path):
    data = yaml.safe_load(refsim_card.read_text())
    data["generator"]["refsim"]["effects"]["pileup"] = False
    data["generator"]["refsim"]["effects"]["out_of_time_pileup"] = False
    card = tmp_path / "no_pileup.yaml"
    card.write_text(yaml.safe_dump(data))
    for path in (card, CARD):  # refsim without pileup, and the parametric generator
        output = tmp_path / "out.root"
        run(load_card(path), EXAMPLE, output, max_events=3, progress=False)
        with uproot.open(output) as file:
            tree = file["Delphes"]
            for name in ("EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron", "ParticleFlowCandidate"):
                assert ak.all(tree[f"{name}.IsPU"].array() == 0), name
            assert ("Rho_size" in tree.keys()) == (path == card)


def test_the_example_analysis_reads_refsim_output(refsim_output):
    """The same analysis code (b-tags, isolated leptons, MET) on refsim's output as on the other cards'."""
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "analysis.py"), str(refsim_output)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"{refsim_output}: 4 events"
    assert "b-tagged jets per event" in result.stdout and "mean MET" in result.stdout
