"""The model README's validation tables from a ``validate_model.py`` folder, in Markdown.

    python benchmarks/model_tables.py runs/validation [--models neural,baseline,parametric]

For each sample folder (``<sample>/report/metrics.json`` and the ROOT files ``<label>.root``): on how many
observables each model is closer to refsim than each other one (1-Wasserstein distance), how many event-level
observables are within twice refsim's split-half noise floor; the per-event means of HT (the scalar sum of all
candidates' pT), MET and the number of candidates; the isolated electrons and muons per event (``Electron``,
``Muon``) and the response of jets above 20 GeV matched to GenJets within ΔR 0.2 (``parnassus validate``'s
Hungarian matching), mean ± std. Columns: refsim, then ``--models`` in order.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import awkward as ak
import uproot
from validate_model import EVENT, means, within_floor

from parnassus.validate.matching import match_events
from parnassus.validate.observables import JET_MATCH_DR

BRANCHES = ["Jet.PT", "Jet.Eta", "Jet.Phi", "GenJet.PT", "GenJet.Eta", "GenJet.Phi", "Electron_size", "Muon_size"]


def closer(metrics: dict, first: str, second: str) -> tuple[int, int]:
    """(observables on which ``first`` is closer to refsim than ``second``, observables with both)."""
    both = [entry["w1"] for entry in metrics["observables"].values()
            if all(entry.get("w1", {}).get(label, {}).get("value") is not None for label in (first, second))]
    return sum(w1[first]["value"] < w1[second]["value"] for w1 in both), len(both)


def file_figures(path: Path) -> dict[str, float]:
    """Per-event means of HT (of all candidates), MET, candidates, isolated electrons and muons; matched-jet
    response mean and std (jets above 20 GeV matched to GenJets as ``parnassus validate`` matches them)."""
    events = uproot.open(path)["Delphes"].arrays(BRANCHES)
    jets = events[["Jet.PT", "Jet.Eta", "Jet.Phi"]][events["Jet.PT"] > 20]
    reco, gen = ak.num(jets["Jet.PT"]), ak.num(events["GenJet.PT"])
    flat = {branch: ak.to_numpy(ak.flatten(array[branch])) for array, names in
            ((jets, ("Jet.PT", "Jet.Eta", "Jet.Phi")), (events, ("GenJet.PT", "GenJet.Eta", "GenJet.Phi")))
            for branch in names}
    r, g = match_events(flat["Jet.Eta"], flat["Jet.Phi"], ak.to_numpy(reco), flat["GenJet.Eta"], flat["GenJet.Phi"],
                        ak.to_numpy(gen), JET_MATCH_DR)
    response = flat["Jet.PT"][r] / flat["GenJet.PT"][g]
    return {**means(path), "electrons": float(ak.mean(events["Electron_size"])),
            "muons": float(ak.mean(events["Muon_size"])),
            "response": float(response.mean()) if len(response) else float("nan"),
            "response_std": float(response.std()) if len(response) else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--models", default="neural,baseline,parametric", help="labels, comma-separated")
    args = parser.parse_args()
    models = args.models.split(",")
    samples = sorted(p for p in args.folder.iterdir() if (p / "report" / "metrics.json").is_file())
    pairs = list(itertools.combinations(models, 2))
    print("| sample | " + " | ".join(f"{a} closer than {b}" for a, b in pairs)
          + " | event-level within 2× floor: " + " / ".join(models) + " |")
    figures = {}
    for sample in samples:
        metrics = json.loads((sample / "report" / "metrics.json").read_text())
        counts = [closer(metrics, a, b) for a, b in pairs]
        floors = [within_floor(metrics, label, EVENT) for label in models]
        print(f"| {sample.name} | " + " | ".join(f"{won} of {n}" for won, n in counts) + " | "
              + " / ".join(str(within) for within, _, _ in floors) + f" of {floors[0][1]} |")
        figures[sample.name] = [file_figures(sample / f"{label}.root") for label in ["refsim", *models]]
    columns = " / ".join(["refsim", *models])
    print(f"\n| sample | HT [GeV] ({columns}) | MET [GeV] | N candidates |")
    for name, rows in figures.items():
        print(f"| {name} | " + " | ".join(" / ".join(f"{row[key]:.{digits}f}" for row in rows)
                                         for key, digits in (("HT", 0), ("MET", 1), ("N", 1))) + " |")
    print(f"\n| sample | electrons ({columns}) | muons | jet response |")
    for name, rows in figures.items():
        print(f"| {name} | " + " / ".join(f"{row['electrons']:.3f}" for row in rows) + " | "
              + " / ".join(f"{row['muons']:.3f}" for row in rows) + " | "
              + " / ".join(f"{row['response']:.2f} ± {row['response_std']:.2f}" for row in rows) + " |")


if __name__ == "__main__":
    main()
