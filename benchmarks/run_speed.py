"""Events/s of ``parnassus run`` with the parametric card, per stage and end to end.

    python benchmarks/run_speed.py [--repeat 3] [--input examples/ttbar_7TeV_50.hepmc.gz]

Stages are timed on the same batches: reading (HepMC3 → truth arrays), generator, objects (jets,
leptons, MET), and the whole run (including writing). Interpreter start-up is not included.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from parnassus.card import load_card
from parnassus.events import RunCounts
from parnassus.generators import make_generator
from parnassus.io.hepmc import HepMCReader
from parnassus.objects import build_objects
from parnassus.run import run

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=ROOT / "examples" / "ttbar_7TeV_50.hepmc.gz", type=Path)
    parser.add_argument("--card", default=ROOT / "cards" / "delphes_cms_like.yaml", type=Path)
    parser.add_argument("--repeat", default=3, type=int)
    args = parser.parse_args()
    card = load_card(args.card)
    generator = make_generator(card)

    best: dict[str, float] = {}
    for _ in range(args.repeat):
        counts = RunCounts()
        start = time.perf_counter()
        batches = list(HepMCReader(args.input, card.truth, card.sampling.batch_size, counts,
                                   history=card.objects.jet_flavor))
        read = time.perf_counter() - start
        start = time.perf_counter()
        pfcs = [generator(batch, 1) for batch in batches]
        generate = time.perf_counter() - start
        start = time.perf_counter()
        for batch, out in zip(batches, pfcs, strict=True):
            build_objects(batch.particles, out, card.objects, history=batch.history, seed=1, events=batch.index)
        objects = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            result = run(card, args.input, Path(tmp) / "out.root", progress=False)
        n = counts.written or result.counts.written
        for name, seconds in (("read", read), ("generator", generate), ("objects", objects),
                              ("run (end to end)", result.seconds)):
            best[name] = max(best.get(name, 0.0), n / seconds)
    print(f"input {args.input.name}: {n} events, card {card.name}, best of {args.repeat}")
    for name, rate in best.items():
        print(f"  {name:18s} {rate:9.1f} events/s")


if __name__ == "__main__":
    main()
