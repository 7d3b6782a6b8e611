import dataclasses
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import yaml

from parnassus.card import load_card
from parnassus.events import RunCounts
from parnassus.formula import Formula
from parnassus.io.hepmc import HepMCReader
from parnassus.pdg import CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON, charge_and_class
from parnassus.refsim.calorimeter import Cells, Clusters, Deposits, Grid, add_noise, cluster, deposit_cells
from parnassus.refsim.config import Effects
from parnassus.refsim.particleflow import reconstruct
from parnassus.refsim.particles import Particles
from parnassus.refsim.pileup import PileupPool, write_pool
from parnassus.refsim.simulation import ReferenceSimulation
from parnassus.refsim.tracker import Tracks, decays_in_flight, propagate, reconstruct_tracks

from .conftest import EXAMPLE, ROOT

REFSIM_CARD = ROOT / "cards" / "refsim_cms2011.yaml"
ALL_EFFECTS = [f.name for f in dataclasses.fields(Effects)]


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    """A small pileup pool (example ttbar events stand in for minimum bias)."""
    path = tmp_path_factory.mktemp("pool") / "pool.npz"
    card = load_card(REFSIM_CARD.parent / "delphes_cms_like.yaml")
    write_pool(HepMCReader(EXAMPLE, card.truth, 10, RunCounts(), max_events=10), path)
    return path


def card_with(tmp_path: Path, pool: Path | None = None, **effects):
    data = yaml.safe_load(REFSIM_CARD.read_text())
    refsim = data["generator"]["refsim"]
    if pool is None:
        refsim["pileup"] = None
    else:
        refsim["pileup"]["pool"] = str(pool)
    refsim["effects"].update(effects)
    path = tmp_path / "refsim.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_card(path)


@pytest.fixture(scope="module")
def events():
    card = load_card(REFSIM_CARD.parent / "delphes_cms_like.yaml")
    return next(iter(HepMCReader(EXAMPLE, card.truth, 20, RunCounts(), max_events=20)))


def particles_of(pids, pts, etas, phis=None, z=0.0):
    pids = np.asarray(pids)
    pt, eta = np.asarray(pts, float), np.asarray(etas, float)
    phi = np.zeros(len(pids)) if phis is None else np.asarray(phis, float)
    charge, cls = charge_and_class(pids)
    from particle import Particle

    mass = np.array([(Particle.from_pdgid(int(p)).mass or 0.0) / 1000 for p in pids])
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return Particles(event=np.zeros(len(pids), dtype=np.int64), pid=pids, charge=charge, cls=cls, px=px, py=py,
                     pz=pz, e=np.sqrt(px**2 + py**2 + pz**2 + mass**2), mass=mass, x=np.zeros(len(pids)),
                     y=np.zeros(len(pids)), z=np.full(len(pids), z), pileup=np.zeros(len(pids), dtype=bool))


def params(tmp_path, **effects):
    return card_with(tmp_path, **effects).generator.refsim


# ---- the whole simulation ------------------------------------------------------------------------------

def test_deterministic_with_seed_and_inside_acceptance(tmp_path, pool, events):
    card = card_with(tmp_path, pool)
    sim = ReferenceSimulation(card.generator.refsim, card.output)
    a, b, c = sim(events, 3), sim(events, 3), sim(events, 4)
    assert ak.to_list(a) == ak.to_list(b) and ak.to_list(a) != ak.to_list(c)
    flat = ak.flatten(a)
    assert ak.all(flat.pt >= card.output.pt_min) and ak.all(abs(flat.eta) <= card.output.eta_max)
    charged = flat[flat.charge != 0]
    assert set(ak.to_numpy(flat.cls[flat.charge != 0])) <= {CHARGED_HADRON, ELECTRON, MUON}
    assert set(ak.to_numpy(flat.cls[flat.charge == 0])) <= {NEUTRAL_HADRON, PHOTON}
    assert ak.all(abs(charged.eta) <= 2.5 + 0.05) and ak.all(abs(charged.charge) == 1)
    neutral = a[a.charge == 0]
    assert ak.all(neutral.x == 0) and ak.all(neutral.z == ak.firsts(neutral.z))  # all at the primary vertex


@pytest.mark.parametrize("effect", ALL_EFFECTS)
def test_switching_off_each_effect_changes_the_output(tmp_path, pool, events, effect):
    on = card_with(tmp_path, pool)
    off = card_with(tmp_path, pool, **{effect: False})
    simulate = lambda card: ReferenceSimulation(card.generator.refsim, card.output)(events, 11)  # noqa: E731
    assert ak.to_list(simulate(on)) != ak.to_list(simulate(off))


