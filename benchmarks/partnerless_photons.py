"""Photon-class candidates with and without a truth partner: refsim's training pairs against an anchored or
seeded model.

    python benchmarks/partnerless_photons.py --pairs data/cms2011/qcd470_test \
        --truth runs/validation_2000/qcd470_project/truth.hepmc.gz [--card cards/cms2011.yaml] [--events 1000]

For refsim, the candidates of the first file of ``--pairs`` are paired with truth particles as training pairs them
(:func:`parnassus.nn.data.load_pairs`); for the model, the slots it draws while sampling ``--truth`` are recorded
(a candidate with a partner starts its flow near it; one without from noise, or, for ``model.source: seeded``,
near the truth particle its seed head drew). For photon-class candidates above 10 GeV with |eta| < 2.5 it prints,
per event and by kind: how many, how many are isolated (the pT of the other candidates above 0.5 GeV within Delta R
0.5 below 0.12 of the photon's), and for those without a partner the Delta R to the nearest truth particle above
1 GeV (median, 90%; and the median of the isolated ones).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import awkward as ak
import numpy as np

from parnassus.card import load_card
from parnassus.events import RunCounts
from parnassus.generators import make_generator
from parnassus.io.hepmc import HepMCReader
from parnassus.nn.data import load_pairs
from parnassus.pdg import PHOTON


def delta_r(eta: np.ndarray, phi: np.ndarray, eta0: float, phi0: float) -> np.ndarray:
    return np.hypot(eta - eta0, (phi - phi0 + np.pi) % (2 * np.pi) - np.pi)


class Tally:
    """Photon counts by kind (True: with a truth partner) over the events added."""

    def __init__(self) -> None:
        self.events = 0
        self.count = {True: 0, False: 0}
        self.isolated = {True: 0, False: 0}
        self.distance: list[float] = []  # partnerless: Delta R to the nearest truth particle above 1 GeV
        self.isolated_distance: list[float] = []

    def add(self, pt, eta, phi, cls, partnered, truth_pt, truth_eta, truth_phi) -> None:
        self.events += 1
        for j in np.flatnonzero((cls == PHOTON) & (pt > 10) & (np.abs(eta) < 2.5)):
            near = delta_r(eta, phi, eta[j], phi[j]) < 0.5
            isolated = (pt[near & (pt > 0.5)].sum() - pt[j]) / pt[j] < 0.12
            kind = bool(partnered[j])
            self.count[kind] += 1
            self.isolated[kind] += isolated
            if not kind:
                hard = truth_pt > 1
                d = delta_r(truth_eta[hard], truth_phi[hard], eta[j], phi[j]).min() if hard.any() else np.inf
                self.distance.append(d)
                if isolated:
                    self.isolated_distance.append(d)

    def line(self, name: str) -> str:
        n = max(self.events, 1)

        def quantile(values: list[float], q: float) -> float:
            return float(np.quantile(values, q)) if values else float("nan")

        return (f"{name}: {self.events} events; photons > 10 GeV per event with a partner {self.count[True] / n:.3f}, "
                f"without {self.count[False] / n:.3f}; isolated {self.isolated[True] / n:.4f} / "
                f"{self.isolated[False] / n:.4f}; without a partner, Delta R to the nearest truth particle > 1 GeV: "
                f"median {quantile(self.distance, 0.5):.3f}, 90% {quantile(self.distance, 0.9):.3f}; isolated ones: "
                f"median {quantile(self.isolated_distance, 0.5):.3f}")


def refsim_tally(folder: Path, events: int, max_particles: int = 400) -> tuple[Tally, str]:
    path = next(p for p in sorted(folder.glob("*.root")) if not p.name.startswith("."))  # not a part file
    truth, pfc = load_pairs([path], max_particles, max_particles, "anchored")
    ht = np.exp(truth.events[:, 2])  # anchored pairs: pT_rel refers to the truth HT
    tally = Tally()
    for i in range(min(events, len(truth))):
        part = slice(pfc.offsets[i], pfc.offsets[i + 1])
        c, t = pfc.features[part], truth.features[truth.offsets[i]:truth.offsets[i + 1]]
        tally.add(np.exp(c[:, 0]) * ht[i], c[:, 1], np.arctan2(c[:, 2], c[:, 3]), pfc.cls[part], pfc.pairing[part] >= 0,
                  np.exp(t[:, 0]) * ht[i], t[:, 1], np.arctan2(t[:, 2], t[:, 3]))
    return tally, path.name


def model_tally(card_path: Path, truth_path: Path, events: int) -> tuple[Tally, str]:
    card = load_card(card_path)
    generator = make_generator(card)
    decoded, slots = [], []
    decode, draw_slots = generator._decode, generator._slots

    def recording_decode(features, cls, totals, ht, vertex):
        decoded.append((features.copy(), cls.copy(), totals.copy(), ht.copy()))
        return decode(features, cls, totals, ht, vertex)

    def recording_slots(*args):
        result = draw_slots(*args)
        slots.append(result[2] >= 0)  # each candidate's truth partner, -1 for none
        return result

    generator._decode, generator._slots = recording_decode, recording_slots
    tally = Tally()
    for batch in HepMCReader(truth_path, card.truth, 200, RunCounts(), max_events=events):
        decoded.clear()
        slots.clear()
        generator(batch, card.sampling.seed)
        (features, cls, totals, ht), = decoded
        offsets = np.concatenate([[0], np.cumsum(totals)])
        for i in range(len(totals)):
            f, part = features[offsets[i]:offsets[i + 1]], slice(offsets[i], offsets[i + 1])
            truth = batch.particles[i]
            tally.add(np.exp(np.clip(f[:, 0], -30, 5)) * ht[i], f[:, 1], np.arctan2(f[:, 2], f[:, 3]), cls[part],
                      slots[0][part], *(ak.to_numpy(truth[k]) for k in ("pt", "eta", "phi")))
    return tally, card.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, required=True, help="folder of refsim pair files")
    parser.add_argument("--truth", type=Path, required=True, help="HepMC3 truth events of the same process")
    parser.add_argument("--card", type=Path, default=Path(__file__).resolve().parents[1] / "cards" / "cms2011.yaml")
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()
    tally, name = refsim_tally(args.pairs, args.events)
    print(tally.line(f"refsim ({name})"))
    tally, name = model_tally(args.card, args.truth, args.events)
    print(tally.line(name))


if __name__ == "__main__":
    main()
