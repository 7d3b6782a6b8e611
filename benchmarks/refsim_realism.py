"""How near CMS 2011 refsim comes, and its isolated-lepton efficiency against the real Delphes CMS card.

    python benchmarks/refsim_realism.py [--card cards/refsim_cms2011.yaml] [--events 200] [--reference DIR]
                                        [--off EFFECT ...]

1. Realism: refsim on held-out ttbar + QCD pTHat 470-600 events (Pythia 8 from the example cards, with seeds
   that the dataset spec never uses), per event, PFCs with pT > 1 GeV and |eta| < 2.7 (the card's output
   cuts, as the CMS table), against the CMS 2011 Open Simulation statistics of ``../shared/reference/README.md``.
   Targets (issue 8): within 20% on N, charged hadrons, neutral hadrons, photons and HT, 30% on e and mu.
2. Leptons: refsim on the 200 gg -> H -> ZZ -> 4l events of the reference folder (Pythia 8 defaults: K0S/Lambda
   decayed by the generator, no beam spot), isolated electrons and muons with pT > 10 GeV per event (the card's
   objects), against the truth leptons (pT > 10 GeV, |eta| < 2.5) and what real Delphes 3.5.1 with its CMS
   card wrote for exactly those events.
3. Jets: response and direction of refsim jets matched to GenJets (pT > 20 GeV, Delta R < 0.2) in the ttbar events.

``--off EFFECT`` switches one of the card's ``effects`` off (repeatable), to measure what it contributes.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from parnassus.card import load_card
from parnassus.run import run

ROOT = Path(__file__).resolve().parents[1]
CMS = {"PFC multiplicity": (165, 58), "charged hadrons": (94.1, 32.1), "electrons": (0.76, 1.0),
       "muons": (0.46, 0.72), "neutral hadrons": (20.9, 8.2), "photons": (49.1, 25.9), "HT [GeV]": (781, 395)}
TOLERANCE = {"electrons": 0.3, "muons": 0.3}  # 0.2 for the others
CLASSES = ("charged hadrons", "electrons", "muons", "neutral hadrons", "photons")
SEEDS = {"ttbar_7TeV.cmnd": 900001, "qcd470_7TeV.cmnd": 900002}  # never used by cards/dataset_cms2011.yaml


def pfc_statistics(paths: list[Path]) -> dict[str, np.ndarray]:
    """Per-event values of the realism table from refsim output files."""
    values: dict[str, list] = {}
    for path in paths:
        with uproot.open(path) as file:
            a = file["Delphes"].arrays(["ParticleFlowCandidate.PT", "ParticleFlowCandidate.Class",
                                        "ParticleFlowCandidate.Phi", "ParticleFlowCandidate.Z"])
        pt, cls = a["ParticleFlowCandidate.PT"], a["ParticleFlowCandidate.Class"]
        phi = a["ParticleFlowCandidate.Phi"]
        row = {"PFC multiplicity": ak.num(pt), "HT [GeV]": ak.sum(pt, axis=1),
               "MET x [GeV]": -ak.sum(pt * np.cos(phi), axis=1)}
        for code, name in enumerate(CLASSES):
            row[name] = ak.sum(cls == code, axis=1)
        row["PFC vertex z [mm]"] = ak.flatten(a["ParticleFlowCandidate.Z"])
        for key, value in row.items():
            values.setdefault(key, []).append(ak.to_numpy(value))
    return {key: np.concatenate(v) for key, v in values.items()}


def isolated_leptons(path: Path, delphes_layout: bool = False) -> tuple[float, float]:
    """Isolated electrons and muons with pT > 10 GeV per event."""
    with uproot.open(path) as file:
        tree = file["Delphes"]
        prefix = (lambda c: f"{c}/{c}.PT") if delphes_layout else (lambda c: f"{c}.PT")
        counts = [ak.mean(ak.sum(tree[prefix(c)].array() > 10.0, axis=1)) for c in ("Electron", "Muon")]
    return float(counts[0]), float(counts[1])


def truth_leptons(path: Path) -> tuple[float, float]:
    """Final-state truth electrons and muons with pT > 10 GeV and |eta| < 2.5 per event."""
    with uproot.open(path) as file:
        a = file["Delphes"].arrays(["Particle.PID", "Particle.PT", "Particle.Eta"])
    selected = (a["Particle.PT"] > 10.0) & (abs(a["Particle.Eta"]) < 2.5)
    return tuple(float(ak.mean(ak.sum(selected & (abs(a["Particle.PID"]) == pid), axis=1))) for pid in (11, 13))


def jet_response(path: Path) -> tuple[float, float, float, int]:
    """(mean, std of pT(jet) / pT(GenJet), mean Delta R, matched jets) for jets matched to GenJets."""
    with uproot.open(path) as file:
        a = file["Delphes"].arrays(["Jet.PT", "Jet.Eta", "Jet.Phi", "GenJet.PT", "GenJet.Eta", "GenJet.Phi"])
    jets = ak.zip({"pt": a["Jet.PT"], "eta": a["Jet.Eta"], "phi": a["Jet.Phi"]})
    gen = ak.zip({"pt": a["GenJet.PT"], "eta": a["GenJet.Eta"], "phi": a["GenJet.Phi"]})
    gen = gen[gen.pt > 20.0]
    pairs = ak.cartesian({"gen": gen, "jet": jets}, nested=True)
    dphi = (pairs.gen.phi - pairs.jet.phi + np.pi) % (2 * np.pi) - np.pi
    dr = np.sqrt((pairs.gen.eta - pairs.jet.eta) ** 2 + dphi**2)
    best = ak.argmin(dr, axis=2, keepdims=True)
    nearest = ak.flatten(dr[best], axis=2)
    matched = ak.flatten(pairs.jet.pt[best], axis=2)
    ok = ak.fill_none(nearest < 0.2, False)
    response = ak.to_numpy(ak.flatten((matched / gen.pt)[ok]))
    return float(response.mean()), float(response.std()), float(ak.mean(ak.flatten(nearest[ok]))), len(response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", default=ROOT / "cards" / "refsim_cms2011.yaml", type=Path)
    parser.add_argument("--events", default=200, type=int, help="events per process (ttbar, QCD470)")
    parser.add_argument("--reference", default=ROOT.parent / "shared" / "reference", type=Path)
    parser.add_argument("--off", action="append", default=[], help="switch this refsim effect off (repeatable)")
    args = parser.parse_args()
    card = load_card(args.card)
    refsim = card.generator.refsim
    refsim.effects = dataclasses.replace(refsim.effects, **dict.fromkeys(args.off, False))
    with tempfile.TemporaryDirectory() as tmp:
        outputs = []
        for cmnd, seed in SEEDS.items():
            outputs.append(Path(tmp) / f"{cmnd}.root")
            run(card, ROOT / "examples" / cmnd, outputs[-1], max_events=args.events, seed=seed, progress=False)
        stats = pfc_statistics(outputs)
        off = f", off: {', '.join(args.off)}" if args.off else ""
        print(f"refsim ({args.card.name}{off}) on {args.events} ttbar + {args.events} QCD470 held-out events "
              f"(seeds {', '.join(map(str, SEEDS.values()))}), per event, PFC pT > 1 GeV, |eta| < 2.7")
        print(f"  {'':18s} {'refsim':>16s} {'CMS 2011':>14s} {'ratio':>6s} {'target':>8s}")
        worst = 0.0
        for key, (mean, std) in CMS.items():
            value = stats[key]
            ratio = value.mean() / mean
            tolerance = TOLERANCE.get(key, 0.2)
            worst = max(worst, abs(ratio - 1))
            verdict = "ok" if abs(ratio - 1) <= tolerance else "MISSED"
            print(f"  {key:18s} {value.mean():7.2f} ± {value.std():6.2f} {mean:6.2f} ± {std:5.1f} {ratio:6.2f} "
                  f"±{tolerance:.0%} {verdict}")
        print(f"  {'MET x std [GeV]':18s} {stats['MET x [GeV]'].std():16.1f} {37.0:14.1f} "
              f"{stats['MET x [GeV]'].std() / 37:6.2f}")
        print(f"  {'vertex z std [mm]':18s} {stats['PFC vertex z [mm]'].std():16.1f} {57.0:14.1f} "
              f"{stats['PFC vertex z [mm]'].std() / 57:6.2f}")
        print(f"  largest deviation of the seven: {worst:.0%}")
        mean, std, dr, n = jet_response(outputs[0])
        print(f"jets in ttbar matched to GenJets (pT > 20, Delta R < 0.2): {n}, response {mean:.3f} ± {std:.3f}, "
              f"mean Delta R {dr:.3f}")

        h4l = args.reference / "h4lzz_7TeV_200_pythia_defaults.hepmc.gz"
        delphes = args.reference / "delphes_3.5.1_cms_h4lzz200.root"
        if h4l.exists() and delphes.exists():
            output = Path(tmp) / "h4l.root"
            run(card, h4l, output, seed=1, progress=False)
            e, mu = isolated_leptons(output)
            te, tmu = truth_leptons(output)
            de, dmu = isolated_leptons(delphes, delphes_layout=True)
            print("H->ZZ->4l (200 events, Pythia defaults), isolated leptons with pT > 10 GeV per event:")
            print(f"  truth |eta| < 2.5: {te:.2f} e + {tmu:.2f} mu;  Delphes 3.5.1 CMS card: {de:.2f} e + {dmu:.2f} mu;"
                  f"  refsim: {e:.2f} e + {mu:.2f} mu  (efficiency {e / te:.0%} e, {mu / tmu:.0%} mu; "
                  f"Delphes {de / te:.0%}, {dmu / tmu:.0%})")
        else:
            print(f"H->ZZ->4l: {args.reference} has no reference sample; skipped")


if __name__ == "__main__":
    main()
