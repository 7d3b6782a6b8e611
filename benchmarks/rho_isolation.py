"""Pileup density rho and the lepton isolation it corrects, on the reference simulation (issue 11).

    python benchmarks/rho_isolation.py [--card cards/refsim_cms2011.yaml] [--input examples/ttbar_7TeV_50.hepmc.gz]
                                       [--events 50] [--seed 1]

Simulates the input with the card's generator (refsim: pileup overlaid), then builds the isolated electrons and
muons twice from the same candidates, with the card's rho and with rho = 0 (the isolation before rho), and prints:
the mean rho per range, isolated electrons and muons (pT > the card's threshold, 10 GeV) per event both ways, the
time of the rho computation per event, and two checks against the candidates' truth origin (``is_pu``, written as
IsPU): the neutral pT from pileup in the lepton candidates' cones next to rho pi R^2, which the correction
subtracts, and how the card's ``pileup_dz`` sorts the charged candidates of those cones (the pileup ones it flags,
the hard-scatter ones it flags by mistake).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import awkward as ak
import numpy as np

from parnassus.card import IsolatedObject, load_card
from parnassus.events import RunCounts
from parnassus.generators import make_generator
from parnassus.io.hepmc import HepMCReader
from parnassus.objects import isolated, isolation_candidates, isolation_cone
from parnassus.pdg import ELECTRON, MUON
from parnassus.rho import event_rho

ROOT = Path(__file__).resolve().parents[1]


def cone_pairs(pfcs: ak.Array, cls: int, spec: IsolatedObject) -> tuple[ak.Array, ak.Array]:
    """The lepton candidates of class ``cls`` and their (candidate, other candidate) pairs within the isolation
    cone (one list per candidate), as the isolation takes them."""
    cands, pairs, inside = isolation_cone(pfcs, isolation_candidates(pfcs, cls, spec), spec, ("charge", "is_pu"))
    return cands, pairs[inside]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", default=ROOT / "cards" / "refsim_cms2011.yaml", type=Path)
    parser.add_argument("--input", default=ROOT / "examples" / "ttbar_7TeV_50.hepmc.gz", type=Path)
    parser.add_argument("--events", default=50, type=int)
    parser.add_argument("--seed", default=1, type=int)
    args = parser.parse_args()
    card = load_card(args.card)
    objects = card.objects
    if objects.rho is None:
        raise SystemExit(f"{args.card}: the card has no objects.rho")
    generator = make_generator(card)
    reader = HepMCReader(args.input, card.truth, card.sampling.batch_size, RunCounts(), max_events=args.events)
    pfcs = ak.concatenate([generator(batch, args.seed) for batch in reader])
    n_events = len(pfcs)

    start = time.perf_counter()
    rho = event_rho(pfcs, objects.rho)
    seconds = (time.perf_counter() - start) / n_events
    print(f"{args.card.name} on {args.input.name}: {n_events} events, "
          f"{ak.mean(ak.num(pfcs)):.0f} candidates per event ({ak.mean(pfcs.is_pu):.2f} of them IsPU)")
    print(f"rho: {seconds * 1e3:.1f} ms per event (kt R = {objects.rho.radius}, {objects.rho.area} areas)")
    for (low, high), values in zip(rho.edges, rho.values.T, strict=True):
        print(f"  |eta| {low:.1f}-{high:.1f}: mean rho {values.mean():.2f} GeV (std {values.std():.2f})")

    print("isolated per event (pT >= threshold)   rho = 0   card's rho")
    for name, cls, spec in (("electrons", ELECTRON, objects.electrons), ("muons", MUON, objects.muons)):
        before, _ = isolated(pfcs, cls, spec)
        after, _ = isolated(pfcs, cls, spec, rho)
        rates = [ak.sum(ak.num(leaves)) / n_events for leaves in (before, after)]
        print(f"  {name:37s} {rates[0]:7.3f}   {rates[1]:7.3f}")

    print("in the cones of the electron and muon candidates (before the isolation cut):")
    for name, cls, spec in (("electrons", ELECTRON, objects.electrons), ("muons", MUON, objects.muons)):
        cands, pairs = cone_pairs(pfcs, cls, spec)
        others = pairs.o
        neutral = others.charge == 0
        n_cands = int(ak.sum(ak.num(cands)))
        if n_cands == 0:
            continue
        pileup_neutral = ak.sum(ak.sum(others.pt * (neutral & (others.is_pu == 1)), axis=-1)) / n_cands
        all_neutral = ak.sum(ak.sum(others.pt * neutral, axis=-1)) / n_cands
        area = np.pi * spec.isolation.cone**2
        print(f"  {name} ({n_cands} candidates): neutral pT {all_neutral:.2f} GeV, of it from pileup (IsPU) "
              f"{pileup_neutral:.2f} GeV; rho pi R^2 {ak.mean(rho.at(cands.eta)) * area:.2f} GeV")
        charged = others[~neutral]
        flagged = abs(charged.z - pairs.c.z[~neutral]) > spec.isolation.pileup_dz
        truth_pu = charged.is_pu == 1
        n_pu, n_hard = ak.sum(truth_pu), ak.sum(~truth_pu)
        print(f"    charged: {n_pu} pileup, {ak.sum(flagged & truth_pu) / max(n_pu, 1):.3f} of them beyond "
              f"pileup_dz = {spec.isolation.pileup_dz} mm; {n_hard} hard-scatter, "
              f"{ak.sum(flagged & ~truth_pu) / max(n_hard, 1):.4f} of them beyond")


if __name__ == "__main__":
    main()
