"""A short uproot analysis of a parnassus output file (or a Delphes one: the same tree and branch names).

    python examples/analysis.py out.root

Jets with pT > 30 GeV and |eta| < 2.5, those b-tagged (bit 0 of Jet.BTag), isolated electrons and muons with
pT > 20 GeV (the Electron and Muon collections hold the isolated ones), MET, and a ttbar -> lepton + jets
selection: exactly one lepton, at least four jets, at least one of them b-tagged.
"""

from __future__ import annotations

import sys

import awkward as ak
import numpy as np
import uproot

BRANCHES = ["Jet.PT", "Jet.Eta", "Jet.BTag", "Electron.PT", "Muon.PT", "MissingET.MET"]


def analyse(path: str) -> dict[str, float]:
    """Per-event means of jets, b-tagged jets, leptons and MET, and the number of lepton + jets events."""
    with uproot.open(path) as file:
        events = file["Delphes"].arrays(BRANCHES)
    jets = (events["Jet.PT"] > 30.0) & (abs(events["Jet.Eta"]) < 2.5)
    n_jets = ak.sum(jets, axis=1)
    n_btagged = ak.sum(jets & ((events["Jet.BTag"] & 1) == 1), axis=1)
    n_leptons = ak.sum(events["Electron.PT"] > 20.0, axis=1) + ak.sum(events["Muon.PT"] > 20.0, axis=1)
    met = events["MissingET.MET"][:, 0]
    selected = (n_leptons == 1) & (n_jets >= 4) & (n_btagged >= 1)

    def mean(values: ak.Array) -> float:
        return float(np.mean(ak.to_numpy(values))) if len(values) else float("nan")

    return {"events": len(events), "jets": mean(n_jets), "b-tagged jets": mean(n_btagged),
            "leptons": mean(n_leptons), "MET": mean(met), "lepton + jets": int(ak.sum(selected))}


def main(path: str) -> None:
    result = analyse(path)
    print(f"{path}: {result['events']} events")
    print(f"  jets (pT > 30 GeV, |eta| < 2.5) per event  {result['jets']:.2f}")
    print(f"  b-tagged jets per event                   {result['b-tagged jets']:.2f}")
    print(f"  isolated e/mu (pT > 20 GeV) per event     {result['leptons']:.2f}")
    print(f"  mean MET                                  {result['MET']:.1f} GeV")
    print(f"  1 lepton, >= 4 jets, >= 1 b-tag           {result['lepton + jets']} events")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTPUT.root")
    main(sys.argv[1])
