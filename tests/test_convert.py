"""``parnassus convert``: a synthetic CMS Open Simulation ntuple round-trips into the Delphes layout."""

import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from parnassus.card import load_card
from parnassus.convert import BRANCHES, CM_TO_MM, TREE, convert
from parnassus.errors import InputError
from parnassus.io.delphes import read_metadata

from .conftest import CARD

N_EVENTS = 30
# PDG id -> class (0 charged hadron, 1 electron, 2 muon, 3 neutral hadron, 4 photon)
TRUTH_IDS = {211: 0, -211: 0, 321: 0, 2212: 0, -11: 1, 13: 2, 130: 3, 2112: 3, 22: 4}
PFLOW_IDS = {211: 0, -211: 0, 11: 1, -13: 2, 130: 3, 22: 4}


def ntuple_events(n_events: int = N_EVENTS, seed: int = 7) -> dict[str, ak.Array]:
    """Random events as the ntuple stores them: {"truth": records, "pflow": records}, float32 values, vertices in cm."""
    rng = np.random.default_rng(seed)
    events = {}
    for prefix, ids in (("truth", TRUTH_IDS), ("pflow", PFLOW_IDS)):
        counts = rng.integers(1, 7, n_events)
        counts[0] = 3  # the first event always has particles, another one none
        counts[1] = 0
        n = int(counts.sum())
        pid = rng.choice(list(ids), n).astype(np.int32)
        fields = {"pt": rng.uniform(0.5, 60.0, n), "eta": rng.uniform(-2.5, 2.5, n),
                  "phi": rng.uniform(-np.pi, np.pi, n), "vx": rng.normal(0.0, 0.02, n),
                  "vy": rng.normal(0.0, 0.02, n), "vz": rng.normal(0.0, 4.0, n)}
        fields = {name: values.astype(np.float32) for name, values in fields.items()}
        fields |= {"class": np.array([ids[p] for p in pid], dtype=np.int32), "pdgId": pid}
        events[prefix] = ak.unflatten(ak.zip(fields), counts)
    return events


def write_ntuple(path: Path, events: dict[str, ak.Array], counts: dict[str, np.ndarray] | None = None,
                 tree_name: str = TREE) -> Path:
    """Write ``events`` in the ntuple layout: branches truth_pt, ..., pflow_pdgId, counts ntruth, npflow.

    By default ntruth/npflow are the jagged branches' own counters; ``counts`` writes them as independent
    branches instead (so they can disagree), the counters then being named truth_length, pflow_length.
    """
    branches = dict(events)
    if counts is not None:
        branches |= {name: ak.Array(np.asarray(values, dtype=np.int32)) for name, values in counts.items()}
    counter = (lambda group: f"n{group}") if counts is None else (lambda group: f"{group}_length")
    with uproot.recreate(path) as file:
        tree = file.mktree(tree_name, {name: array.type for name, array in branches.items()},
                           field_name=lambda outer, inner: f"{outer}_{inner}", counter_name=counter)
        tree.extend(branches)
    return path


def delphes(path: Path) -> ak.Array:
    with uproot.open(path) as file:
        return file["Delphes"].arrays(library="ak")


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> tuple[dict[str, ak.Array], Path]:
    """The synthetic ntuple converted in chunks of 7 entries (so several chunks, one of them short)."""
    directory = tmp_path_factory.mktemp("convert")
    events = ntuple_events()
    source = write_ntuple(directory / "opensim.root", events)
    with uproot.open(source) as file:
        assert sorted(file[TREE].keys()) == sorted(BRANCHES)
    output = directory / "converted.root"
    counts = convert(load_card(CARD), source, output, step_size=7, progress=False)
    assert counts.as_dict() == {"read": N_EVENTS, "written": N_EVENTS, "skipped": {}, "skipped_total": 0,
                                "truncated": 0, "model_truncated": 0, "model_outside_acceptance": 0}
    return events, output