def test_pileup_adds_candidates_and_pool_overlay(tmp_path, pool, events):
    with_pu = card_with(tmp_path, pool)
    without = card_with(tmp_path, pool, pileup=False)
    n_with = ak.mean(ak.num(ReferenceSimulation(with_pu.generator.refsim, with_pu.output)(events, 1)))
    n_without = ak.mean(ak.num(ReferenceSimulation(without.generator.refsim, without.output)(events, 1)))
    assert n_with > n_without + 50  # about 6 extra (here ttbar) interactions per event
    overlay, counts = PileupPool(pool).overlay(400, 6.35, 56.0, 0.02, np.random.default_rng(0))
    assert abs(counts.mean() - 6.35) < 0.5
    assert 40 < np.std(overlay.z) < 70 and np.all(overlay.pileup)
    assert np.array_equal(np.unique(overlay.event), np.flatnonzero(counts))


# ---- the parts ---------------------------------------------------------------------------------------

def test_bending_and_loopers(tmp_path):
    p = particles_of([211, -211, 211, 22], [20.0, 20.0, 0.3, 20.0], [0.0, 0.0, 0.0, 0.5])
    on = params(tmp_path)
    impact = propagate(p, on.geometry, on.effects)
    assert impact.ecal_phi[0] < 0 < impact.ecal_phi[1]  # opposite charges bend opposite ways
    radius = 20.0 / (0.299792458 * 3.8) * 1000
    assert impact.ecal_phi[1] == pytest.approx(np.arcsin(1290.0 / (2 * radius)))
    assert not impact.reaches[2]  # 0.3 GeV at eta 0: 2R = 0.53 m < 1.29 m
    assert impact.ecal_phi[3] == 0.0 and impact.ecal_eta[3] == pytest.approx(0.5)
    straight = propagate(p, on.geometry, dataclasses.replace(on.effects, bending=False))
    assert straight.ecal_phi[:2].tolist() == [0.0, 0.0] and straight.reaches[2]
    no_loopers = propagate(p, on.geometry, dataclasses.replace(on.effects, loopers=False))
    assert no_loopers.reaches.all()


def _tracks(p, refsim, effects, seed=0):
    impact = propagate(p, refsim.geometry, effects)
    decays = decays_in_flight(p, refsim.geometry, effects, np.random.default_rng(seed))
    return reconstruct_tracks(p, impact, decays, np.zeros(1), 1, refsim.geometry, refsim.tracking,
                              refsim.particle_flow, effects, np.random.default_rng(seed))


def test_tracks_keep_charge_and_merge_close_pairs(tmp_path):
    refsim = params(tmp_path)
    refsim = dataclasses.replace(refsim, tracking=dataclasses.replace(
        refsim.tracking, efficiency=Formula("1.0"), merge_probability=1.0))
    effects = dataclasses.replace(refsim.effects, fake_tracks=False)
    p = particles_of([211, -211, 321, 211], [5.0, 6.0, 30.0, 4.0], [0.5, 0.5005, -1.0, 3.0])
    merged = _tracks(p, refsim, effects)
    assert sorted(merged.particle.tolist()) == [1, 2]  # the softer of the close pair is lost; |eta| 3 untracked
    np.testing.assert_array_equal(merged.charge, p.charge[merged.particle])
    separate = _tracks(p, refsim, dataclasses.replace(effects, track_merging=False))
    assert sorted(separate.particle.tolist()) == [0, 1, 2]


def test_fakes_resolution_and_vertex(tmp_path):
    refsim = params(tmp_path)
    refsim = dataclasses.replace(refsim, tracking=dataclasses.replace(refsim.tracking, efficiency=Formula("1.0"),
                                                                      fake_rate=0.5))
    p = particles_of([211] * 400, np.full(400, 10.0), np.linspace(-2, 2, 400), np.linspace(-3, 3, 400), z=7.0)
    tracks = _tracks(p, refsim, refsim.effects)
    real = tracks.particle >= 0
    assert 150 < (~real).sum() < 260
    assert 0.003 < np.std(tracks.pt[real] / 10.0 - 1) < 0.02
    assert np.std(tracks.z[real] - 7.0) == pytest.approx(np.sqrt(0.04**2 + 0.013**2), rel=0.2)
    ideal = _tracks(p, refsim, dataclasses.replace(refsim.effects, vertex_resolution=False, fake_tracks=False))
    assert np.all(ideal.z == 7.0) and np.all(ideal.particle >= 0)


