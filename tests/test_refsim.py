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
from parnassus.streams import EventRandom

from .conftest import EXAMPLE, ROOT, SIMPLE_EVENT, make_event, write_events

REFSIM_CARD = ROOT / "cards" / "refsim_cms2011.yaml"
ALL_EFFECTS = [f.name for f in dataclasses.fields(Effects)]


def streams(seed: int, events: int = 100_000) -> EventRandom:
    """Random streams for the events 0 .. ``events`` - 1 of a test batch."""
    return EventRandom(seed, np.arange(events))


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
    overlay, counts = PileupPool(pool).overlay(400, 6.35, 56.0, 0.02, streams(0))
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
    decays = decays_in_flight(p, refsim.geometry, effects, streams(seed))
    return reconstruct_tracks(p, impact, decays, np.zeros(1), 1, refsim.geometry, refsim.tracking,
                              refsim.particle_flow, effects, streams(seed))


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
    decays = decays_in_flight(p, refsim.geometry, effects, streams(1))
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
                      streams(0))
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
                      np.zeros((1, 3)), streams(0))
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
                      np.zeros((1, 3)), streams(0))
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
    out = reconstruct(track, entry, entry, ecal, hcal, flow, calo, NO_VERTEX, streams(0))
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
                      streams(0))
    assert out.cls.tolist() == [CHARGED_HADRON] and out.event.dtype.kind == "i"
    out = reconstruct(Tracks(**{f: getattr(track, f)[:0] for f in track.__dataclass_fields__}), entry, entry, none,
                      none, refsim.particle_flow, refsim.calorimetry, np.zeros((0, 3)), streams(0))
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


# ---- refsim v2 physics ----------------------------------------------------------------------------------

K0S_MASS, K0S_CTAU = 0.497611, 26.844  # GeV, mm [PDG]
C_LIGHT = 0.299792458  # GeV / (T m)


def _one_per_event(p: Particles) -> Particles:
    """The same particles, each in its own event (products inherit the event: it identifies their parent)."""
    return p.replace(event=np.arange(len(p)))


def _batch_of(p: Particles) -> TruthBatch:
    """A truth batch with one event per particle of ``p``."""
    n = len(p)
    columns = {"pid": p.pid, "status": np.ones(n), "charge": p.charge, "cls": p.cls, "mass": p.mass, "e": p.e,
               "px": p.px, "py": p.py, "pz": p.pz, "pt": p.pt, "eta": p.eta, "phi": p.phi, "x": p.x, "y": p.y,
               "z": p.z, "t": np.zeros(n)}
    return TruthBatch.from_columns(np.ones(n), columns, np.arange(n), np.ones(n), np.arange(n))


def _single_particles(pids: list[int], seed: int, energy: float | None = None, pt: float | None = None,
                      eta_max: float = 1.2) -> Particles:
    """Particles of the given ids, uniform in |eta| < eta_max and in phi, at a fixed energy or pT."""
    rng = np.random.default_rng(seed)
    n = len(pids)
    eta, phi = rng.uniform(-eta_max, eta_max, n), rng.uniform(-np.pi, np.pi, n)
    return particles_of(pids, np.full(n, pt) if pt is not None else energy / np.cosh(eta), eta, phi)


def _simulate(refsim, output, p: Particles, seed: int = 1) -> ak.Array:
    return ReferenceSimulation(refsim, output)(_batch_of(p), seed)


def _near(out: ak.Array, p: Particles, cls: int, distance: float) -> ak.Array:
    """Per event (one truth particle each): the candidates of class ``cls`` within ``distance`` of the particle."""
    d_phi = (out.phi - p.phi + np.pi) % (2 * np.pi) - np.pi
    return out[(out.cls == cls) & (np.hypot(out.eta - p.eta, d_phi) < distance)]


def _four_momenta_by_event(p: Particles, n_events: int) -> np.ndarray:
    return np.column_stack([np.bincount(p.event, weights=getattr(p, name), minlength=n_events)
                            for name in ("e", "px", "py", "pz")])