def test_truth_round_trips_into_particle(converted):
    events, output = converted
    truth, data = events["truth"], delphes(output)
    assert len(data) == N_EVENTS
    assert data["Event.Number"][:, 0].tolist() == list(range(N_EVENTS))
    assert ak.all(data["Event.Weight"] == 1.0)
    assert data["Particle_size"].tolist() == ak.num(truth).tolist()
    for leaf, name in (("PT", "pt"), ("Eta", "eta"), ("Phi", "phi"), ("PID", "pdgId")):
        assert data[f"Particle.{leaf}"].tolist() == truth[name].tolist(), leaf
    for leaf, name in (("X", "vx"), ("Y", "vy"), ("Z", "vz")):  # cm -> mm
        np.testing.assert_allclose(ak.to_numpy(ak.flatten(data[f"Particle.{leaf}"])),
                                   ak.to_numpy(ak.flatten(truth[name])).astype(np.float64) * 10.0, rtol=1e-6)
    pid = ak.to_numpy(ak.flatten(truth.pdgId))
    expected_mass = np.select([np.abs(pid) == 211, pid == 2212, pid == 22], [0.13957039, 0.93827208943, 0.0], -1.0)
    mass = ak.to_numpy(ak.flatten(data["Particle.Mass"]))
    np.testing.assert_allclose(mass[expected_mass >= 0], expected_mass[expected_mass >= 0], rtol=1e-6)
    charge = ak.to_numpy(ak.flatten(data["Particle.Charge"]))
    assert charge.tolist() == [{211: 1, -211: -1, 321: 1, 2212: 1, -11: 1, 13: -1}.get(p, 0) for p in pid]
    energy, momentum = ak.flatten(data["Particle.E"]), ak.flatten(data["Particle.P"])
    np.testing.assert_allclose(ak.to_numpy(energy**2), ak.to_numpy(momentum**2 + mass**2), rtol=1e-5)
    assert ak.all(data["Particle.Status"] == 1) and ak.all(data["Particle.T"] == 0)


def test_pflow_round_trips_into_candidates(converted):
    events, output = converted
    data = delphes(output)
    pflow = events["pflow"][ak.argsort(events["pflow"].pt, axis=1, ascending=False)]  # written pT-ordered
    assert data["ParticleFlowCandidate_size"].tolist() == ak.num(pflow).tolist()
    for leaf, name in (("PT", "pt"), ("Eta", "eta"), ("Phi", "phi"), ("Class", "class"), ("PID", "pdgId")):
        assert data[f"ParticleFlowCandidate.{leaf}"].tolist() == pflow[name].tolist(), leaf
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(data["ParticleFlowCandidate.Z"])),
                               ak.to_numpy(ak.flatten(pflow.vz)).astype(np.float64) * CM_TO_MM, rtol=1e-6)
    charged = ak.to_numpy(ak.flatten(pflow["class"])) <= 2
    charge = ak.to_numpy(ak.flatten(data["ParticleFlowCandidate.Charge"]))
    assert np.all(charge[~charged] == 0) and np.all(np.abs(charge[charged]) == 1)
    eflow = data["EFlowTrack_size"] + data["EFlowPhoton_size"] + data["EFlowNeutralHadron_size"]
    assert eflow.tolist() == ak.num(pflow).tolist()


def test_objects_are_built_from_the_candidates(converted):
    events, output = converted
    data = delphes(output)
    for name in ("Jet", "GenJet", "Electron", "Muon", "Photon", "MissingET", "GenMissingET", "ScalarHT"):
        assert f"{name}_size" in data.fields, name
    assert set(data["MissingET_size"].tolist()) == {1} == set(data["ScalarHT_size"].tolist())
    objects_ht = sum(ak.sum(data[f"{name}.PT"], axis=1) for name in ("Jet", "Electron", "Muon", "Photon"))
    np.testing.assert_allclose(ak.to_numpy(data["ScalarHT.HT"][:, 0]), ak.to_numpy(objects_ht), rtol=1e-5)
    assert ak.sum(data["Jet_size"]) > 0


def test_metadata_records_the_source_and_the_units(converted):
    _, output = converted
    meta = read_metadata(output)
    assert meta["source"] == "converted from CMS Open Simulation ntuple opensim.root"
    assert meta["selection"].startswith("external") and "not applied" in meta["selection"]
    assert meta["units"]["input_length"] == "cm" and meta["units"]["length_scale"] == 10.0
    assert meta["generator"] is None and meta["batch_size"] == 7
    assert meta["counts"]["written"] == N_EVENTS and meta["card"]["name"] == "delphes-cms-like"