def test_decays_in_flight_and_punch_through_make_muons(tmp_path):
    refsim = params(tmp_path)
    flow = dataclasses.replace(refsim.particle_flow, punch_through_probability=Formula("0.0"))
    refsim = dataclasses.replace(refsim, particle_flow=flow,
                                 tracking=dataclasses.replace(refsim.tracking, efficiency=Formula("1.0")))
    effects = dataclasses.replace(refsim.effects, fake_tracks=False, track_merging=False)
    n = 20000
    p = particles_of([321] * n, np.full(n, 4.0), np.zeros(n), np.linspace(-3, 3, n))
    decays = decays_in_flight(p, refsim.geometry, effects, np.random.default_rng(1))
    # K+ at p = 4 GeV: decay length 30 m; P(decay in 1.1 m) * BR(mu nu) ~ 3.6% * 0.636
    assert decays.decayed.mean() == pytest.approx((1 - np.exp(-1100 / (3711 * 4 / 0.4937))) * 0.6356, rel=0.15)
    tracks = _tracks(p, refsim, effects, seed=1)
    assert 0 < tracks.muon.mean() < decays.decayed.mean()
    assert not _tracks(p, refsim, dataclasses.replace(effects, decays_in_flight=False), seed=1).muon.any()
    punch = dataclasses.replace(refsim, particle_flow=dataclasses.replace(flow, punch_through_probability=Formula(
        "0.5")))
    assert _tracks(p, punch, dataclasses.replace(effects, decays_in_flight=False), seed=1).muon.mean() > 0.4


def test_showers_noise_and_cluster_splitting():
    grid = Grid(0.0174, 3.0)
    photons = Deposits(event=np.array([0, 0]), eta=np.array([0.1, 0.1 + 3 * 0.0174]), phi=np.array([0.2, 0.2]),
                       energy=np.array([20.0, 15.0]), spread=np.array([0.6, 0.6]))
    spread = deposit_cells(photons, grid, shower_spread=True)
    narrow = deposit_cells(photons, grid, shower_spread=False)
    assert len(narrow.key) == 2 and len(spread.key) > 10
    assert spread.energy.sum() == pytest.approx(35.0)
    split = cluster(spread, grid, 0.05, 0.23, 1.0, splitting=True)
    merged = cluster(spread, grid, 0.05, 0.23, 1.0, splitting=False)
    assert len(split) == 2 and len(merged) == 1
    assert split.energy.sum() == pytest.approx(merged.energy.sum())
    assert sorted(split.energy) == pytest.approx([15.0, 20.0], rel=0.05)
    assert merged.eta[0] == pytest.approx((20 * 0.1 + 15 * (0.1 + 3 * 0.0174)) / 35, abs=0.005)
    noisy = add_noise(Cells(np.zeros(0, dtype=np.int64), np.zeros(0)), grid, 0.045, 0.15, 50,
                      np.random.default_rng(0))
    expected = 50 * grid.n_eta * grid.n_phi * 0.5 * (1 - __import__("math").erf(0.15 / 0.045 / np.sqrt(2)))
    assert len(noisy.key) == pytest.approx(expected, rel=0.1) and np.all(noisy.energy >= 0.15)


def _clusters(event, energy, eta, phi):
    return Clusters(np.asarray(event), np.asarray(energy, float), np.asarray(eta, float), np.asarray(phi, float))


