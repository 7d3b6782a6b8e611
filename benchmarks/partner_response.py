"""How an anchored model changes a truth particle into its candidate: pT(candidate) / pT(partner), against refsim's.

    python benchmarks/partner_response.py --pairs runs/validation/qcd470_project/refsim.root \
        --truth runs/validation/qcd470_project/truth.hepmc.gz --card cards/cms2011.yaml [--events 200]

For refsim the candidates of ``--pairs`` (refsim output) are paired with truth particles as training pairs them
(:func:`parnassus.nn.data.load_pairs`); for the model the slots drawn while sampling ``--truth`` (the same truth
events) are recorded with the sampled candidates. Printed per candidate class and partner pT range: the number of
pairs and the 5, 16, 50, 84 and 95% quantiles and the mean of the ratio (refsim: a track's core is ±1%).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from recording import sample_recorded

from parnassus.nn.data import load_pairs
from parnassus.pdg import CLASS_NAMES

PT_RANGES = ((2.0, 10.0), (10.0, 50.0), (50.0, float("inf")))


def table(name: str, ratio: np.ndarray, cls: np.ndarray, partner_pt: np.ndarray) -> None:
    print(name)
    for k, class_name in enumerate(CLASS_NAMES):
        for low, high in PT_RANGES:
            chosen = (cls == k) & (partner_pt > low) & (partner_pt < high)
            if chosen.sum() < 20:
                continue
            q = np.quantile(ratio[chosen], [0.05, 0.16, 0.5, 0.84, 0.95])
            print(f"  {class_name:15s} pT {low:4.0f}-{high:<5.0f} {chosen.sum():6d} pairs  quantiles "
                  + " ".join(f"{v:.3f}" for v in q) + f"  mean {ratio[chosen].mean():.3f}")


def refsim_response(path: Path, events: int) -> None:
    truth, pfc = load_pairs([path], 400, 400, "anchored")
    n = min(events, len(truth))
    truth, pfc = truth.take(np.arange(n)), pfc.take(np.arange(n))
    event = np.repeat(np.arange(n), np.diff(pfc.offsets))
    paired = pfc.pairing >= 0
    partner = truth.offsets[event[paired]] + pfc.pairing[paired]
    ht = np.exp(truth.events[event[paired], 2])  # anchored pairs: pT_rel of the truth HT
    table(f"refsim ({path.name}): {n} events", np.exp(pfc.features[paired, 0] - truth.features[partner, 0]),
          pfc.cls[paired], np.exp(truth.features[partner, 0]) * ht)


def model_response(card_path: Path, truth_path: Path, events: int) -> None:
    found: dict[str, list[np.ndarray]] = {"ratio": [], "cls": [], "pt": []}

    def record(sets, slots, features, cls, totals, ht) -> None:
        event, _, partner, _ = slots  # each slot's flat truth partner, -1 for none
        paired = partner >= 0
        found["ratio"].append(np.exp(features[paired, 0] - sets.features[partner[paired], 0]))
        found["cls"].append(cls[paired])
        found["pt"].append(np.exp(sets.features[partner[paired], 0]) * ht[event[paired]])

    name, n = sample_recorded(card_path, truth_path, events, "anchored", "_slots", record)
    table(f"{name}: {n} events", *(np.concatenate(found[key]) for key in ("ratio", "cls", "pt")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, required=True, help="refsim output of the --truth events")
    parser.add_argument("--truth", type=Path, required=True, help="HepMC3 truth events")
    parser.add_argument("--card", type=Path, action="append", required=True, help="card of an anchored model")
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    refsim_response(args.pairs, args.events)
    for card in args.card:
        model_response(card, args.truth, args.events)


if __name__ == "__main__":
    main()