def test_bad_events_are_skipped_and_counted(tmp_path):
    events = ntuple_events(12)
    truth, pflow = ak.to_list(events["truth"]), ak.to_list(events["pflow"])
    ntruth, npflow = [len(e) for e in truth], [len(e) for e in pflow]
    ntruth[2] += 1  # the count disagrees with the lists
    truth[3] = truth[3] + [dict(truth[0][0], pt=float("nan"))]
    ntruth[3] += 1
    truth[4][0] |= {"pdgId": 0, "class": 0}  # not a PDG id
    truth[5][0] |= {"pdgId": 22, "class": 0}  # a photon called a charged hadron
    pflow[6] = pflow[6] + [dict(pflow[0][0], **{"class": 7})]
    npflow[6] += 1
    bad = write_ntuple(tmp_path / "bad.root", {"truth": ak.Array(truth), "pflow": ak.Array(pflow)},
                       counts={"ntruth": ntruth, "npflow": npflow})
    output = tmp_path / "out.root"
    counts = convert(load_card(CARD), bad, output, step_size=5, progress=False)
    assert counts.read == 12 and counts.written == 7
    assert dict(counts.skipped) == {"ntruth disagrees with the truth lists": 1, "non-finite value": 1,
                                    "unknown PDG id": 1, "truth class disagrees with PDG id": 1,
                                    "unknown PFC class": 1}
    data = delphes(output)
    assert data["Event.Number"][:, 0].tolist() == [0, 1, 7, 8, 9, 10, 11]
    assert data["Particle.PT"].tolist() == ak.Array(truth)[[0, 1, 7, 8, 9, 10, 11]].pt.tolist()
    assert read_metadata(output)["counts"]["skipped_total"] == 5


def test_no_usable_event_gives_a_valid_empty_file(tmp_path):
    events = ntuple_events(4)
    wrong = {"ntruth": ak.num(events["truth"]).to_numpy() + 1, "npflow": ak.num(events["pflow"]).to_numpy()}
    source = write_ntuple(tmp_path / "wrong.root", events, counts=wrong)
    counts = convert(load_card(CARD), source, tmp_path / "out.root", progress=False)
    assert (counts.read, counts.written, dict(counts.skipped)) == (4, 0, {"ntruth disagrees with the truth lists": 4})
    with uproot.open(tmp_path / "out.root") as file:
        assert file["Delphes"].num_entries == 0 and "Jet.PT" in file["Delphes"].keys()


def _without_vertex_x(tmp: Path) -> Path:
    events = ntuple_events(3)
    events["truth"] = events["truth"][[f for f in events["truth"].fields if f != "vx"]]
    return write_ntuple(tmp / "input.root", events)


@pytest.mark.parametrize("make_input, message", [
    (lambda tmp: tmp / "input.root", "input.root: cannot open input (No such file or directory)"),
    (lambda tmp: CARD, "delphes_cms_like.yaml: cannot open input (not a ROOT file)"),
    (lambda tmp: write_ntuple(tmp / "input.root", ntuple_events(3), tree_name="Delphes"),
     "input.root: no 'evt_tree' tree"),
    (_without_vertex_x, "input.root: evt_tree has no branch truth_vx"),
])
def test_unusable_inputs_are_one_line_errors(tmp_path, make_input, message):
    source = make_input(tmp_path)
    before = set(tmp_path.iterdir())
    with pytest.raises(InputError) as error:
        convert(load_card(CARD), source, tmp_path / "out.root", progress=False)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert set(tmp_path.iterdir()) == before  # no output, no temporary file


def test_corrupt_data_is_a_one_line_error(tmp_path):
    source = write_ntuple(tmp_path / "input.root", ntuple_events())
    with uproot.open(source) as file:
        seek = int(file[TREE]["truth_eta"].member("fBasketSeek")[0])
    raw = bytearray(source.read_bytes())
    raw[seek + 40:seek + 280] = b"\xff" * 240  # the first basket's header and compression header
    source.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="input.root: cannot read evt_tree"):
        convert(load_card(CARD), source, tmp_path / "out.root", progress=False)
    assert list(tmp_path.iterdir()) == [source]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "parnassus", *map(str, args)], capture_output=True, text=True)


def test_cli_convert(tmp_path):
    source = write_ntuple(tmp_path / "opensim.root", ntuple_events())
    result = cli("convert", "--quiet", "--card", CARD, "-n", "10", source, tmp_path / "out.root")
    assert result.returncode == 0, result.stderr
    assert "events read 10, written 10, skipped 0 (none)" in result.stderr
    assert len(delphes(tmp_path / "out.root")) == 10
    failed = cli("convert", "--card", CARD, _without_vertex_x(tmp_path), tmp_path / "other.root")
    assert failed.returncode != 0 and "evt_tree has no branch truth_vx" in failed.stderr
    assert "Traceback" not in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "other.root").exists()