def test_k0s_decay_fraction_follows_the_lifetime(tmp_path):
    from parnassus.refsim.interactions import decay_long_lived

    refsim = params(tmp_path)
    radius = refsim.geometry.ecal_radius
    for momentum, n, seed in ((5.0, 2000, 1), (50.0, 4000, 2)):
        p = _one_per_event(particles_of([310] * n, np.full(n, momentum), np.zeros(n), np.linspace(-3, 3, n)))
        out = decay_long_lived(p, refsim.interactions.decays, refsim.geometry, streams(seed))
        decay_length = K0S_CTAU * momentum / K0S_MASS  # beta gamma c tau
        decayed = 1 - (out.pid == 310).sum() / n
        assert decayed == pytest.approx(1 - np.exp(-radius / decay_length), abs=0.03)
        # decay points: on the K0S's line of flight, before the ECAL, distributed as the truncated exponential
        pions = out.take(np.flatnonzero(np.abs(out.pid) == 211))
        assert np.all(np.hypot(pions.x, pions.y) < radius) and np.all(pions.z == 0.0)
        np.testing.assert_allclose(np.arctan2(pions.y, pions.x), p.phi[pions.event], atol=1e-9)
        if momentum == 50.0:
            products = out.take(np.flatnonzero(out.pid != 310))
            _, first = np.unique(products.event, return_index=True)  # one decay point per decayed K0S
            r = np.hypot(products.x, products.y)[first]
            truncated_mean = decay_length - radius * np.exp(-radius / decay_length) / -np.expm1(-radius / decay_length)
            assert r.mean() == pytest.approx(truncated_mean, rel=0.06)


def test_k0s_decay_products_conserve_four_momentum(tmp_path):
    from parnassus.refsim.interactions import decay_long_lived
    from parnassus.refsim.particles import DECAY

    refsim = params(tmp_path)
    n = 2000
    p = _one_per_event(particles_of([310] * n, np.full(n, 5.0), np.zeros(n), np.linspace(-3, 3, n)))
    before = p.px.copy(), p.e.copy()
    out = decay_long_lived(p, refsim.interactions.decays, refsim.geometry, streams(3))
    np.testing.assert_array_equal(p.px, before[0])
    np.testing.assert_array_equal(p.e, before[1])
    assert 111 not in out.pid  # pi0s decay on the spot
    assert set(np.unique(out.pid)) == {211, -211, 22, 310}
    decayed = np.setdiff1d(np.arange(n), out.event[out.pid == 310])
    products = out.take(np.flatnonzero(out.pid != 310))
    assert np.all(products.origin == DECAY)
    np.testing.assert_array_equal(np.unique(products.event), decayed)
    # every decayed K0S: its products (pi+ pi-, or four photons from pi0 pi0) carry its four-momentum
    total = _four_momenta_by_event(products, n)[decayed]
    parent = np.column_stack([p.e, p.px, p.py, p.pz])[decayed]
    np.testing.assert_allclose(total, parent, rtol=1e-6, atol=1e-6 * 5.0)
    pid_sum = np.bincount(products.event, weights=products.pid, minlength=n)[decayed]
    count = np.bincount(products.event, minlength=n)[decayed]
    charged = pid_sum == 0
    assert set(count[charged]) == {2} and set(count[~charged]) == {4} and set(pid_sum[~charged]) == {88}
    # pi+ pi- pairs: one of each, invariant mass = K0S mass; branching fraction 69.2%
    e, px, py, pz = total[charged].T
    np.testing.assert_allclose(np.sqrt(e**2 - px**2 - py**2 - pz**2), K0S_MASS, rtol=1e-6)
    pions = products.take(np.flatnonzero(np.abs(products.pid) == 211))
    assert np.all(np.bincount(pions.event[pions.pid == 211], minlength=n)[decayed[charged]] == 1)
    assert charged.mean() == pytest.approx(0.692, abs=0.03)


