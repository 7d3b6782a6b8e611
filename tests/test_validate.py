"""parnassus validate: Wasserstein metrics, Hungarian matching, confusion matrices and the rendered report."""

import json
import math
import re
import shutil
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import wasserstein_distance

from parnassus.card import load_card
from parnassus.cli import main
from parnassus.errors import InputError
from parnassus.run import run
from parnassus.validate import validate
from parnassus.validate.matching import confusion_matrix, match, match_events, row_normalised
from parnassus.validate.metrics import (
    Sample,
    bootstrap_counts,
    closest,
    compare,
    confusion_distance,
    noise_floor,
    random_halves,
    wasserstein,
    wasserstein_replicas,
)
from parnassus.validate.observables import (
    BRANCHES,
    OBSERVABLES,
    FileObservables,
    jet_response_keys,
    truth_isolated,
)
from parnassus.validate.report import InputFile, compute_metrics, default_labels

from .conftest import CARD, EXAMPLE


def _events_sample(values: np.ndarray) -> Sample:
    """One value per event."""
    return Sample(values, np.arange(len(values)))


# --- metrics -------------------------------------------------------------------------------------------------

def test_a_sample_against_itself_has_zero_distance_and_a_shift_gives_the_shift():
    x = np.random.default_rng(1).normal(size=5000)
    assert wasserstein(x, x) == 0.0
    assert wasserstein(x, x + 0.7) == pytest.approx(0.7, abs=1e-12)
    counts = bootstrap_counts(len(x), 20, seed=3)
    shifted = compare(_events_sample(x), _events_sample(x + 0.7), counts)
    # paired bootstrap: both samples resample the same events, so every replica sees exactly the shift
    assert shifted["value"] == pytest.approx(0.7) and shifted["mean"] == pytest.approx(0.7)
    assert shifted["std"] < 1e-9
    same = compare(_events_sample(x), _events_sample(x), counts)
    assert same == {"value": 0.0, "mean": 0.0, "std": 0.0}


def test_replica_distances_equal_scipy_with_weights():
    rng = np.random.default_rng(2)
    u, v = rng.exponential(size=300), rng.normal(1.0, 0.5, size=200).round(1)  # ties inside v
    wu, wv = rng.integers(0, 4, size=(5, 300)), rng.integers(0, 4, size=(5, 200))
    got = wasserstein_replicas(u, v, wu, wv)
    expected = [wasserstein_distance(u, v, wu[i], wv[i]) for i in range(5)]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert math.isnan(wasserstein_replicas(u, v, np.zeros((1, 300)), wv[:1])[0])


def test_noise_floor_is_near_zero_for_one_distribution_and_far_below_a_real_difference():
    rng = np.random.default_rng(4)
    target = _events_sample(rng.normal(size=40_000))
    floor = noise_floor(target, random_halves(40_000, 16, seed=5))
    assert 0 < floor["value"] < 0.03 and floor["std"] > 0 and floor["mean"] == pytest.approx(floor["value"])
    counts = bootstrap_counts(40_000, 20, seed=5)
    different = compare(target, _events_sample(rng.normal(0.5, 1.0, size=40_000)), counts)
    assert different["value"] == pytest.approx(0.5, abs=0.03) and different["value"] > 10 * floor["value"]


