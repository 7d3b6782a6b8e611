import subprocess
import sys
from pathlib import Path

import awkward as ak
import fastjet
import numpy as np
import pyhepmc
import pytest
import uproot
import vector

import parnassus.run
from parnassus.card import load_card
from parnassus.io.delphes import read_metadata
from parnassus.run import run

from .conftest import CARD, EXAMPLE

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "delphes_3.5.1_cms_ttbar20.root"
COLLECTIONS = ["Event", "Weight", "Particle", "EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron",
               "ParticleFlowCandidate", "Jet", "GenJet", "Electron", "Muon", "Photon", "MissingET",
               "GenMissingET", "ScalarHT"]


def arrays(path, expressions=None):
    with uproot.open(path) as file:
        return file["Delphes"].arrays(expressions, library="ak")


def test_every_collection_and_counter_exists(example_run):
    with uproot.open(example_run) as file:
        tree = file["Delphes"]
        assert tree.num_entries == 50
        for name in COLLECTIONS:
            size = tree[f"{name}_size"].array()
            leaves = [k for k in tree.keys() if k.startswith(f"{name}.")]
            assert leaves, name
            for leaf in leaves:
                assert ak.num(tree[leaf].array()).tolist() == size.tolist(), leaf
        for name in ("Event", "MissingET", "ScalarHT", "GenMissingET"):
            assert set(tree[f"{name}_size"].array().tolist()) == {1}
        assert tree["Jet.PT"].typename == "float[]" and tree["Event.Number"].typename == "int64_t[]"


def test_metadata_records_the_run(example_run):
    meta = read_metadata(example_run)
    assert meta["counts"] == {"read": 50, "written": 50, "skipped": {}, "skipped_total": 0, "truncated": 0,
                              "model_truncated": 0, "model_outside_acceptance": 0}
    assert meta["card"]["name"] == "delphes-cms-like" and "tracking_efficiency" in meta["card"]["text"]
    assert meta["seed"] == 12345 and meta["generator"] == "parametric"
    assert {"numpy", "awkward", "uproot", "fastjet", "pyhepmc"} <= set(meta["versions"])


def test_truth_particles_equal_the_accepted_input(example_run):
    cuts = load_card(CARD).truth
    expected = []
    with pyhepmc.open(EXAMPLE) as source:
        for event in source:
            p = event.numpy.particles
            pt = np.hypot(p.px, p.py)
            eta = np.arcsinh(p.pz / np.maximum(pt, 1e-12))
            keep = (p.status == 1) & ~np.isin(np.abs(p.pid), cuts.drop_pids) & (pt >= cuts.pt_min) & (
                np.abs(eta) <= cuts.eta_max)
            expected.append((np.sort(pt[keep]), np.sort(p.pid[keep])))
    data = arrays(example_run, ["Particle.PT", "Particle.PID"])
    assert len(expected) == len(data)
    for (pt, pid), got_pt, got_pid in zip(expected, data["Particle.PT"], data["Particle.PID"], strict=True):
        np.testing.assert_allclose(np.sort(ak.to_numpy(got_pt)), pt, rtol=1e-6)
        np.testing.assert_array_equal(np.sort(ak.to_numpy(got_pid)), pid)


def test_met_ht_and_eflow_are_consistent_with_the_pfcs(example_run):
    data = arrays(example_run)
    pt, phi = data["ParticleFlowCandidate.PT"], data["ParticleFlowCandidate.Phi"]
    met = np.hypot(ak.sum(pt * np.cos(phi), axis=1), ak.sum(pt * np.sin(phi), axis=1))
    np.testing.assert_allclose(ak.to_numpy(data["MissingET.MET"][:, 0]), ak.to_numpy(met), rtol=1e-4, atol=1e-3)
    objects_ht = sum(ak.sum(data[f"{name}.PT"], axis=1) for name in ("Jet", "Electron", "Muon", "Photon"))
    np.testing.assert_allclose(ak.to_numpy(data["ScalarHT.HT"][:, 0]), ak.to_numpy(objects_ht), rtol=1e-5)  # Delphes'
    assert ak.all(data["ScalarHT.HT"][:, 0] < ak.sum(pt, axis=1))
    eflow = data["EFlowTrack_size"] + data["EFlowPhoton_size"] + data["EFlowNeutralHadron_size"]
    assert eflow.tolist() == data["ParticleFlowCandidate_size"].tolist()
    assert ak.all(data["ParticleFlowCandidate.PT"] >= 1.0)
    assert ak.all(abs(data["ParticleFlowCandidate.Eta"]) <= 2.7)


