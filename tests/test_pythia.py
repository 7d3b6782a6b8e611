import awkward as ak
import pytest

from parnassus.card import TruthCuts
from parnassus.errors import InputError
from parnassus.events import RunCounts
from parnassus.io.hepmc import HepMCReader

from .conftest import ROOT

pytest.importorskip("pythia8mc")
from parnassus.io.pythia import write_hepmc  # noqa: E402

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
