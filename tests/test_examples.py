"""The examples run: generator -> FIFO -> parnassus run -> uproot analysis, on a few events."""

import os
import subprocess
import sys

import awkward as ak
import uproot

from parnassus.io.delphes import read_metadata

from .conftest import ROOT

EXAMPLES = ROOT / "examples"


def test_the_fifo_chain_simulates_the_generators_events_and_analyses_them(tmp_path):
    env = {**os.environ, "EVENTS": "5", "SEED": "3",
           "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"}  # parnassus, python
    result = subprocess.run(["bash", str(EXAMPLES / "fifo_chain.sh"), "chain.root"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    output = tmp_path / "chain.root"
    assert read_metadata(output)["card"]["builtin"] == "cms2011"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["chain.root"]  # no event file, no FIFO left
    with uproot.open(output) as file:
        events = file["Delphes"].arrays(["Event.Number", "Jet.PT", "Jet.Eta", "Jet.BTag"])
    assert ak.flatten(events["Event.Number"]).tolist() == [0, 1, 2, 3, 4]
    jets = (events["Jet.PT"] > 30.0) & (abs(events["Jet.Eta"]) < 2.5)
    btagged = int(ak.sum(jets & (events["Jet.BTag"] % 2 == 1)))
    lines = result.stdout.splitlines()
    assert lines[0] == "chain.root: 5 events"
    assert f"  b-tagged jets per event                   {btagged / 5:.2f}" in lines
    assert any(line.strip().startswith("mean MET") and line.endswith(" GeV") for line in lines)


def test_the_analysis_reads_a_run_output(example_run):
    result = subprocess.run([sys.executable, str(EXAMPLES / "analysis.py"), str(example_run)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    with uproot.open(example_run) as file:
        met = file["Delphes"]["MissingET.MET"].array()[:, 0]
    assert result.stdout.splitlines()[0] == f"{example_run}: 50 events"
    assert f"  mean MET                                  {float(ak.mean(met)):.1f} GeV" in result.stdout.splitlines()
