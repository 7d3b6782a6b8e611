"""Throughput of ``parnassus run``: per stage, end to end in one process, and whole process from the shell.

    python benchmarks/throughput.py [--card cards/cms2011.yaml] [--input FILE] [--events 500] [--repeat 2]

Prints events/s of each stage on the same batches (reading HepMC3 → truth arrays, generator, objects), of a
``run`` call in this process with the stages one after another (plus writing), of one that reads in a child
process (``reader_process=True``: reading overlaps with the rest), and of ``parnassus run`` as a separate process
(which reads in a child process; start-up included, as a user or a batch job sees it), with that process's
start-up time (``parnassus run -n 1`` on the same card) and peak resident memory (its own or its reader's,
the larger). These are the figures the README quotes.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
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


def whole_process(card: Path, input_path: Path, events: int, output: Path) -> tuple[float, float]:
    """(wall seconds, peak resident MB) of ``parnassus run`` as its own process (the largest of its processes)."""
    command = [sys.executable, "-c", "from parnassus.cli import main; main()", "run", "--quiet", "--card",
               str(card), "-n", str(events), str(input_path), str(output)]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", default=ROOT / "cards" / "cms2011.yaml", type=Path)
    parser.add_argument("--input", default=ROOT / "examples" / "ttbar_7TeV_50.hepmc.gz", type=Path)
    parser.add_argument("--events", default=500, type=int)
    parser.add_argument("--repeat", default=2, type=int)
    args = parser.parse_args()
    card = load_card(args.card)
    generator = make_generator(card)

    best: dict[str, float] = {}
    for _ in range(args.repeat):
        counts = RunCounts()
        start = time.perf_counter()
        batches = list(HepMCReader(args.input, card.truth, card.sampling.batch_size, counts,
                                   max_events=args.events, history=card.objects.jet_flavor))
        read = time.perf_counter() - start
        start = time.perf_counter()
        pfcs = [generator(batch, 1) for batch in batches]
        generate = time.perf_counter() - start
        start = time.perf_counter()
        for batch, out in zip(batches, pfcs, strict=True):
            build_objects(batch.particles, out, card.objects, history=batch.history, seed=1, events=batch.index)
        objects = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            result = run(card, args.input, Path(tmp) / "out.root", max_events=args.events, progress=False)
            piped = run(card, args.input, Path(tmp) / "piped.root", max_events=args.events, progress=False,
                        reader_process=True)
            process, memory = whole_process(args.card, args.input, args.events, Path(tmp) / "process.root")
            startup, _ = whole_process(args.card, args.input, 1, Path(tmp) / "one.root")
        n = sum(len(batch) for batch in batches)
        for name, seconds in (("read", read), ("generator", generate), ("objects", objects),
                              ("run (in process)", result.seconds), ("run (reader process)", piped.seconds),
                              ("parnassus run", process)):
            best[name] = max(best.get(name, 0.0), n / seconds)
        best["start-up [s]"] = min(best.get("start-up [s]", float("inf")), startup)
        best["peak memory [MB]"] = max(best.get("peak memory [MB]", 0.0), memory)
    print(f"card {card.name}, input {args.input.name}: {n} events, {os.cpu_count()} cores, best of {args.repeat}")
    for name, value in best.items():
        unit = "" if "[" in name else " events/s"
        print(f"  {name:20s} {value:9.1f}{unit}")


if __name__ == "__main__":
    main()