def test_noise_floor_is_the_expected_distance_of_two_independent_halves():
    """The mean over random halvings estimates E[W1] of two independent samples of half the size; a single halving
    (even against odd events) is one draw of it, which for a rare count can fall far below."""
    rng = np.random.default_rng(7)
    rate, n = 0.09, 2000  # a rare object's count per event (isolated photons in QCD)
    independent = [wasserstein_distance(rng.poisson(rate, n // 2), rng.poisson(rate, n // 2)) for _ in range(400)]
    expected = np.mean(independent)
    floors = [noise_floor(_events_sample(rng.poisson(rate, n).astype(float)), random_halves(n, 32, seed=k))
              for k in range(20)]
    assert np.mean([f["value"] for f in floors]) == pytest.approx(expected, rel=0.1)
    assert np.std(independent) > 0.4 * expected  # why one split is not enough
    assert np.std([f["value"] for f in floors]) < 0.5 * np.std(independent)
    halvings = random_halves(n, 32, seed=3)
    assert (halvings.sum(axis=1) == n // 2).all() and len({row.tobytes() for row in halvings}) == 32
    np.testing.assert_array_equal(halvings, random_halves(n, 32, seed=3))


def test_bootstrap_resamples_events_with_all_their_values():
    counts = bootstrap_counts(50, 7, seed=1)
    assert counts.shape == (7, 50) and (counts.sum(axis=1) == 50).all()
    np.testing.assert_array_equal(counts, bootstrap_counts(50, 7, seed=1))
    # two values per event: a value's weight is the count of its event
    sample = Sample(np.arange(100.0), np.repeat(np.arange(50), 2))
    weights = counts[:, sample.events]
    assert (weights[:, 0::2] == weights[:, 1::2]).all()


def test_empty_samples_give_nan_and_closest_ignores_them():
    assert math.isnan(wasserstein(np.zeros(0), np.ones(3)))
    assert closest({"a": math.nan, "b": 0.2, "c": 0.1, "d": None}) == "c"
    assert closest({"a": math.nan}) is None
    assert closest({"a": 0.1, "b": 0.1, "c": 0.3}) is None  # a tie counts for no one


# --- matching ------------------------------------------------------------------------------------------------

def test_matching_pairs_nearest_forbids_far_pairs_and_wraps_phi():
    reco_eta, reco_phi = np.array([0.0, 1.0, 0.0, -2.0]), np.array([0.0, 1.0, 3.1, 0.0])
    truth_eta, truth_phi = np.array([1.1, 0.05, 2.0, 0.0]), np.array([1.0, 0.0, -2.0, -3.1])
    rows, cols = match(reco_eta, reco_phi, truth_eta, truth_phi, max_dr=0.2)
    assert dict(zip(rows.tolist(), cols.tolist(), strict=True)) == {0: 1, 1: 0, 2: 3}  # phi 3.1 ~ -3.1
    # a single far pair is still assigned by the solver, but it is forbidden and dropped
    rows, cols = match(np.array([0.0]), np.array([0.0]), np.array([0.0]), np.array([0.5]), max_dr=0.2)
    assert len(rows) == len(cols) == 0


def test_matching_maximises_the_allowed_pairs_not_greedy():
    # greedy nearest-first could take a-x (0.10) and leave b with only the forbidden y (0.35)
    reco_eta, truth_eta = np.array([0.0, 0.25]), np.array([0.1, -0.1])
    rows, cols = match(reco_eta, np.zeros(2), truth_eta, np.zeros(2), max_dr=0.2)
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 1), (1, 0)]


def test_match_events_returns_flat_indices_per_event():
    # event 0: 2 reco, 2 truth (crossed); event 1: no reco; event 2: 1 reco, 2 truth
    reco_eta = np.array([0.0, 1.0, 2.0])
    truth_eta = np.array([1.01, 0.01, 5.0, 2.02, -1.0])
    r, t = match_events(reco_eta, np.zeros(3), np.array([2, 0, 1]), truth_eta, np.zeros(5), np.array([2, 1, 2]),
                        max_dr=0.6)
    assert list(zip(r.tolist(), t.tolist(), strict=True)) == [(0, 1), (1, 0), (2, 3)]


def test_confusion_matrix_on_a_hand_made_example():
    truth = np.array([0, 0, 0, 1, 4, 4, 3])
    reco = np.array([0, 0, 4, 1, 4, 3, 3])
    matrix = confusion_matrix(truth, reco)
    assert matrix.sum() == 7 and matrix[0, 0] == 2 and matrix[0, 4] == 1 and matrix[1, 1] == 1
    assert matrix[4, 4] == 1 and matrix[4, 3] == 1 and matrix[3, 3] == 1 and matrix[2].sum() == 0
    normalised = row_normalised(matrix)
    np.testing.assert_allclose(normalised[0], [2 / 3, 0, 0, 0, 1 / 3])
    np.testing.assert_allclose(normalised[2], 0.0)
    assert confusion_distance(matrix, matrix) == 0.0
    assert confusion_distance(np.eye(5), np.roll(np.eye(5), 1, axis=1)) == pytest.approx(1.0)


# --- analysis observables on hand-made chunks ---------------------------------------------------------------

_SINGLETONS = ("Event", "MissingET", "GenMissingET", "ScalarHT")
_INTEGER_LEAVES = ("PID", "Status", "Class", "Number")


def _chunk(n_events: int, **branches: list) -> ak.Array:
    """A chunk as ``uproot`` reads it: every branch of :data:`BRANCHES`, the given ones (``Particle_PT`` for
    ``Particle.PT``) filled, the other leaves 0 (collections not given: empty; MET-like: one entry)."""
    sizes = {key.split("_")[0]: [len(event) for event in values] for key, values in branches.items()}
    columns = {}
    for name in BRANCHES:
        collection, leaf = name.split(".")
        dtype = np.int32 if leaf in _INTEGER_LEAVES else np.float32
        size = sizes.get(collection, [1 if collection in _SINGLETONS else 0] * n_events)
        values = branches.pop(name.replace(".", "_"), [[0] * n for n in size])
        flat = np.array([v for event in values for v in event], dtype=dtype)
        columns[name] = ak.unflatten(flat, [len(event) for event in values])
    assert not branches, f"unknown branches {list(branches)}"
    return ak.zip(columns, depth_limit=1)


def _muon_chunk(reco_muon: bool) -> ak.Array:
    """Event 0: an isolated truth muon (a pion and a neutrino nearby), found. Event 1: an isolated truth muon
    not found, a non-isolated one found, a status-2 one. Event 2: nothing. ``reco_muon``: event 1's isolated
    muon is found too."""
    # (PID, status, pT, eta, phi) per truth particle
    truth = [[(13, 1, 30.0, 0.0, 0.0), (211, 1, 2.0, 0.3, 0.0), (14, 1, 50.0, 0.1, 0.1)],
             [(-13, 1, 20.0, 1.0, 1.0), (13, 1, 15.0, -1.0, -2.0), (211, 1, 10.0, -1.2, -2.0),
              (13, 2, 40.0, 0.0, 2.5)],
             []]
    muons = [[(28.0, 0.02, 0.01)], [(15.5, -1.0, -2.01)], []]
    if reco_muon:
        muons[1].append((21.0, 1.0, 1.05))
    column = {f"Particle_{leaf}": [[p[i] for p in event] for event in truth]
              for i, leaf in enumerate(("PID", "Status", "PT", "Eta", "Phi"))}
    column |= {f"Muon_{leaf}": [[m[i] for m in event] for event in muons]
               for i, leaf in enumerate(("PT", "Eta", "Phi"))}
    return _chunk(3, **column)


def test_truth_isolation_keeps_status_1_isolated_objects_and_ignores_neutrinos():
    truth = truth_isolated(_muon_chunk(reco_muon=False))
    assert ak.to_list(truth.pt) == [[30.0], [20.0], []]  # 2 GeV in the cone of 30 (< 6); 10 in the cone of 15
    assert ak.to_list(truth.pid) == [[13], [13], []]


def test_isolated_muon_efficiency_and_response_on_a_hand_made_chunk():
    obs = FileObservables()
    obs.process(_muon_chunk(reco_muon=False))
    found = obs.sample("muon.found")
    assert found.values.tolist() == [1.0, 0.0] and found.events.tolist() == [0, 1]
    assert found.values.mean() == 0.5 and obs.counters["muon.found"] == 1 and obs.counters["muon.truth"] == 2
    response = obs.sample("muon.response")
    assert response.values.tolist() == pytest.approx([28.0 / 30.0]) and response.events.tolist() == [0]
    assert obs.sample("muon.n").values.tolist() == [1.0, 1.0, 0.0]  # the collection's size
    assert len(obs.sample("electron.found")) == 0 and len(obs.sample("photon.response")) == 0


def test_efficiency_distance_is_the_efficiency_difference_and_empty_observables_count_for_nobody():
    observables = []
    for reco_muon in (False, True, False):
        obs = FileObservables()
        obs.process(_muon_chunk(reco_muon))
        observables.append(obs)
    files = [InputFile(Path(f"{label}.root"), label, {}, 3) for label in ("target", "better", "same")]
    results = compute_metrics(files, observables, 3, replicas=3, seed=1, progress=False)
    entry = results["observables"]["muon.found"]
    assert entry["w1"]["better"]["value"] == pytest.approx(0.5)  # efficiency 1 against 0.5
    assert entry["w1"]["same"]["value"] == 0.0 and entry["closest"] == "same"
    assert results["matching"]["better"]["muon_efficiency"] == 1.0
    assert results["matching"]["target"]["muon_efficiency"] == 0.5
    assert math.isnan(results["matching"]["target"]["electron_efficiency"])
    for key in ("electron.found", "photon.response", "met.dphi_min_jets", "jet.res.pt.pt20_50"):
        empty = results["observables"][key]
        assert empty["closest"] is None and math.isnan(empty["w1"]["same"]["value"])
    counted = sum(1 for entry in results["observables"].values() if entry["closest"])
    assert sum(results["summary"]["closest_count"].values()) == counted


def test_delta_phi_of_jets_and_met_on_a_hand_made_chunk():
    # (pT, phi) of the jets, MET phi per event
    jets = [[(50.0, 0.0), (40.0, 2.0), (25.0, 3.0)],  # the 25 GeV jet (Δφ 0.78) is below 30 GeV
            [(35.0, 1.0), (80.0, -1.0)],  # not ordered by pT
            [(100.0, 1.0), (90.0, 1.1), (80.0, 1.2), (70.0, 1.3), (60.0, 0.05)],  # the 5th jet is not used
            []]
    met_phi = [-2.5, 0.0, 0.0, 1.0]
    chunk = _chunk(4, Jet_PT=[[j[0] for j in e] for e in jets], Jet_Phi=[[j[1] for j in e] for e in jets],
                   Jet_Eta=[[0.0] * len(e) for e in jets], MissingET_MET=[[30.0]] * 4,
                   MissingET_Phi=[[phi] for phi in met_phi])
    obs = FileObservables()
    obs.process(chunk)
    dphi_min, dphi_lead = obs.sample("met.dphi_min_jets"), obs.sample("met.dphi_lead_jet")
    np.testing.assert_allclose(dphi_min.values, [2 * np.pi - 4.5, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(dphi_lead.values, [2.5, 1.0, 1.0], rtol=1e-6)
    assert dphi_min.events.tolist() == dphi_lead.events.tolist() == [0, 1, 2]
    assert obs.sample("met.met").values.tolist() == [30.0] * 4


def test_jet_response_bins_split_the_matched_jets_by_genjet_pt_and_eta():
    # GenJet (pT, eta) and the jet at the same place with pT × 1.1; the 15 GeV GenJet is below the bins
    gen = [[(30.0, 0.5), (150.0, -2.0)], [(300.0, 3.0), (15.0, 0.0)]]
    chunk = _chunk(2, **{f"{jets}_{leaf}": [[g[i] * (1.1 if jets == "Jet" and i == 0 else 1.0) for g in e]
                                            for e in gen]
                         for jets in ("Jet", "GenJet") for i, leaf in enumerate(("PT", "Eta"))},
                   Jet_Phi=[[0.0, 1.0], [0.0, 2.0]], GenJet_Phi=[[0.0, 1.0], [0.0, 2.0]])
    obs = FileObservables()
    obs.process(chunk)
    entries = {key: len(obs.sample(key)) for key in (*jet_response_keys("pt"), *jet_response_keys("eta"))}
    assert entries == {"jet.res.pt.pt20_50": 1, "jet.res.pt.pt50_100": 0, "jet.res.pt.pt100_200": 1,
                       "jet.res.pt.pt200_inf": 1, "jet.res.pt.eta0_1p3": 1, "jet.res.pt.eta1p3_2p5": 1,
                       "jet.res.pt.eta2p5_5": 1}
    np.testing.assert_allclose(obs.sample("jet.res.pt.pt200_inf").values, [0.1], rtol=1e-5)
    assert obs.sample("jet.res.pt.pt200_inf").events.tolist() == [1]


# --- the report ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_files(tmp_path_factory) -> dict[str, Path]:
    """20 example events through the pipeline twice (two seeds), and 20 other events."""
    directory = tmp_path_factory.mktemp("validate")
    card = load_card(CARD)
    files = {"target": directory / "seed1.root", "candidate": directory / "seed2.root",
             "other": directory / "other.root"}
    run(card, EXAMPLE, files["target"], max_events=20, seed=1, progress=False)
    run(card, EXAMPLE, files["candidate"], max_events=20, seed=2, progress=False)
    run(card, EXAMPLE, files["other"], max_events=20, skip=5, seed=1, progress=False)
    return files


def test_report_renders_from_small_files(small_files, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["validate", "--target", str(small_files["target"]),
                                       str(small_files["candidate"]), "--out", str(out), "--quiet",
                                       "--label", "seed 1", "--label", "seed 2"])
    assert result.exit_code == 0, result.output
    assert "20 events" in result.output and "index.md" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["events"] == 20
    assert [f["label"] for f in metrics["files"]] == ["seed 1", "seed 2"]
    assert metrics["files"][0]["generator"] == "parametric"
    assert set(metrics["observables"]) == {spec.key for spec in OBSERVABLES}
    bins = {"pt": ["jet.res.pt.pt20_50", "jet.res.pt.pt50_100", "jet.res.pt.pt100_200", "jet.res.pt.pt200_inf"],
            "eta": ["jet.res.pt.eta0_1p3", "jet.res.pt.eta1p3_2p5", "jet.res.pt.eta2p5_5"]}
    assert set(bins["pt"] + bins["eta"]) <= set(metrics["observables"])
    for name in ("electron", "muon", "photon"):
        assert {f"{name}.n", f"{name}.found", f"{name}.response"} <= set(metrics["observables"])
    assert {"met.met", "met.dphi_min_jets", "met.dphi_lead_jet"} <= set(metrics["observables"])
    # the pT bins and the |eta| bins hold the same jets (GenJet pT >= 20 GeV), and the JSON summary agrees
    entries = {key: metrics["observables"][key]["entries"]["seed 1"] for key in bins["pt"] + bins["eta"]}
    assert sum(entries[k] for k in bins["pt"]) == sum(entries[k] for k in bins["eta"]) > 0
    response = metrics["jet_response"]["seed 1"]
    assert [row["entries"] for row in response["pt"]] == [entries[k] for k in bins["pt"]]
    assert 0.5 < 1 + response["pt"][0]["mean"] < 1.5 and response["pt"][0]["std"] > 0
    assert metrics["matching"]["seed 1"]["muon_truth"] > 0
    assert 0 < metrics["matching"]["seed 1"]["muon_efficiency"] <= 1
    for key in ("event.n_pfc", "event.res.ht", "jet.res.pt", "particle.in_jet.res.pt", "particle.fake.pt"):
        entry = metrics["observables"][key]
        assert entry["w1"]["seed 2"]["value"] >= 0 and entry["noise_floor"]["value"] >= 0
        assert entry["closest"] == "seed 2" and entry["entries"]["seed 1"] > 0
    # the same truth events through the same generator: event counts of all but the smeared objects agree
    assert metrics["observables"]["event.n_pfc"]["w1"]["seed 2"]["value"] < 5
    assert set(metrics["confusion"]) == {"all", "in_jet", "out_jet"}
    assert len(metrics["confusion"]["all"]["normalised"]["seed 1"]) == 5
    assert 0.5 < metrics["matching"]["seed 1"]["pfcs_matched_fraction_all"] <= 1.0
    index = (out / "index.md").read_text()
    assert index.startswith("# Parnassus validation report")
    assert "| observable | W1 seed 2 | noise floor | closest |" in index and "`jet.lead.res.c2`" in index
    assert "not CMS data" not in index  # the refsim note is only for a refsim target
    assert "`jet.res.pt.pt50_100`" in index and "`muon.found`" in index and "`met.dphi_min_jets`" in index
    assert "(plots/jet_response.png)" in index and "Efficiency for isolated truth objects" in index
    images = re.findall(r"!\[[^\]]*\]\((plots/[^)]+\.png)\)", index)
    assert len(images) >= 15
    for image in images:
        assert (out / image).stat().st_size > 1000 and (out / image).with_suffix(".pdf").exists()


def test_a_file_against_itself_gives_zero_distances(small_files, tmp_path):
    path = small_files["target"]
    metrics = validate(path, [path], tmp_path / "self", labels=["a", "b"], formats=(), progress=False, replicas=3)
    values = [entry["w1"]["b"]["value"] for entry in metrics["observables"].values()]
    assert all(v == 0.0 for v in values if v is not None) and sum(v is not None for v in values) > 60
    for key in ("muon.found", "muon.response", "muon.n", "met.dphi_min_jets", "met.dphi_lead_jet",
                "jet.res.pt.pt20_50", "jet.res.pt.eta0_1p3"):
        assert metrics["observables"][key]["w1"]["b"]["value"] == 0.0, key
    assert all(d == 0.0 for d in (metrics["confusion"][c]["distance_to_target"]["b"] for c in metrics["confusion"]))


def test_files_with_other_events_are_a_one_line_error(small_files, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["validate", "--target", str(small_files["target"]), str(small_files["other"]),
                                  "--out", str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert str(small_files["other"]) in result.output and "same events" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "r" / "index.md").exists()
    # same event numbers, other truth particles (a looser truth pT cut)
    card = load_card(CARD)
    card.truth.pt_min = 0.5
    looser = tmp_path / "looser.root"
    run(card, EXAMPLE, looser, max_events=20, seed=1, progress=False)
    with pytest.raises(InputError, match=r"looser.root: event 0 \(Event.Number 0\) has other truth particles"):
        validate(small_files["target"], [looser], tmp_path / "r", formats=(), progress=False)


def test_event_counts_labels_and_unreadable_files_are_checked(small_files, tmp_path):
    short = tmp_path / "short.root"
    run(load_card(CARD), EXAMPLE, short, max_events=10, seed=1, progress=False)
    with pytest.raises(InputError, match=r"short.root: 10 events, the target .* has 20 \(-n N"):
        validate(small_files["target"], [short], tmp_path / "r", formats=(), progress=False)
    metrics = validate(small_files["target"], [short], tmp_path / "r", max_events=10, formats=(), progress=False,
                       replicas=3)
    assert metrics["events"] == 10
    with pytest.raises(InputError, match="one label per file"):
        validate(small_files["target"], [short], tmp_path / "r", labels=["only one"], progress=False)
    not_root = tmp_path / "not.root"
    not_root.write_text("hello")
    with pytest.raises(InputError, match="not.root: cannot be read as a ROOT file"):
        validate(small_files["target"], [not_root], tmp_path / "r", progress=False)
    with pytest.raises(InputError, match="missing.root: no such file"):
        validate(small_files["target"], [tmp_path / "missing.root"], tmp_path / "r", progress=False)
    copy = tmp_path / "copy" / small_files["target"].name
    copy.parent.mkdir()
    shutil.copy(small_files["target"], copy)
    assert default_labels([small_files["target"], copy]) == [f"{small_files['target'].parent.name}/seed1",
                                                             "copy/seed1"]
