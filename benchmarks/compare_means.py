"""Per-event means of PFC multiplicity (total and per class), HT and MET in two or more output files.

    python benchmarks/compare_means.py TARGET.root CANDIDATE.root [...]

Prints each file's means and, for candidates, the relative difference to the first file (the target).
"""

from __future__ import annotations

import sys

import awkward as ak
import numpy as np
import uproot

CLASSES = ("charged hadrons", "electrons", "muons", "neutral hadrons", "photons")


def means(path: str) -> dict[str, float]:
    with uproot.open(path) as file:
        a = file["Delphes"].arrays(["ParticleFlowCandidate.PT", "ParticleFlowCandidate.Class",
                                    "MissingET.MET", "Event.Number"])
    out = {"events": len(a), "PFC multiplicity": ak.mean(ak.num(a["ParticleFlowCandidate.PT"])),
           "HT [GeV]": ak.mean(ak.sum(a["ParticleFlowCandidate.PT"], axis=1)),  # all candidates' pT
           "MET [GeV]": ak.mean(a["MissingET.MET"][:, 0])}
    for code, name in enumerate(CLASSES):
        out[name] = ak.mean(ak.sum(a["ParticleFlowCandidate.Class"] == code, axis=1))
    return {k: float(v) for k, v in out.items()}


def main() -> None:
    results = [means(path) for path in sys.argv[1:]]
    print(f"{'per event':20s}" + "".join(f"{p.split('/')[-1][:22]:>24s}" for p in sys.argv[1:]))
    for key in results[0]:
        row = f"{key:20s}{results[0][key]:24.3f}"
        for other in results[1:]:
            relative = (other[key] - results[0][key]) / results[0][key] if results[0][key] else np.nan
            row += f"{other[key]:14.3f} ({relative:+6.1%})"
        print(row)


if __name__ == "__main__":
    main()