def test_antilambda_decays_to_charge_conjugate_products(tmp_path):
    from parnassus.refsim.interactions import decay_long_lived

    refsim = params(tmp_path)
    n = 1000
    for pid, expected, forbidden in ((-3122, {-2212, 211, -2112, 22}, {2212, -211, 2112}),
                                     (3122, {2212, -211, 2112, 22}, {-2212, 211, -2112})):
        p = _one_per_event(particles_of([pid] * n, np.full(n, 3.0), np.zeros(n), np.linspace(-3, 3, n)))
        out = decay_long_lived(p, refsim.interactions.decays, refsim.geometry, streams(4))
        products = set(np.unique(out.pid)) - {pid}
        assert products == expected and not products & forbidden
        decayed = n - (out.pid == pid).sum()
        proton_channel = (np.abs(out.pid) == 2212).sum() / decayed
        assert proton_channel == pytest.approx(0.639 / (0.639 + 0.358), abs=0.04)
        assert out.charge.sum() == p.charge.sum() == 0


def _radiation_lengths(refsim, eta: float) -> float:
    return float(refsim.interactions.radiation_lengths(np.array([1.0]), np.array([eta]), np.array([1.0]))[0])


def test_brem_keeps_exp_minus_t_on_average_and_conserves_momentum(tmp_path):
    from parnassus.refsim.interactions import radiate
    from parnassus.refsim.particles import BREM

    refsim = params(tmp_path)
    n = 20000
    for eta, seed in ((0.5, 5), (1.45, 6)):
        energy = 50.0
        p = particles_of(np.where(np.arange(n) % 2 == 0, 11, -11), np.full(n, energy / np.cosh(eta)), np.full(n, eta),
                         np.linspace(-3, 3, n))
        saved = {name: np.array(getattr(p, name)) for name in ("px", "py", "pz", "e", "group", "radiated")}
        out = radiate(p, refsim.interactions.radiation_lengths, refsim.geometry, streams(seed))
        for name, values in saved.items():
            np.testing.assert_array_equal(getattr(p, name), values)  # the input is not modified
        assert len(out) == 2 * n
        electrons, photons = out.take(np.arange(n)), out.take(np.arange(n, 2 * n))
        assert np.all(photons.pid == 22) and np.all(photons.origin == BREM)
        np.testing.assert_array_equal(electrons.group, photons.group)
        assert len(np.unique(electrons.group)) == n
        # Bethe-Heitler: E[z] = exp(-t), t = X/X0 of the material at this eta
        kept = 1 - electrons.radiated
        t = _radiation_lengths(refsim, eta)
        assert kept.mean() == pytest.approx(np.exp(-t), rel=0.03)
        np.testing.assert_allclose(electrons.p / p.p, kept, rtol=1e-9, atol=1e-12)
        # the electron and its photon share the momentum (pz and |pT|), and the energy up to the electron mass
        np.testing.assert_allclose(electrons.pz + photons.pz, p.pz, rtol=1e-12)
        np.testing.assert_allclose(electrons.pt + photons.pt, p.pt, rtol=1e-12)
        np.testing.assert_allclose(electrons.e + photons.e, p.e, atol=0.0011)
        np.testing.assert_array_equal(np.sign(electrons.px), np.sign(p.px))
        # the photon leaves tangent to the helix: between the initial direction and where the electron lands
        landing = propagate(p, refsim.geometry, refsim.effects).ecal_phi
        turn = -p.charge * ((photons.phi - p.phi + np.pi) % (2 * np.pi) - np.pi)
        bend = -p.charge * ((landing - p.phi + np.pi) % (2 * np.pi) - np.pi)
        assert np.all(turn >= -1e-12) and np.all(turn <= bend + 1e-12) and bend.min() > 0