def _recluster(data, prefix, energy_scale=None):
    """pT of the anti-kt jets of the written particles, times the card's jet energy scale when given."""
    vector.register_awkward()
    momenta = vector.zip({"pt": data[f"{prefix}.PT"], "eta": data[f"{prefix}.Eta"], "phi": data[f"{prefix}.Phi"],
                          "mass": data[f"{prefix}.Mass"]})
    momenta = ak.zip({"px": momenta.px, "py": momenta.py, "pz": momenta.pz, "E": momenta.E}, with_name="Momentum4D")
    jets = fastjet.ClusterSequence(momenta, fastjet.JetDefinition(fastjet.antikt_algorithm, 0.5))
    jets = jets.inclusive_jets(min_pt=20.0)
    if energy_scale is None:
        return jets.pt
    flat = [ak.to_numpy(ak.flatten(getattr(jets, f))) for f in ("pt", "eta", "E")]
    return ak.unflatten(flat[0] * energy_scale(*flat), ak.num(jets))


def test_jets_and_genjets_are_clustered_from_the_written_particles(example_run):
    data = arrays(example_run)
    reclustered = _recluster(data, "ParticleFlowCandidate", load_card(CARD).objects.jet_energy_scale)
    gen = _recluster(data, "Particle")
    for event in range(len(data)):
        again = np.sort(ak.to_numpy(reclustered[event]))
        # Jet: the reclustered set, energy-scaled, minus the jets of leptons and photons
        for jet_pt in ak.to_numpy(data["Jet.PT"][event]):
            assert np.min(np.abs(again - jet_pt) / jet_pt) < 1e-4
        np.testing.assert_allclose(np.sort(ak.to_numpy(data["GenJet.PT"][event])), np.sort(ak.to_numpy(gen[event])),
                                   rtol=1e-4)
    assert ak.mean(data["Jet_size"]) > 2  # ttbar
    assert ak.all(data["Jet.NCharged"] + data["Jet.NNeutrals"] >= 1)


def test_same_seed_same_output_and_skip_is_aligned(tmp_path, example_run):
    card = load_card(CARD)
    again = tmp_path / "again.root"
    run(card, EXAMPLE, again, batch_size=20, progress=False)
    reference, repeated = arrays(example_run), arrays(again)
    for field in reference.fields:
        assert ak.to_list(reference[field]) == ak.to_list(repeated[field]), field
    other = tmp_path / "other.root"
    run(card, EXAMPLE, other, batch_size=20, seed=99, progress=False)
    assert ak.to_list(arrays(other)["ParticleFlowCandidate.PT"]) != ak.to_list(reference["ParticleFlowCandidate.PT"])
    skipped = tmp_path / "skipped.root"
    run(card, EXAMPLE, skipped, batch_size=20, skip=20, max_events=20, progress=False)
    assert ak.to_list(arrays(skipped)["ParticleFlowCandidate.PT"]) == ak.to_list(
        reference["ParticleFlowCandidate.PT"][20:40])


def test_failed_run_leaves_no_file(tmp_path, monkeypatch):
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return original(*args, **kwargs)

    original = parnassus.run.build_objects
    monkeypatch.setattr(parnassus.run, "build_objects", failing)
    output = tmp_path / "out.root"
    with pytest.raises(RuntimeError):
        run(load_card(CARD), EXAMPLE, output, batch_size=10, progress=False)
    assert list(tmp_path.iterdir()) == []
    output.write_text("previous")
    with pytest.raises(RuntimeError):
        calls.clear()
        run(load_card(CARD), EXAMPLE, output, batch_size=10, progress=False)
    assert output.read_text() == "previous" and list(tmp_path.iterdir()) == [output]


