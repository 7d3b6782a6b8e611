"""refsim vs the parametric generator on the same truth events: multiplicity, HT and MET residuals, classes.

    python benchmarks/compare_generators.py [--input examples/ttbar_7TeV.cmnd] [--events 500]

Both cards run on identical truth (same Pythia seed); residuals are relative to the accepted truth particles
(HT: scalar pT sum of truth particles with pT > 1 GeV; MET: GenMissingET).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import awkward as ak
import uproot

from parnassus.card import load_card
from parnassus.run import run

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("charged hadrons", "electrons", "muons", "neutral hadrons", "photons")


def summary(path: Path) -> dict[str, float]:
    with uproot.open(path) as file:
        a = file["Delphes"].arrays(["ParticleFlowCandidate.PT", "ParticleFlowCandidate.Class",
                                    "MissingET.MET", "GenMissingET.MET", "Particle.PT"])
    truth_ht = ak.sum(a["Particle.PT"] * (a["Particle.PT"] > 1.0), axis=1)
    out = {"PFC multiplicity": ak.mean(ak.num(a["ParticleFlowCandidate.PT"])),
           "PFC multiplicity std": ak.std(ak.num(a["ParticleFlowCandidate.PT"]))}
    for code, name in enumerate(CLASSES):
        out[name] = ak.mean(ak.sum(a["ParticleFlowCandidate.Class"] == code, axis=1))
    ht_residual = (ak.sum(a["ParticleFlowCandidate.PT"], axis=1) - truth_ht) / truth_ht  # all candidates' HT
    out["HT residual mean"], out["HT residual std"] = ak.mean(ht_residual), ak.std(ht_residual)
    met_residual = a["MissingET.MET"][:, 0] - a["GenMissingET.MET"][:, 0]
    out["MET residual mean [GeV]"], out["MET residual std [GeV]"] = ak.mean(met_residual), ak.std(met_residual)
    return {k: float(v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=ROOT / "examples" / "ttbar_7TeV.cmnd", type=Path)
    parser.add_argument("--events", default=500, type=int)
    args = parser.parse_args()
    cards = {"refsim": ROOT / "cards" / "refsim_cms2011.yaml", "parametric": ROOT / "cards" / "delphes_cms_like.yaml"}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, card in cards.items():
            output = Path(tmp) / f"{label}.root"
            run(load_card(card), args.input, output, max_events=args.events, seed=7, progress=False)
            results[label] = summary(output)
    print(f"{args.input.name}, {args.events} events (same truth for both)")
    print(f"  {'per event':28s} {'refsim':>10s} {'parametric':>11s}")
    for key in results["refsim"]:
        print(f"  {key:28s} {results['refsim'][key]:10.3f} {results['parametric'][key]:11.3f}")


if __name__ == "__main__":
    main()