def test_particle_flow_energy_bookkeeping(tmp_path):
    refsim = params(tmp_path)
    flow = dataclasses.replace(refsim.particle_flow, hadron_calibration=Formula("1.0"),
                               electron_fake_probability=0.0)
    calo = refsim.calorimetry
    track = Tracks(particle=np.array([0]), event=np.array([0]), pt=np.array([10.0]), eta=np.array([0.0]),
                   phi=np.array([0.0]), charge=np.array([1]), x=np.zeros(1), y=np.zeros(1), z=np.zeros(1),
                   muon=np.array([False]), true_electron=np.array([False]))
    ecal = _clusters([0, 0], [3.0, 7.0], [0.01, 1.0], [0.0, 1.0])  # one linked, one alone
    hcal = _clusters([0, 0], [30.0, 12.0], [0.02, -1.0], [0.0, -2.0])  # one linked, one alone
    out = reconstruct(track, (np.zeros(1), np.zeros(1)), (np.zeros(1), np.zeros(1)), ecal, hcal, flow, calo,
                      np.zeros(1), np.random.default_rng(0))
    energy = out.pt * np.cosh(out.eta)
    by_class = {int(k): sorted(energy[out.cls == k].round(6).tolist()) for k in np.unique(out.cls)}
    # block: 3 + 30 = 33 GeV of calorimeter energy for a 10 GeV track -> 23 GeV excess: photon 3, hadron 20
    assert by_class[CHARGED_HADRON] == [pytest.approx(10.0)]
    assert by_class[PHOTON] == [pytest.approx(3.0), pytest.approx(7.0)]
    assert by_class[NEUTRAL_HADRON] == [pytest.approx(12.0), pytest.approx(20.0)]
    assert energy.sum() == pytest.approx(10.0 + 3 + 7 + 30 + 12 - 10)  # calorimeter energy + track - matched
    # the same block with a 33 GeV track: no excess, no neutral
    track.pt[:] = 33.0
    out = reconstruct(track, (np.zeros(1), np.zeros(1)), (np.zeros(1), np.zeros(1)), ecal, hcal, flow, calo,
                      np.zeros(1), np.random.default_rng(0))
    assert sorted(out.cls.tolist()) == sorted([CHARGED_HADRON, PHOTON, NEUTRAL_HADRON])  # only the lone clusters


# ---- production -----------------------------------------------------------------------------------------

def test_dataset_production_is_parallel_and_resumable(tmp_path, pool):
    from parnassus.dataset import load_spec, produce

    card = yaml.safe_load(REFSIM_CARD.read_text())
    card["generator"]["refsim"]["pileup"]["pool"] = str(pool)
    card["sampling"]["batch_size"] = 4
    (tmp_path / "refsim.yaml").write_text(yaml.safe_dump(card))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "card": "refsim.yaml", "output": "out", "chunk_events": 4,
        "samples": [{"name": "a", "source": str(EXAMPLE), "events": 6, "seed": 1},
                    {"name": "b", "source": str(EXAMPLE), "events": 4, "seed": 2}]}))
    lines = []
    assert produce(spec, workers=2, log=lines.append) == 3
    files = sorted((tmp_path / "out").rglob("*.root"))
    assert [f.name for f in files] == ["a_0000.root", "a_0001.root", "b_0000.root"]
    import uproot

    assert [uproot.open(f)["Delphes"].num_entries for f in files] == [4, 2, 4]
    first = uproot.open(files[0])["Delphes"]["ParticleFlowCandidate.PT"].array()
    files[1].unlink()
    assert produce(spec, workers=1, log=lines.append) == 1  # only the missing chunk is made again
    assert ak.to_list(uproot.open(files[0])["Delphes"]["ParticleFlowCandidate.PT"].array()) == ak.to_list(first)
    assert lines[0].startswith("3 chunks, 0 already done") and lines[-2].startswith("3 chunks, 2 already done")
    assert load_spec(spec).samples[1].events == 4
    spec.write_text(yaml.safe_dump({"card": "refsim.yaml", "output": "out", "samples": [
        {"name": "a", "source": str(EXAMPLE), "events": 6, "seed": 1}, {"name": "a", "source": str(EXAMPLE),
                                                                      "events": 6, "seed": 2}]}))
    from parnassus.errors import CardError

    with pytest.raises(CardError, match="names must be unique"):
        load_spec(spec)


def test_refsim_command(tmp_path, pool):
    import subprocess
    import sys

    card = card_with(tmp_path, pool)
    output = tmp_path / "out.root"
    result = subprocess.run([sys.executable, "-m", "parnassus", "refsim", "--quiet", "--config", str(card.path),
                             "-n", "5", str(EXAMPLE), str(output)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "events read 5, written 5" in result.stderr
    from parnassus.io.delphes import read_metadata

    assert read_metadata(output)["generator"] == "refsim"
    wrong = subprocess.run([sys.executable, "-m", "parnassus", "refsim", "--config",
                            str(ROOT / "cards" / "delphes_cms_like.yaml"), str(EXAMPLE), str(output)],
                           capture_output=True, text=True)
    assert wrong.returncode != 0 and "expected 'refsim'" in wrong.stderr and "Traceback" not in wrong.stderr
