import subprocess
import sys

import awkward as ak
import numpy as np
import pytest
import uproot

from parnassus.card import JetFlavor, TruthCuts, load_card
from parnassus.errors import InputError
from parnassus.events import RunCounts
from parnassus.io.delphes import read_metadata
from parnassus.io.hepmc import HepMCReader
from parnassus.run import run

from .conftest import CARD, ROOT

pytest.importorskip("pythia8mc")
from parnassus.io.pythia import PythiaReader, write_hepmc  # noqa: E402

CMND = ROOT / "examples" / "ttbar_7TeV.cmnd"


def test_pythia_events_round_trip_through_hepmc(tmp_path):
    output = tmp_path / "tt.hepmc.gz"
    assert write_hepmc(CMND, 3, output, seed=5) == 3
    counts = RunCounts()
    batches = list(HepMCReader(output, TruthCuts(), 10, counts))
    assert counts.read == 3 and not counts.skipped
    particles = batches[0].particles
    assert ak.all(ak.num(particles) > 50)
    assert ak.all(abs(ak.sum(particles.charge, axis=1)) < 50)
    again = tmp_path / "again.hepmc.gz"
    write_hepmc(CMND, 3, again, seed=5)
    assert ak.to_list(list(HepMCReader(again, TruthCuts(), 10, RunCounts()))[0].particles.pt) == ak.to_list(
        particles.pt)


def test_bad_pythia_card(tmp_path):
    card = tmp_path / "bad.cmnd"
    card.write_text("Beams:eCM = 7000.\nNoSuch:setting = on\n")
    with pytest.raises(InputError, match="bad.cmnd"):
        write_hepmc(card, 1, tmp_path / "x.hepmc")
    with pytest.raises(InputError, match="no such Pythia card"):
        write_hepmc(tmp_path / "missing.cmnd", 1, tmp_path / "x.hepmc")


# -- .cmnd input: PythiaReader and `parnassus run CARD.cmnd` ---------------------------------------------------

EXAMPLE_CARDS = sorted((ROOT / "examples").glob("*.cmnd"))


def _events(batches) -> ak.Array:
    """The truth particles of all batches, each event's particles in a canonical (px) order."""
    particles = ak.concatenate([batch.particles for batch in batches])
    return particles[ak.argsort(particles.px, axis=1)]


def test_reader_gives_the_truth_of_the_hepmc_route(tmp_path):
    """Pythia → arrays equals Pythia → HepMC3 → HepMCReader for the same seed, cuts and truncation included."""
    hepmc = tmp_path / "tt.hepmc"
    write_hepmc(CMND, 2, hepmc, seed=9, precision=16)
    for cuts in (TruthCuts(), TruthCuts(status=[1, 2], max_particles=150)):
        direct_counts, via_hepmc_counts = RunCounts(), RunCounts()
        direct = list(PythiaReader(CMND, cuts, 10, direct_counts, max_events=2, seed=9))
        via_hepmc = list(HepMCReader(hepmc, cuts, 10, via_hepmc_counts))
        assert direct_counts == via_hepmc_counts and direct_counts.read == 2
        assert direct_counts.truncated == (2 if cuts.max_particles == 150 else 0)
        assert direct[0].number.tolist() == direct[0].index.tolist() == [0, 1]
        assert direct[0].weight.tolist() == [1.0, 1.0]
        a, b = _events(direct), _events(via_hepmc)
        assert ak.num(a).tolist() == ak.num(b).tolist()
        assert set(ak.flatten(a.status).tolist()) == set(cuts.status)
        for field in a.fields:
            assert np.allclose(ak.flatten(a[field]), ak.flatten(b[field]), rtol=1e-9, atol=1e-9), field


def test_stable_ctau_gives_the_limittau0_convention(tmp_path):
    """Pythia's default (K0S, Lambda... decayed in the generator) with stable_ctau_mm: those particles are the
    truth, in place of their decay products, through the Pythia reader and through HepMC3 alike."""
    decaying = tmp_path / "decaying.cmnd"
    decaying.write_text(CMND.read_text().replace("ParticleDecays:limitTau0 = on", "ParticleDecays:limitTau0 = off"))
    hepmc = tmp_path / "decaying.hepmc"
    write_hepmc(decaying, 3, hepmc, seed=11, precision=16)
    cuts = {"max_particles": 10**4, "drop_pids": []}
    rule = TruthCuts(stable_ctau_mm=10.0, **cuts)
    direct = list(PythiaReader(decaying, rule, 3, RunCounts(), max_events=3, seed=11))
    as_is = list(PythiaReader(decaying, TruthCuts(**cuts), 3, RunCounts(), max_events=3, seed=11))
    decayed = list(PythiaReader(decaying, TruthCuts(status=[2], **cuts), 3, RunCounts(), max_events=3, seed=11))
    a, b, c = (ak.concatenate([batch.particles for batch in batches]) for batches in (direct, as_is, decayed))
    for pid in (310, 3122):
        n_kept = ak.sum(abs(a.pid) == pid, axis=1)
        assert ak.all(n_kept > 0) and ak.sum(abs(b.pid) == pid) == 0
        assert n_kept.tolist() == ak.sum(abs(c.pid) == pid, axis=1).tolist()  # every one in acceptance
    for batches in (direct, as_is):  # all final particles, no double counting: the beams' four-momentum
        final = ak.concatenate([batch.final_state for batch in batches])
        np.testing.assert_allclose(ak.to_numpy(ak.sum(final.e, axis=1)), 7000.0, rtol=1e-9)
        np.testing.assert_allclose(ak.to_numpy(ak.sum(final.pz, axis=1)), 0.0, atol=1e-4)
    via_hepmc = _events(HepMCReader(hepmc, rule, 3, RunCounts()))
    a = _events(direct)
    assert ak.num(a).tolist() == ak.num(via_hepmc).tolist()
    for field in a.fields:
        assert np.allclose(ak.flatten(a[field]), ak.flatten(via_hepmc[field]), rtol=1e-9, atol=1e-9), field