def test_photons_convert_with_the_material_probability(tmp_path):
    from parnassus.refsim.interactions import convert_photons
    from parnassus.refsim.particles import BREM, CONVERSION

    refsim = params(tmp_path)
    geometry, inner = refsim.geometry, refsim.interactions.material_inner_radius
    n = 4000
    sharing = []
    for eta, seed in ((0.0, 7), (1.45, 8)):
        p = _one_per_event(particles_of([22] * n, np.full(n, 10.0), np.full(n, eta), np.linspace(-3, 3, n)))
        out = convert_photons(p, refsim.interactions.radiation_lengths, inner, geometry, streams(seed))
        t = _radiation_lengths(refsim, eta)
        converted = np.setdiff1d(np.arange(n), out.event[out.pid == 22])
        assert len(converted) / n == pytest.approx(-np.expm1(-7 / 9 * t), abs=0.025)
        legs = out.take(np.flatnonzero(out.pid != 22))
        assert np.all(legs.origin == CONVERSION)
        # one e- and one e+ per conversion, sharing a group of their own, carrying the photon's momentum
        assert np.all(np.bincount(legs.event[legs.pid == 11], minlength=n)[converted] == 1)
        assert np.all(np.bincount(legs.event[legs.pid == -11], minlength=n)[converted] == 1)
        electron = legs.take(np.flatnonzero(legs.pid == 11)[np.argsort(legs.event[legs.pid == 11])])
        positron = legs.take(np.flatnonzero(legs.pid == -11)[np.argsort(legs.event[legs.pid == -11])])
        np.testing.assert_array_equal(electron.event, converted)
        np.testing.assert_array_equal(electron.group, positron.group)
        assert len(np.unique(electron.group)) == len(converted)
        for name in ("px", "py", "pz"):
            np.testing.assert_allclose(getattr(electron, name) + getattr(positron, name),
                                       getattr(p, name)[converted], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(electron.e + positron.e, p.e[converted], atol=0.0011)
        # conversion points: on the photon's line, in the material between the beam pipe and the tracker's end,
        # uniform along the path (so in radius)
        radius = np.hypot(electron.x, electron.y)
        assert radius.min() >= inner - 1e-9 and radius.max() <= geometry.tracker_radius + 1e-9
        assert radius.mean() == pytest.approx((inner + geometry.tracker_radius) / 2, rel=0.05)
        np.testing.assert_allclose(electron.z / radius, np.sinh(eta), atol=1e-9)
        np.testing.assert_array_equal(electron.x, positron.x)
        sharing.append(electron.e / p.e[converted])
    # energy sharing dsigma/dx ~ 1 - 4/3 x (1 - x): E[x (1 - x)] = 11/70 (1/6 for a uniform sharing)
    x = np.concatenate(sharing)
    assert np.mean(x * (1 - x)) == pytest.approx(11 / 70, abs=0.004)
    # brem photons never convert
    brem = particles_of([22] * n, np.full(n, 10.0), np.full(n, 1.45), np.linspace(-3, 3, n))
    brem = brem.replace(origin=np.full(n, BREM, dtype=np.int8))
    out = convert_photons(brem, refsim.interactions.radiation_lengths, inner, geometry, streams(9))
    assert len(out) == n and np.all(out.pid == 22) and np.array_equal(out.px, brem.px)


def _stepped_hit(x0, y0, z0, phi0, eta, charge, pt, field, radius, step=0.01):
    """(eta, phi) where a helix reaches ``radius``, by small steps in the field (independent of the tracker)."""
    rho = 1000.0 * pt / (C_LIGHT * field)
    s = np.arange(0.0, 4000.0, step)
    direction = phi0 - charge * (s + step / 2) / rho  # positive charges turn clockwise in B along +z
    x = x0 + np.concatenate([[0.0], np.cumsum(step * np.cos(direction))])
    y = y0 + np.concatenate([[0.0], np.cumsum(step * np.sin(direction))])
    r = np.hypot(x, y)
    k = np.flatnonzero(r >= radius)[0]
    f = (radius - r[k - 1]) / (r[k] - r[k - 1])
    hx, hy = x[k - 1] + f * (x[k] - x[k - 1]), y[k - 1] + f * (y[k] - y[k - 1])
    path = (k - 1 + f) * step
    return np.arcsinh((z0 + path * np.sinh(eta)) / radius), np.arctan2(hy, hx)


def test_displaced_particles_start_at_their_production_point(tmp_path):
    refsim = params(tmp_path)
    geometry = refsim.geometry
    # charged: born at (300, 0, 50) mm, pT 5 GeV along +x; neutral: born at (300, 0, 100) along phi = pi/2, and
    # one pointing back across the beam line
    p = particles_of([211, -211, 22, 130], [5.0, 5.0, 10.0, 10.0], [0.3, -0.4, 0.5, 0.2],
                     [0.0, 0.0, np.pi / 2, np.pi])
    p = p.replace(x=np.full(4, 300.0), y=np.zeros(4), z=np.array([50.0, 50.0, 100.0, 100.0]))
    impact = propagate(p, geometry, refsim.effects)
    assert impact.reaches.all()
    for i in (0, 1):
        for radius, eta_hit, phi_hit in ((geometry.ecal_radius, impact.ecal_eta, impact.ecal_phi),
                                         (geometry.hcal_radius, impact.hcal_eta, impact.hcal_phi)):
            expected = _stepped_hit(300.0, 0.0, 50.0, 0.0, p.eta[i], p.charge[i], 5.0, geometry.magnetic_field,
                                    radius)
            assert eta_hit[i] == pytest.approx(expected[0], abs=1e-5)
            assert phi_hit[i] == pytest.approx(expected[1], abs=1e-5)
    assert impact.ecal_phi[0] < 0 < impact.ecal_phi[1]
    radius = geometry.ecal_radius
    path = np.sqrt(radius**2 - 300.0**2)
    assert impact.ecal_phi[2] == pytest.approx(np.arctan2(path, 300.0))
    assert impact.ecal_eta[2] == pytest.approx(np.arcsinh((100.0 + path * np.sinh(0.5)) / radius))
    assert abs(impact.ecal_phi[3]) == pytest.approx(np.pi)  # through the beam line to the far side
    assert impact.ecal_eta[3] == pytest.approx(np.arcsinh((100.0 + (300.0 + radius) * np.sinh(0.2)) / radius))


def _perfect_tracking(refsim):
    one = Formula("1.0")
    tracking = dataclasses.replace(refsim.tracking, efficiency=one, muon_efficiency=one, electron_efficiency=one)
    effects = dataclasses.replace(refsim.effects, fake_tracks=False, track_merging=False, decays_in_flight=False,
                                  vertex_resolution=False)
    return dataclasses.replace(refsim, tracking=tracking, effects=effects)


def test_track_reference_point_is_the_closest_approach_to_the_beam_line(tmp_path):
    from parnassus.refsim.interactions import convert_photons, decay_long_lived

    refsim = _perfect_tracking(params(tmp_path))
    n = 3000
    rng = np.random.default_rng(10)
    # conversion legs, collinear with photons from a primary vertex at z = 20 mm
    photons = particles_of([22] * n, np.full(n, 10.0), rng.uniform(-1.5, 1.5, n), rng.uniform(-3, 3, n), z=20.0)
    legs = convert_photons(photons, refsim.interactions.radiation_lengths, refsim.interactions.material_inner_radius,
                           refsim.geometry, streams(10))
    legs = legs.take(np.flatnonzero(legs.pid != 22))
    tracks = _tracks(legs, refsim, refsim.effects)
    produced = np.hypot(legs.x, legs.y)[tracks.particle]
    assert len(tracks) > 300 and np.all(tracks.conversion)
    assert np.all(produced <= refsim.tracking.production_radius_max) and np.median(produced) > 200
    np.testing.assert_allclose(tracks.x, 0.0, atol=1e-9)
    np.testing.assert_allclose(tracks.y, 0.0, atol=1e-9)
    np.testing.assert_allclose(tracks.z, 20.0, atol=1e-9)
    # pions of K0S decays: displaced, roughly pointing back; their reference point is across the track, at the
    # straight line's impact parameter
    k0s = particles_of([310] * n, np.full(n, 5.0), rng.uniform(-1.5, 1.5, n), rng.uniform(-3, 3, n))
    pions = decay_long_lived(k0s, refsim.interactions.decays, refsim.geometry, streams(11))
    pions = pions.take(np.flatnonzero(np.abs(pions.pid) == 211))
    tracks = _tracks(pions, refsim, refsim.effects)
    track_of = pions.take(tracks.particle)
    produced = np.hypot(track_of.x, track_of.y)
    displaced = produced > 20.0
    assert displaced.sum() > 500
    phi, eta = track_of.phi, track_of.eta
    np.testing.assert_allclose(tracks.x * np.cos(phi) + tracks.y * np.sin(phi), 0.0, atol=1e-9)
    d0 = np.hypot(tracks.x, tracks.y)
    np.testing.assert_allclose(d0, np.abs(track_of.x * np.sin(phi) - track_of.y * np.cos(phi)), atol=1e-9)
    back = track_of.x * np.cos(phi) + track_of.y * np.sin(phi)
    np.testing.assert_allclose(tracks.z, track_of.z - back * np.sinh(eta), atol=1e-9)
    assert np.median(d0[displaced] / produced[displaced]) < 0.2


def test_electrons_are_reconstructed_with_their_brem(tmp_path):
    card = card_with(tmp_path, pool=None)
    refsim = card.generator.refsim
    p = _single_particles([11, -11] * 250, seed=11, pt=30.0)  # electrons and positrons
    out = _simulate(refsim, card.output, p)
    electrons = ak.flatten(out[out.cls == ELECTRON])
    photons = ak.flatten(out[out.cls == PHOTON])
    assert len(electrons) >= 0.8 * 500
    assert len(photons) < 0.3 * 500  # the brem photons are in the supercluster
    # the electron's momentum is the Gaussian-sum fit's, at the vertex (before the brem losses)
    assert float(ak.mean(electrons.pt)) == pytest.approx(30.0, rel=0.015)
    # without the brem road, E/p of the nearest cluster alone fails and the electrons are lost
    narrow = dataclasses.replace(refsim, particle_flow=dataclasses.replace(refsim.particle_flow,
                                                                           electron_road_eta=1e-6))
    out = _simulate(narrow, card.output, p)
    assert ak.sum(out.cls == ELECTRON) < 0.2 * len(electrons)
    assert ak.sum(out.cls == PHOTON) > 2 * len(photons)


def test_muons_are_identified_and_their_calorimeter_deposits_masked(tmp_path):
    card = card_with(tmp_path, pool=None)
    refsim = card.generator.refsim
    n = 500
    p = _single_particles([13, -13] * (n // 2), seed=12, pt=30.0)
    out = _simulate(refsim, card.output, p)
    assert ak.sum(out.cls == MUON) >= 0.95 * n
    assert ak.sum(ak.num(_near(out, p, NEUTRAL_HADRON, 0.4))) <= 0.05 * n
    # without the mask, the muons' MIP deposits become neutral hadrons next to them
    unmasked = dataclasses.replace(refsim, particle_flow=dataclasses.replace(refsim.particle_flow,
                                                                             muon_calo_energy=0.0))
    out = _simulate(unmasked, card.output, p)
    assert ak.sum(ak.num(_near(out, p, NEUTRAL_HADRON, 0.4))) > 0.5 * n


def test_photon_energies_are_calibrated(tmp_path):
    card = card_with(tmp_path, pool=None, conversions=False)
    output = dataclasses.replace(card.output, pt_min=0.0)
    refsim = card.generator.refsim
    p = _single_particles([22] * 1000, seed=13, energy=2.0, eta_max=1.0)

    def response(refsim):
        photons = _near(_simulate(refsim, output, p), p, PHOTON, 0.2)
        return float(ak.sum(photons.e)) / (2.0 * len(p))

    assert response(refsim) == pytest.approx(1.0, abs=0.03)
    raw = dataclasses.replace(refsim, particle_flow=dataclasses.replace(refsim.particle_flow,
                                                                        photon_calibration=Formula("1.0")))
    assert response(raw) < 0.96  # the energy lost under the cell thresholds


def test_hadron_showers_fragment_into_several_ecal_clusters(tmp_path):
    from parnassus.refsim.calorimeter import particle_deposits

    card = card_with(tmp_path, pool=None)
    p = _single_particles([211] * 500, seed=14, pt=30.0, eta_max=0.0)
    photons = {}
    for fragments in (True, False):
        refsim = card_with(tmp_path, pool=None, shower_fragments=fragments).generator.refsim
        photons[fragments] = ak.sum(_simulate(refsim, card.output, p).cls == PHOTON) / len(p)
    assert photons[True] > photons[False] + 0.5
    # the deposits themselves: the same ECAL energy, in Poisson(1.5 log(1 + E)) extra pieces spread by ~5 cells
    refsim, n = card.generator.refsim, len(p)
    calo, interactions = refsim.calorimetry, refsim.interactions
    zeros = np.zeros(n)
    deposits = {}
    for fragments in (True, False):
        effects = dataclasses.replace(refsim.effects, shower_fragments=fragments)
        deposits[fragments], _ = particle_deposits(p.cls, np.arange(n), p.e, zeros, zeros, zeros, zeros,
                                                   np.zeros(n, dtype=bool), calo, effects, streams(15),
                                                   interactions, refsim.geometry.ecal_cell)
    on, off = deposits[True], deposits[False]
    np.testing.assert_allclose(np.bincount(on.event, weights=on.energy, minlength=n), off.energy, rtol=1e-9)
    showering = off.energy != calo.mip_ecal
    expected = interactions.hadron_fragments(off.energy / np.cosh(zeros), zeros, off.energy)[showering].sum()
    assert len(on.energy) - n == pytest.approx(expected, rel=0.1)
    pieces = on.spread == calo.em_spread
    assert np.std(on.eta[pieces]) == pytest.approx(interactions.fragment_spread * refsim.geometry.ecal_cell, rel=0.1)


def test_out_of_time_pileup_adds_scaled_calorimeter_energy(tmp_path, pool, events):
    from parnassus.refsim.calorimeter import Deposits

    card = card_with(tmp_path, pool)
    refsim = card.generator.refsim
    sim = ReferenceSimulation(refsim, card.output)
    asked = []
    overlay = sim.pool.overlay
    sim.pool.overlay = lambda n, mu, *args: asked.append(mu) or overlay(n, mu, *args)
    empty = Deposits(*(np.zeros(0) for _ in range(5)))
    ecal, hcal = sim._out_of_time(empty, empty, 20, streams(16))
    assert asked == [pytest.approx(2 * refsim.pileup.mu)]  # the two neighbouring bunch crossings
    assert ecal.energy.sum() > 0 and hcal.energy.sum() > 0 and set(np.unique(ecal.event)) <= set(range(20))
    full = dataclasses.replace(refsim, pileup=dataclasses.replace(refsim.pileup, out_of_time_ecal=1.0,
                                                                  out_of_time_hcal=1.0))
    unscaled = ReferenceSimulation(full, card.output)._out_of_time(empty, empty, 20, streams(16))
    np.testing.assert_allclose(ecal.energy, unscaled[0].energy * refsim.pileup.out_of_time_ecal)
    np.testing.assert_allclose(hcal.energy, unscaled[1].energy * refsim.pileup.out_of_time_hcal)
    np.testing.assert_array_equal(ecal.eta, unscaled[0].eta)
    # in the whole simulation: more neutral energy, the same charged particles (no tracks out of time)
    off = card_with(tmp_path, pool, out_of_time_pileup=False)
    result = {}
    for name, c in (("on", card), ("off", off)):
        out = ReferenceSimulation(c.generator.refsim, c.output)(events, 1)
        result[name] = (float(ak.mean(ak.num(out[out.charge != 0]))),
                        float(ak.mean(ak.sum(out.pt[out.charge == 0], axis=1))))
    assert result["on"][0] == pytest.approx(result["off"][0], rel=0.02)
    assert result["on"][1] > 1.2 * result["off"][1]


def test_decays_of_parents_whose_record_energy_is_rounded_below_their_momentum(tmp_path):
    from parnassus.refsim.interactions import decay_long_lived

    refsim = params(tmp_path)
    # a forward Lambda of examples/ttbar_7TeV_50.hepmc.gz (its 5th event), energy written with 7 digits: E = pz
    n = 2000
    lam = particles_of([3122] * n, np.full(n, 0.5113), np.full(n, 8.35), np.full(n, 0.1166))
    lam = lam.replace(px=np.full(n, 0.5078312), py=np.full(n, 0.05948749), pz=np.full(n, 1081.307),
                      e=np.full(n, 1081.307), mass=np.full(n, 1.11568))
    out = decay_long_lived(lam, refsim.interactions.decays, refsim.geometry, streams(0))
    assert (out.pid != 3122).any()  # a few percent decay before the endcap
    assert np.all(np.isfinite(out.e)) and out.p.max() <= 1081.307 * (1 + 1e-6)