def test_no_events_gives_a_valid_empty_file(tmp_path):
    source = tmp_path / "none.hepmc"
    source.write_text("HepMC::Version 3.02.05\nHepMC::Asciiv3-START_EVENT_LISTING\n"
                      "HepMC::Asciiv3-END_EVENT_LISTING\n")
    output = tmp_path / "none.root"
    result = run(load_card(CARD), source, output, progress=False)
    assert result.counts.read == 0
    with uproot.open(output) as file:
        assert file["Delphes"].num_entries == 0
        assert "Jet.PT" in file["Delphes"].keys()


def cli(*args):
    return subprocess.run([sys.executable, "-m", "parnassus", *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("make_args, message", [
    (lambda tmp: ["run", "--card", tmp / "nope.yaml", EXAMPLE, tmp / "o.root"], "nope.yaml: cannot read card"),
    (lambda tmp: ["run", "--card", CARD, tmp / "missing.hepmc", tmp / "o.root"], "missing.hepmc: cannot open input"),
    (lambda tmp: ["run", "--card", CARD, CARD, tmp / "o.root"], "not a HepMC3 ASCII file"),
])
def test_cli_errors_are_one_line(tmp_path, make_args, message):
    result = cli(*make_args(tmp_path))
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.root").exists()


def test_cli_summary(tmp_path):
    result = cli("run", "--quiet", "--card", CARD, "-n", "3", "--seed", "4", "--batch-size", "2", EXAMPLE,
                 tmp_path / "o.root")
    assert result.returncode == 0, result.stderr
    assert "events read 3, written 3, skipped 0" in result.stderr
    assert read_metadata(tmp_path / "o.root")["seed"] == 4


def analysis(path):
    """The same few lines a Delphes user runs with uproot."""
    with uproot.open(path) as file:
        tree = file["Delphes"]
        jet_pt = tree["Jet.PT"].array()
        data = tree.arrays(["Jet.PT", "Jet.Eta", "MissingET.MET", "Electron.PT", "Muon.PT", "Photon.PT",
                            "ScalarHT.HT", "EFlowTrack.PT", "EFlowPhoton.ET", "EFlowNeutralHadron.ET",
                            "GenJet.PT", "Particle.PID", "Event.Number"])
        n_jets = tree["Jet_size"].array()
    assert ak.num(jet_pt).tolist() == n_jets.tolist()
    leading = data["Jet.PT"][n_jets > 0][:, 0]
    return len(data), float(ak.mean(leading)), float(ak.mean(data["MissingET.MET"][:, 0]))


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared Delphes reference file not available")
def test_delphes_analysis_reads_both_files(example_run):
    n_ref, lead_ref, met_ref = analysis(REFERENCE)
    n, lead, met = analysis(example_run)
    assert (n_ref, n) == (20, 50)
    assert 30 < lead < 300 and 30 < lead_ref < 300 and 5 < met < 200


def test_coffea_reads_the_output(example_run):
    pytest.importorskip("coffea")
    from coffea.nanoevents import NanoEventsFactory

    from parnassus.coffea_schema import DelphesSchema

    events = NanoEventsFactory.from_root({str(example_run): "Delphes"}, schemaclass=DelphesSchema,
                                         mode="virtual").events()
    data = arrays(example_run, ["Jet.PT", "MissingET.MET", "ScalarHT.HT", "Electron.PT"])
    assert ak.to_list(events.Jet.pt) == ak.to_list(data["Jet.PT"])
    assert ak.to_list(events.MissingET.MET) == ak.to_list(data["MissingET.MET"][:, 0])
    assert ak.to_list(events.ScalarHT.HT) == ak.to_list(data["ScalarHT.HT"][:, 0])
    two = events.Jet[ak.num(events.Jet) >= 2]
    assert ak.all((two[:, 0] + two[:, 1]).mass > 0)