def test_status_codes_are_pythias_statushepmc():
    reader = PythiaReader(CMND, TruthCuts(), 1, RunCounts(), max_events=1, seed=3)
    list(reader)
    event = reader._pythia.event  # the last event generated
    particles = [event[i] for i in range(event.size())]
    pid = np.array([p.id() for p in particles])
    status = np.array([p.status() for p in particles])
    daughter1 = np.array([p.daughter1() for p in particles])
    expected = [p.statusHepMC() for p in particles]
    assert {1, 2, 4, 11, 21, 22, 23} <= set(expected)
    assert reader._status_hepmc(pid, status, daughter1).tolist() == expected


def test_skip_numbering_and_seed_zero():
    """--skip generates and discards: skip=1, n=2 gives events 1 and 2 of the same seed's sequence."""
    counts = RunCounts()
    full = list(PythiaReader(CMND, TruthCuts(), 2, counts, max_events=3, seed=0))
    assert counts.read == 3 and [b.index.tolist() for b in full] == [[0, 1], [2]]
    counts = RunCounts()
    skipped = list(PythiaReader(CMND, TruthCuts(), 2, counts, max_events=2, skip=1, seed=0))
    assert counts.read == 2 and skipped[0].number.tolist() == skipped[0].index.tolist() == [1, 2]
    assert ak.to_list(skipped[0].particles) == ak.to_list(ak.concatenate([b.particles for b in full])[1:])


def _run_arrays(tmp_path, name: str, **options) -> dict:
    """Run the example card's ttbar .cmnd through parnassus.run.run; its output arrays and metadata."""
    output = tmp_path / f"{name}.root"
    run(load_card(CARD), CMND, output, progress=False, **options)
    with uproot.open(output) as file:
        arrays = file["Delphes"].arrays(["Event.Number", "Particle.PID", "Particle.PT", "Particle.Eta",
                                         "ParticleFlowCandidate.PT", "Jet.PT"], library="ak")
    return {"arrays": arrays, "metadata": read_metadata(output)}


def test_cmnd_input_through_run(tmp_path):
    first = _run_arrays(tmp_path, "first", max_events=3, seed=7, batch_size=2)
    again = _run_arrays(tmp_path, "again", max_events=3, seed=7, batch_size=2)
    other = _run_arrays(tmp_path, "other", max_events=3, seed=8, batch_size=2)
    arrays = first["arrays"]
    assert first["metadata"]["counts"]["read"] == first["metadata"]["counts"]["written"] == 3
    assert first["metadata"]["input"] == str(CMND) and first["metadata"]["seed"] == 7
    assert ak.flatten(arrays["Event.Number"]).tolist() == [0, 1, 2]
    assert ak.all(ak.num(arrays["Particle.PT"]) > 50) and ak.all(ak.num(arrays["Jet.PT"]) > 0)
    assert ak.all(arrays["Particle.PT"] >= 0.25) and ak.all(abs(arrays["Particle.Eta"]) <= 2.7 + 1e-6)
    assert not ak.any(np.isin(abs(ak.flatten(arrays["Particle.PID"])), [12, 14, 16]))
    for name in arrays.fields:  # same seed: same truth and same simulation
        assert ak.to_list(arrays[name]) == ak.to_list(again["arrays"][name]), name
    assert ak.to_list(arrays["Particle.PT"]) != ak.to_list(other["arrays"]["Particle.PT"])


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parnassus", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT)


def test_cmnd_input_through_the_cli(tmp_path):
    output = tmp_path / "out.root"
    result = cli("run", "--quiet", "--card", "cards/delphes_cms_like.yaml", "examples/ttbar_7TeV.cmnd", output,
                 "-n", "3")
    assert result.returncode == 0, result.stderr
    assert "events read 3, written 3, skipped 0" in result.stderr
    with uproot.open(output) as file:
        assert file["Delphes"].num_entries == 3


