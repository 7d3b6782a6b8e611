"""Where a seeded model puts its seeded candidates: Delta R to the seed, against refsim's training pairs.

    python benchmarks/seed_placement.py --pairs runs/validation_seeded3/ggH_ZZ_4l_project/refsim.root \
        --truth runs/validation_seeded3/ggH_ZZ_4l_project/truth.hepmc.gz --card runs/cms2011-seeded3.yaml [--events 500]

``model.source: seeded`` gives each candidate without a truth partner a seed: in training the nearest truth
particle within Delta R 0.4 (:func:`parnassus.nn.anchors.seeds`), when sampling one its seed head draws. For refsim
the candidates of ``--pairs`` (refsim output, or a folder of it: its first file) are paired and seeded as training
does; for the model the seeds drawn while sampling ``--truth`` (the same truth events, for a like-for-like
comparison) are recorded with the sampled candidates. Printed, for candidates above ``--min-pt`` (the output
keeps none below 1 GeV), per candidate class, per seed class and per pair of them (seed -> candidate, those with
at least 0.01 per event): how many seeded candidates per event, the fraction within Delta R 0.1, 0.2 and 0.3 of the
seed (0.3: the isolation cone of leptons), the median Delta R, the median pT and the pT within 0.3 per event (what
they add to the seeds' isolation cones).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from recording import sample_recorded

from parnassus.nn.data import load_pairs
from parnassus.pdg import CLASS_NAMES

# columns of the particle features (nn.features.PARTICLE_FEATURES)
_ETA, _SIN, _COS = 1, 2, 3


def delta_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Delta R between two arrays of raw particle features."""
    dphi = np.arctan2(a[:, _SIN] * b[:, _COS] - a[:, _COS] * b[:, _SIN],
                      a[:, _COS] * b[:, _COS] + a[:, _SIN] * b[:, _SIN])
    return np.hypot(a[:, _ETA] - b[:, _ETA], dphi)


def table(name: str, events: int, distance: np.ndarray, cls: np.ndarray, seed_cls: np.ndarray, pt: np.ndarray,
          min_pt: float) -> None:
    kept = pt > min_pt
    distance, cls, seed_cls = distance[kept], cls[kept], seed_cls[kept]
    print(f"{name}: {events} events, {len(distance) / max(events, 1):.1f} seeded candidates per event")
    pt = pt[kept]
    groups = [("all", np.ones(len(distance), dtype=bool))]
    groups += [(f"candidate {c}", cls == k) for k, c in enumerate(CLASS_NAMES)]
    groups += [(f"seed {c}", seed_cls == k) for k, c in enumerate(CLASS_NAMES)]
    groups += [(f"{s} -> {c}", (seed_cls == j) & (cls == k)) for j, s in enumerate(CLASS_NAMES)
               for k, c in enumerate(CLASS_NAMES) if np.sum((seed_cls == j) & (cls == k)) >= 0.01 * events]
    for label, chosen in groups:
        d = distance[chosen]
        if len(d):
            print(f"  {label:32s} {len(d) / events:7.2f}/event  within 0.1 {np.mean(d < 0.1):.2f}  0.2 "
                  f"{np.mean(d < 0.2):.2f}  0.3 {np.mean(d < 0.3):.2f}  median {np.median(d):.3f}  pT median "
                  f"{np.median(pt[chosen]):5.2f}, within 0.3 {np.sum(pt[chosen][d < 0.3]) / events:5.2f}/event")


def refsim_placement(path: Path, events: int, min_pt: float, max_particles: int = 400) -> None:
    if path.is_dir():
        path = next(p for p in sorted(path.glob("*.root")) if not p.name.startswith("."))  # not a part file
    truth, pfc = load_pairs([path], max_particles, max_particles, "seeded")
    n = min(events, len(truth))
    truth, pfc = truth.take(np.arange(n)), pfc.take(np.arange(n))
    event = np.repeat(np.arange(n), np.diff(pfc.offsets))
    seeded = pfc.seed >= 0
    seed = truth.offsets[event[seeded]] + pfc.seed[seeded]
    pt = np.exp(pfc.features[seeded, 0] + truth.events[event[seeded], 2])  # seeded pairs: pT_rel of the truth HT
    table(f"refsim ({path.name})", n, delta_r(pfc.features[seeded], truth.features[seed]), pfc.cls[seeded],
          truth.cls[seed], pt, min_pt)


def model_placement(card_path: Path, truth_path: Path, events: int, min_pt: float) -> None:
    found: dict[str, list[np.ndarray]] = {"distance": [], "cls": [], "seed_cls": [], "pt": []}

    def record(sets, seed, features, cls, totals, ht) -> None:
        seeded = seed >= 0  # each slot's seed: a flat index into the truth sets, -1 for none
        found["distance"].append(delta_r(features[seeded], sets.features[seed[seeded]]))
        found["cls"].append(cls[seeded])
        found["seed_cls"].append(sets.cls[seed[seeded]])
        found["pt"].append(np.exp(np.clip(features[seeded, 0], -30, 5)) * np.repeat(ht, totals)[seeded])

    name, n = sample_recorded(card_path, truth_path, events, "seeded", "_seeds", record)
    table(name, n, *(np.concatenate(found[key]) for key in ("distance", "cls", "seed_cls", "pt")), min_pt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, required=True, help="refsim output (a file, or a folder of them)")
    parser.add_argument("--truth", type=Path, required=True, help="HepMC3 truth events (those of --pairs)")
    parser.add_argument("--card", type=Path, required=True, help="card of a seeded model")
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--min-pt", type=float, default=0.0, help="only candidates above this pT [GeV]")
    args = parser.parse_args()
    refsim_placement(args.pairs, args.events, args.min_pt)
    model_placement(args.card, args.truth, args.events, args.min_pt)


if __name__ == "__main__":
    main()
