"""Events/s of the learned generator per solver: Euler at 25 steps vs DPM-Solver++(2M) at 8 steps, etc.

    python benchmarks/neural_speed.py [--card cards/cms2011.yaml] [--events 200] [--device cpu]

Times the generator call alone (event + PFC networks, ODE sampling, decoding) on ttbar truth events from the
example sample, after one warm-up batch; torch uses the threads it is given (OMP_NUM_THREADS).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from parnassus.card import load_card
from parnassus.errors import CardError
from parnassus.events import RunCounts
from parnassus.generators.neural import NeuralGenerator
from parnassus.io.hepmc import HepMCReader
from parnassus.solvers import evaluations

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = [("euler", 25), ("dpmpp2m", 8), ("heun", 8), ("pndm", 10), ("dpmpp2m", 16), ("euler", 2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", default=ROOT / "cards" / "cms2011.yaml", type=Path)
    parser.add_argument("--input", default=ROOT / "examples" / "ttbar_7TeV_50.hepmc.gz", type=Path)
    parser.add_argument("--events", default=50, type=int)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    card = load_card(args.card)
    batches = list(HepMCReader(args.input, card.truth, card.sampling.batch_size, RunCounts(),
                               max_events=args.events))
    n = sum(len(b) for b in batches)
    print(f"{args.card.name} on {args.input.name}: {n} events, device {args.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for solver, steps in SETTINGS:
        card.sampling = dataclasses.replace(card.sampling, solver=solver, steps=steps)
        try:
            generator = NeuralGenerator(card, args.device)
        except CardError:  # a distilled student samples only with the solver and steps it was made for
            print(f"  {solver:8s} {steps:3d} steps: not for this model")
            continue
        generator(batches[0], 0)  # warm-up
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for i, batch in enumerate(batches):
            generator(batch, i)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        print(f"  {solver:8s} {steps:3d} steps ({evaluations(solver, steps):3d} evaluations): "
              f"{n / seconds:8.2f} events/s")


if __name__ == "__main__":
    main()
