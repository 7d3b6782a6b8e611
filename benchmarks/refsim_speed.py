"""refsim speed: events/s of the reference simulation (ttbar, pileup on) and the time to make 100k pairs.

    python benchmarks/refsim_speed.py [--events 400] [--workers 2]

Measures, in one process: Pythia ttbar generation alone, refsim alone (the generator call, with pileup),
and a whole `parnassus refsim` chunk (generation + refsim + objects + writing). The time for 100k training
pairs assumes `--workers` such processes in parallel (what `parnassus dataset` does); the dataset log
(`data/dataset.log`) has the real figure.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from parnassus.card import load_card
from parnassus.events import RunCounts
from parnassus.generators import make_generator
from parnassus.io.pythia import PythiaReader
from parnassus.run import run

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", default=ROOT / "cards" / "refsim_cms2011.yaml", type=Path)
    parser.add_argument("--input", default=ROOT / "examples" / "ttbar_7TeV.cmnd", type=Path)
    parser.add_argument("--events", default=400, type=int)
    parser.add_argument("--workers", default=2, type=int)
    args = parser.parse_args()
    card = load_card(args.card)
    generator = make_generator(card)

    start = time.perf_counter()
    batches = list(PythiaReader(args.input, card.truth, card.sampling.batch_size, RunCounts(),
                                max_events=args.events, seed=1))
    generation = args.events / (time.perf_counter() - start)
    start = time.perf_counter()
    for i, batch in enumerate(batches):
        generator(batch, i)
    simulation = args.events / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(card, args.input, Path(tmp) / "chunk.root", max_events=args.events, seed=2, progress=False)
    chunk = result.events_per_second
    hours = 100_000 / (chunk * args.workers) / 3600
    print(f"{args.input.name}, {args.events} events, card {card.name} (pileup mu = "
          f"{card.generator.refsim.pileup.mu if card.generator.refsim.pileup else 0})")
    print(f"  Pythia generation        {generation:8.1f} events/s")
    print(f"  refsim (generator call)  {simulation:8.1f} events/s  ({1000 / simulation:.1f} ms/event)")
    print(f"  whole chunk (run)        {chunk:8.1f} events/s per process")
    print(f"  100k training pairs with {args.workers} processes: {hours:.2f} h (projected)")


if __name__ == "__main__":
    main()