def test_cmnd_input_needs_max_events(tmp_path):
    with pytest.raises(InputError, match=r"ttbar_7TeV.cmnd: a Pythia card needs -n/--max-events"):
        PythiaReader(CMND, TruthCuts(), 10, RunCounts())
    output = tmp_path / "out.root"
    result = cli("run", "--quiet", "--card", CARD, CMND, output)
    assert result.returncode != 0
    assert "ttbar_7TeV.cmnd: a Pythia card needs -n/--max-events" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not output.exists() and not list(tmp_path.iterdir())


# per card: events to generate, truth cuts, a check of every event's accepted truth particles
CARD_CHECKS = {
    "ttbar_7TeV.cmnd": (2, TruthCuts(), lambda p: ak.num(p) > 50),
    "qcd470_7TeV.cmnd": (2, TruthCuts(), lambda p: ak.sum(p.pt, axis=1) > 0.75 * 2 * 470),
    "qcd600_7TeV.cmnd": (2, TruthCuts(), lambda p: ak.sum(p.pt, axis=1) > 0.75 * 2 * 600),
    "zprime_tt_7TeV.cmnd": (2, TruthCuts(), lambda p: ak.num(p) > 50),
    "minbias_7TeV.cmnd": (2, TruthCuts(), lambda p: ak.num(p) >= 0),  # diffractive events can be empty
}


def _four_leptons(particles: ak.Array) -> ak.Array:
    """H -> ZZ -> 4l: at least 4 electrons or muons above 3 GeV, with no |eta| cut."""
    leptons = particles[((abs(particles.pid) == 11) | (abs(particles.pid) == 13)) & (particles.pt > 3)]
    return ak.num(leptons) >= 4


CARD_CHECKS["ggH_ZZ_4l_7TeV.cmnd"] = (8, TruthCuts(eta_max=10.0), _four_leptons)


def _leptons(particles: ak.Array, pids: tuple[int, ...], pt_min: float) -> ak.Array:
    """Per event, the number of final-state particles above ``pt_min`` with |pid| in ``pids``."""
    return sum(ak.sum((abs(particles.pid) == pid) & (particles.pt > pt_min), axis=1) for pid in pids)


# Z/gamma* -> ee, mumu, tautau: two electrons, muons or tau neutrinos (a tau's trace) above 3 GeV;
# W -> l nu: a neutrino above 10 GeV
EVERYTHING = TruthCuts(eta_max=10.0, drop_pids=[])
CARD_CHECKS["dy_ll_7TeV.cmnd"] = (8, EVERYTHING, lambda p: _leptons(p, (11, 13, 16), 3.0) >= 2)
CARD_CHECKS["wjets_lnu_7TeV.cmnd"] = (8, EVERYTHING, lambda p: _leptons(p, (12, 14, 16), 10.0) >= 1)


@pytest.mark.parametrize("cmnd", EXAMPLE_CARDS, ids=lambda path: path.stem)
def test_example_cards_generate_events(cmnd):
    n_events, cuts, check = CARD_CHECKS[cmnd.name]
    counts = RunCounts()
    batches = list(PythiaReader(cmnd, cuts, n_events, counts, max_events=n_events, seed=1))
    assert counts.read == n_events and not counts.skipped
    assert sum(len(batch) for batch in batches) == n_events
    passed = ak.to_numpy(check(_events(batches)))
    assert passed.mean() >= 0.75, passed  # the 4-lepton card: most events (the rest lose a lepton below 3 GeV)


def test_history_of_the_pythia_reader_is_that_of_the_hepmc_route(tmp_path):
    """The partons, heavy hadrons and taus that jet flavour and tagging read: the same from Pythia's records
    (mother links) as from its HepMC3 output (vertices)."""
    hepmc = tmp_path / "tt.hepmc"
    write_hepmc(CMND, 3, hepmc, seed=9, precision=16)
    cuts = JetFlavor(pt_min=0.0, eta_max=10.0)
    direct = list(PythiaReader(CMND, TruthCuts(), 10, RunCounts(), max_events=3, seed=9, history=cuts))[0].history
    via_hepmc = list(HepMCReader(hepmc, TruthCuts(), 10, RunCounts(), history=cuts))[0].history
    assert ak.num(direct).tolist() == ak.num(via_hepmc).tolist()
    assert ak.all(ak.num(direct) > 100)  # ttbar: hundreds of partons
    assert ak.all(ak.sum(abs(direct.pid) > 500, axis=1) >= 2)  # b hadrons
    for a, b in zip(direct, via_hepmc, strict=True):  # each event in a canonical order
        a, b = ({f: ak.to_numpy(x[f]) for f in x.fields} for x in (a, b))
        order_a, order_b = (np.lexsort((x["eta"], x["phi"], x["pt"], x["status"], x["pid"])) for x in (a, b))
        for field in a:
            assert np.allclose(a[field][order_a], b[field][order_b], rtol=1e-9, atol=1e-9, equal_nan=True), field
