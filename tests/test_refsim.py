import dataclasses
import math
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import yaml

from parnassus.card import load_card
from parnassus.events import TRUTH_FIELDS, RunCounts, TruthBatch
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

from .conftest import EXAMPLE, ROOT, SIMPLE_EVENT, make_event, write_events

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
                               photon_calibration=Formula("1.0"), electron_fake_probability=0.0)
    calo = refsim.calorimetry
    track = Tracks(particle=np.array([0]), event=np.array([0]), pt=np.array([10.0]), eta=np.array([0.0]),
                   phi=np.array([0.0]), charge=np.array([1]), x=np.zeros(1), y=np.zeros(1), z=np.zeros(1),
                   muon=np.array([False]), true_electron=np.array([False]))
    ecal = _clusters([0, 0], [3.0, 7.0], [0.01, 1.0], [0.0, 1.0])  # one linked, one alone
    hcal = _clusters([0, 0], [30.0, 12.0], [0.02, -1.0], [0.0, -2.0])  # one linked, one alone
    out = reconstruct(track, (np.zeros(1), np.zeros(1)), (np.zeros(1), np.zeros(1)), ecal, hcal, flow, calo,
                      np.zeros((1, 3)), np.random.default_rng(0))
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
                      np.zeros((1, 3)), np.random.default_rng(0))
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


# ---- regressions ----------------------------------------------------------------------------------------

NO_VERTEX = np.zeros((1, 3))  # primary vertex of the one event of hand-made inputs


def _no_particles(n_events: int) -> TruthBatch:
    none = np.zeros(0)
    return TruthBatch.from_columns(np.zeros(n_events), dict.fromkeys(TRUTH_FIELDS, none), np.arange(n_events),
                                   np.ones(n_events), np.arange(n_events))


def test_simulation_leaves_the_truth_batch_untouched(tmp_path):
    card = card_with(tmp_path, pool=None)
    batch = next(iter(HepMCReader(EXAMPLE, card.truth, 5, RunCounts(), max_events=5)))
    columns = [(array, name) for array in (batch.particles, batch.final_state) for name in ("px", "pz", "e")]
    before = [ak.to_numpy(ak.flatten(array[name])).copy() for array, name in columns]
    sim = ReferenceSimulation(card.generator.refsim, card.output)
    first = sim(batch, 3)
    for (array, name), values in zip(columns, before, strict=True):
        np.testing.assert_array_equal(ak.to_numpy(ak.flatten(array[name])), values)
    assert ak.to_list(sim(batch, 3)) == ak.to_list(first)


def test_track_curvature_is_signed(tmp_path):
    refsim = params(tmp_path)
    refsim = dataclasses.replace(refsim, tracking=dataclasses.replace(
        refsim.tracking, efficiency=Formula("1.0"), pt_resolution=Formula("0.8")))
    effects = dataclasses.replace(refsim.effects, fake_tracks=False, track_merging=False, decays_in_flight=False)
    n = 4000
    p = particles_of([211] * n, np.full(n, 1000.0), np.linspace(-2, 2, n), np.linspace(-3, 3, n))
    tracks = _tracks(p, refsim, effects)
    assert len(tracks) == n and np.all(np.isfinite(tracks.pt)) and np.all(np.abs(tracks.charge) == 1)
    # the measured curvature q/pT (in units of the true one) is Gaussian: it changes sign below -1 / 0.8 sigma
    curvature = tracks.charge / tracks.pt * 1000.0
    assert np.mean(curvature) == pytest.approx(1.0, abs=0.05) and np.std(curvature) == pytest.approx(0.8, rel=0.05)
    flipped = tracks.charge != p.charge[tracks.particle]
    assert flipped.mean() == pytest.approx(0.5 * math.erfc(1 / 0.8 / np.sqrt(2)), abs=0.02)
    np.testing.assert_allclose(tracks.pt[flipped], 1000.0 / np.abs(curvature[flipped]))


def test_impact_parameter_is_smeared_across_the_track(tmp_path):
    refsim = params(tmp_path)
    refsim = dataclasses.replace(refsim, tracking=dataclasses.replace(refsim.tracking, efficiency=Formula("1.0")))
    effects = dataclasses.replace(refsim.effects, fake_tracks=False, track_merging=False, decays_in_flight=False)
    n = 20000
    p = particles_of([211] * n, np.full(n, 10.0), np.linspace(-2, 2, n), np.linspace(-3.1, 3.1, n))
    tracks = _tracks(p, refsim, effects)
    phi = p.phi[tracks.particle]
    across = -tracks.x * np.sin(phi) + tracks.y * np.cos(phi)
    along = tracks.x * np.cos(phi) + tracks.y * np.sin(phi)
    sigma_d0 = refsim.tracking.d0_resolution(np.array([10.0]), np.array([0.0]))[0]
    assert np.std(across) == pytest.approx(sigma_d0, rel=0.03)
    np.testing.assert_allclose(along, 0.0, atol=1e-12)


