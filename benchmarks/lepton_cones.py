"""What lies in the isolation cone of each reconstructed truth lepton: refsim against models, same truth events.

    python benchmarks/lepton_cones.py runs/validation_seeded3/ggH_ZZ_4l_project/{refsim,baseline,neural}.root

For each truth electron and muon (``Particle``) above 10 GeV with |eta| < 2.4 that has a candidate of its class
within Delta R 0.1 (the nearest is "the lepton"), the other candidates above 0.5 GeV within Delta R 0.3 are counted
per lepton by class (photons, charged hadrons, neutral hadrons), and the fraction of leptons whose cone holds more
than 0.12 of the lepton's pT is printed: the ingredients of the isolation that decides whether the lepton reaches
the ``Electron`` / ``Muon`` collections.
"""

from __future__ import annotations

import sys

import awkward as ak
import numpy as np
import uproot

from parnassus.pdg import CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON

LEPTONS = ((11, ELECTRON, "electrons"), (13, MUON, "muons"))


def cone_rows(path: str) -> dict[int, np.ndarray]:
    """Per truth-lepton PDG id: rows (photons, charged hadrons, neutral hadrons, cone pT ratio > 0.12)."""
    names = [f"Particle.{k}" for k in ("PT", "Eta", "Phi", "PID")]
    names += [f"ParticleFlowCandidate.{k}" for k in ("PT", "Eta", "Phi", "Class")]
    data = uproot.open(path)["Delphes"].arrays(names)
    rows: dict[int, list] = {pid: [] for pid, _, _ in LEPTONS}
    for event in data:
        pt, eta, phi, pid = (ak.to_numpy(event[name]) for name in names[:4])
        cpt, ceta, cphi, cls = (ak.to_numpy(event[name]) for name in names[4:])
        for code, lepton_class, _ in LEPTONS:
            for i in np.flatnonzero((np.abs(pid) == code) & (pt > 10) & (np.abs(eta) < 2.4)):
                dr = np.hypot(ceta - eta[i], (cphi - phi[i] + np.pi) % (2 * np.pi) - np.pi)
                near = np.flatnonzero((cls == lepton_class) & (dr < 0.1))
                if len(near) == 0:
                    continue
                lepton = near[np.argmin(dr[near])]
                cone = (dr < 0.3) & (cpt > 0.5) & (np.arange(len(cpt)) != lepton)
                rows[code].append([np.sum(cone & (cls == PHOTON)), np.sum(cone & (cls == CHARGED_HADRON)),
                                   np.sum(cone & (cls == NEUTRAL_HADRON)), cpt[cone].sum() > 0.12 * cpt[lepton]])
    return {code: np.array(r, dtype=float).reshape(-1, 4) for code, r in rows.items()}


def main() -> None:
    for path in sys.argv[1:]:
        rows = cone_rows(path)
        for code, _, name in LEPTONS:
            r = rows[code]
            if len(r):
                print(f"{path} {name}: {len(r)} reconstructed; per lepton within 0.3: photons {r[:, 0].mean():.2f}, "
                      f"charged hadrons {r[:, 1].mean():.2f}, neutral hadrons {r[:, 2].mean():.2f}; "
                      f"cone pT > 0.12 of the lepton's: {r[:, 3].mean():.0%}")


if __name__ == "__main__":
    main()
