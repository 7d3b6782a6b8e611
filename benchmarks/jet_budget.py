"""Where a truth jet's energy goes: candidates with a truth partner, candidates without, refsim against models.

    python benchmarks/jet_budget.py --pairs runs/validation_seeded3/qcd470_project/refsim.root \
        --truth runs/validation_seeded3/qcd470_project/truth.hepmc.gz --card cards/cms2011.yaml [--card ...] \
        [--events 200]

For each truth jet (anti-kT 0.5 of the truth set, pT > 50 GeV, |eta| < 2) and the candidates within Delta R 0.5 of
its axis: the pT of the candidates with a truth partner and of those without, over the jet's truth pT; their sum
(the jet response, here with the axis fixed); and the truth pT whose particles have a candidate of their own.
refsim's candidates (``--pairs``, paired as training pairs them: :func:`parnassus.nn.data.load_pairs`) against the
candidates and partner draws of each anchored or seeded model (``--card``) on the same truth events (``--truth``).
In refsim a particle whose energy its own candidate does not carry (merged clusters, calorimeter excess) has it
carried by a free candidate: the two shares anticorrelate and the sum is tight. Printed per source: the mean ±
standard deviation and the 5, 25, 50, 75 and 95% quantiles of each share and of the sum, and the shares'
correlation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import awkward as ak
import fastjet
import numpy as np
import vector
from recording import sample_recorded

from parnassus.nn.data import ParticleSets, load_pairs

vector.register_awkward()
JET_PT_MIN, JET_ETA_MAX, RADIUS = 50.0, 2.0, 0.5
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def shares(truth: ParticleSets, truth_label: np.ndarray, features: np.ndarray, pt: np.ndarray,
           candidate_event: np.ndarray, paired: np.ndarray) -> dict[str, np.ndarray]:
    """Per truth jet: the paired and free candidates' pT and the partnered truth pT, over the jet's truth pT.
    ``features``/``pt``/``candidate_event``/``paired``: the candidates (flat, event by event); ``truth_label``: each
    truth particle's slot label (0: no candidate)."""
    n = len(truth)
    sizes = np.diff(truth.offsets)
    truth_pt = np.exp(truth.features[:, 0] + np.repeat(truth.events[:, 2], sizes))
    truth_eta, truth_phi = truth.features[:, 1], np.arctan2(truth.features[:, 2], truth.features[:, 3])
    eta, phi = features[:, 1], np.arctan2(features[:, 2], features[:, 3])
    particles = ak.zip({name: ak.unflatten(values, sizes) for name, values in
                        (("pt", truth_pt), ("eta", truth_eta), ("phi", truth_phi), ("mass", 0 * truth_pt))},
                       with_name="Momentum4D")
    jets = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.antikt_algorithm, RADIUS)
                                   ).inclusive_jets(min_pt=JET_PT_MIN)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(candidate_event, minlength=n))])
    rows: dict[str, list[float]] = {"paired": [], "free": [], "partnered truth": []}
    for e in range(n):
        t, c = slice(truth.offsets[e], truth.offsets[e + 1]), slice(offsets[e], offsets[e + 1])
        for jet in jets[e]:
            if abs(jet.eta) > JET_ETA_MAX:
                continue

            def inside(eta_: np.ndarray, phi_: np.ndarray, jet=jet) -> np.ndarray:
                return (eta_ - jet.eta) ** 2 + ((phi_ - jet.phi + np.pi) % (2 * np.pi) - np.pi) ** 2 < RADIUS**2

            in_truth, in_reco = inside(truth_eta[t], truth_phi[t]), inside(eta[c], phi[c])
            total = truth_pt[t][in_truth].sum()
            rows["paired"].append(pt[c][in_reco & paired[c]].sum() / total)
            rows["free"].append(pt[c][in_reco & ~paired[c]].sum() / total)
            rows["partnered truth"].append(truth_pt[t][in_truth & (truth_label[t] > 0)].sum() / total)
    return {key: np.array(values) for key, values in rows.items()}


def report(name: str, found: dict[str, np.ndarray]) -> None:
    paired, free = found["paired"], found["free"]
    print(f"{name}: {len(paired)} jets")
    for key, values in (*found.items(), ("paired + free", paired + free)):
        quantiles = " ".join(f"{q:.3f}" for q in np.quantile(values, QUANTILES))
        print(f"  {key:16s} {values.mean():.3f} ± {values.std():.3f}   quantiles {quantiles}")
    print(f"  correlation of paired and free {np.corrcoef(paired, free)[0, 1]:+.2f}")


def refsim_budget(path: Path, events: int, max_particles: int = 400) -> None:
    truth, pfc = load_pairs([path], max_particles, max_particles, "anchored")
    n = min(events, len(truth))
    truth, pfc = truth.take(np.arange(n)), pfc.take(np.arange(n))
    event = np.repeat(np.arange(n), np.diff(pfc.offsets))
    pt = np.exp(pfc.features[:, 0] + truth.events[event, 2])  # anchored pairs: pT_rel of the truth HT
    report(f"refsim ({path.name})", shares(truth, truth.pairing, pfc.features, pt, event, pfc.pairing >= 0))


def model_budget(card_path: Path, truth_path: Path, events: int) -> None:
    found: list[dict[str, np.ndarray]] = []

    def record(sets, slots, features, cls, totals, ht) -> None:
        event, _, partner, _ = slots
        pt = np.exp(np.clip(features[:, 0], -30, 5)) * ht[event]
        found.append(shares(sets, sets.pairing, features, pt, event, partner >= 0))  # pairing: the drawn labels

    name, _ = sample_recorded(card_path, truth_path, events, "anchored", "_slots", record)
    report(name, {key: np.concatenate([part[key] for part in found]) for key in found[0]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, required=True, help="refsim output of the --truth events")
    parser.add_argument("--truth", type=Path, required=True, help="HepMC3 truth events (those of --pairs)")
    parser.add_argument("--card", type=Path, action="append", default=[], help="card of an anchored or seeded model")
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    refsim_budget(args.pairs, args.events)
    for card in args.card:
        model_budget(card, args.truth, args.events)


if __name__ == "__main__":
    main()