def _block_at(eta: float, flow, calo) -> dict[str, float]:
    """Neutral-hadron energies of a block (10 GeV track, 30 GeV HCAL cluster) and of a lone 12 GeV HCAL cluster."""
    track = Tracks(particle=np.array([0]), event=np.array([0]), pt=np.array([10.0 / np.cosh(eta)]),
                   eta=np.array([eta]), phi=np.array([0.0]), charge=np.array([1]), x=np.zeros(1), y=np.zeros(1),
                   z=np.zeros(1), muon=np.array([False]), true_electron=np.array([False]))
    ecal = _clusters([0], [5.0], [eta], [-2.0])  # alone: a photon
    hcal = _clusters([0, 0], [30.0, 12.0], [eta + 0.01, eta], [0.0, 2.0])
    entry = (np.full(1, eta), np.zeros(1))
    out = reconstruct(track, entry, entry, ecal, hcal, flow, calo, NO_VERTEX, np.random.default_rng(0))
    hadrons = out.cls == NEUTRAL_HADRON
    energy = (out.pt * np.cosh(out.eta))[hadrons]
    return {"block": energy[np.abs(out.phi[hadrons]) < 1].sum(), "lone": energy[out.phi[hadrons] > 1].sum()}


def test_particle_flow_formulas_see_eta_and_pt(tmp_path):
    refsim = params(tmp_path)
    flow = dataclasses.replace(refsim.particle_flow, electron_fake_probability=0.0,
                               hadron_calibration=Formula("1 + (abs(eta) > 1.0) * 1.0"))
    calo = refsim.calorimetry
    assert _block_at(0.0, flow, calo) == {"block": pytest.approx(20.0), "lone": pytest.approx(12.0)}
    assert _block_at(2.0, flow, calo) == {"block": pytest.approx(50.0), "lone": pytest.approx(24.0)}
    # pt = E / cosh(eta): the lone 12 GeV cluster at eta 2 has pt 1.6 GeV
    flow = dataclasses.replace(flow, hadron_calibration=Formula("1 + (pt < 5.0) * 1.0"))
    assert _block_at(2.0, flow, calo) == {"block": pytest.approx(20.0), "lone": pytest.approx(24.0)}
    # the resolution of the expected energy at the tracks' eta
    flow = dataclasses.replace(flow, hadron_calibration=Formula("1.0"))
    calo = dataclasses.replace(calo, hadron_resolution=Formula("(abs(eta) > 1.0) * 100.0"))
    assert _block_at(0.0, flow, calo)["block"] == pytest.approx(20.0)
    assert _block_at(2.0, flow, calo)["block"] == 0.0


@pytest.mark.parametrize("with_pileup", [False, True])
def test_batches_without_events_or_particles(tmp_path, pool, with_pileup):
    card = card_with(tmp_path, pool if with_pileup else None)
    sim = ReferenceSimulation(card.generator.refsim, card.output)
    for n_events in (0, 3):
        for final_state in (False, True):
            batch = _no_particles(n_events)
            batch.final_state = batch.particles if final_state else None
            out = sim(batch, 1)
            assert len(out) == n_events and "pt" in out.fields
            assert ak.all(abs(ak.flatten(out.eta)) <= card.output.eta_max)
    assert len(sim(TruthBatch.empty(), 1)) == 0


def test_particle_flow_without_clusters(tmp_path):
    refsim = params(tmp_path)
    track = Tracks(particle=np.array([0]), event=np.array([0]), pt=np.array([10.0]), eta=np.array([0.0]),
                   phi=np.array([0.0]), charge=np.array([1]), x=np.zeros(1), y=np.zeros(1), z=np.zeros(1),
                   muon=np.array([False]), true_electron=np.array([False]))
    none = Clusters(*(np.zeros(0) for _ in range(4)))  # what clustering returns without cells
    entry = (np.zeros(1), np.zeros(1))
    out = reconstruct(track, entry, entry, none, none, refsim.particle_flow, refsim.calorimetry, NO_VERTEX,
                      np.random.default_rng(0))
    assert out.cls.tolist() == [CHARGED_HADRON] and out.event.dtype.kind == "i"
    out = reconstruct(Tracks(**{f: getattr(track, f)[:0] for f in track.__dataclass_fields__}), entry, entry, none,
                      none, refsim.particle_flow, refsim.calorimetry, np.zeros((0, 3)), np.random.default_rng(0))
    assert len(out.pt) == 0 and out.event.dtype.kind == "i"


def test_refsim_command_on_a_header_only_file(tmp_path):
    import subprocess
    import sys

    card = card_with(tmp_path, pool=None)
    empty = tmp_path / "header.hepmc"
    empty.write_text("HepMC::Version 3.02.06\nHepMC::Asciiv3-START_EVENT_LISTING\nHepMC::Asciiv3-END_EVENT_LISTING\n")
    for args in ([str(empty)], ["--skip", "1000", str(EXAMPLE)]):
        result = subprocess.run([sys.executable, "-m", "parnassus", "refsim", "--quiet", "--config", str(card.path),
                                 *args, str(tmp_path / "out.root")], capture_output=True, text=True)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert "events read 0, written 0" in result.stderr


def test_neutral_candidates_sit_at_the_primary_vertex(tmp_path):
    card = card_with(tmp_path, pool=None)
    path = write_events(tmp_path / "displaced.hepmc",
                        [make_event(i, SIMPLE_EVENT, vertex=(0.01, -0.02, 30.0, 0.0)) for i in range(3)])
    batch = next(iter(HepMCReader(path, card.truth, 10, RunCounts())))
    out = ak.flatten(ReferenceSimulation(card.generator.refsim, card.output)(batch, 2))
    neutral = out[out.charge == 0]
    assert len(neutral) >= 3
    for name, value in zip("xyz", (0.01, -0.02, 30.0), strict=True):
        np.testing.assert_allclose(ak.to_numpy(neutral[name]), value)
