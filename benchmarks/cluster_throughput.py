"""Throughput of many files: the same 4 files run serially in one process and on a 2-worker Dask LocalCluster.

    python benchmarks/cluster_throughput.py [--card delphes_cms_like] [--events 200] [--workers 2]

Each file holds ``--events`` events (the 50 example ttbar events repeated). Serial: one ``run`` after another in
this process (after a warm-up run). Cluster: ``parnassus.engine.run_jobs`` on a LocalCluster of single-threaded
worker processes, timed without the cluster's start and the workers' imports (printed apart: a command pays them
once). Both write the same outputs (checked).
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import time
from pathlib import Path

import pyhepmc
import uproot
from distributed import Client

from parnassus.card import load_card
from parnassus.engine import ClusterSpec, Settings, folder_jobs, run_jobs, start_cluster
from parnassus.run import run

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ttbar_7TeV_50.hepmc.gz"


def make_inputs(folder: Path, files: int, events: int) -> list[str]:
    with pyhepmc.open(EXAMPLE) as source:
        example = list(source)
    paths = []
    for k in range(files):
        path = folder / f"in{k}.hepmc"
        with pyhepmc.open(path, "w") as out:
            for i in range(events):
                event = example[(i + 7 * k) % len(example)]  # each file starts elsewhere in the example
                event.event_number = i
                out.write(event)
        paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", default="delphes_cms_like")
    parser.add_argument("--events", type=int, default=200, help="events per file")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    card = load_card(args.card)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        inputs = make_inputs(folder, 4, args.events)
        total = 4 * args.events
        run(card, inputs[0], folder / "warm.root", max_events=5, progress=False)  # imports and caches, as a worker

        (folder / "serial").mkdir()
        start = time.perf_counter()
        for path in inputs:
            run(card, path, folder / "serial" / Path(path).with_suffix(".root").name, progress=False)
        serial = time.perf_counter() - start

        start = time.perf_counter()
        cluster = start_cluster(ClusterSpec(workers=args.workers))
        with Client(cluster) as client:  # the workers import what a run needs, as this process did above
            client.run(importlib.import_module, "parnassus.run")
            client.run(importlib.import_module, "fastjet")
        started = time.perf_counter() - start
        try:
            jobs = folder_jobs(inputs, folder / "cluster", card.sampling.seed)
            start = time.perf_counter()
            result = run_jobs(card, jobs, Settings(split_events=0), ClusterSpec(scheduler=cluster.scheduler_address),
                              progress=False, log=lambda line: None)
            parallel = time.perf_counter() - start
        finally:
            cluster.close()
        assert not result.failed
        for job in jobs:
            made = uproot.open(job.output)["Delphes"]["ParticleFlowCandidate.PT"].array().tolist()
            alone = uproot.open(folder / "serial" / job.output.name)["Delphes"]["ParticleFlowCandidate.PT"].array()
            assert made == alone.tolist(), job.output
    print(f"card {args.card}, 4 files x {args.events} events")
    print(f"serial (1 process):          {serial:7.1f} s  {total / serial:7.1f} events/s")
    print(f"LocalCluster ({args.workers} workers):    {parallel:7.1f} s  {total / parallel:7.1f} events/s  "
          f"(x{serial / parallel:.2f}; the cluster's start: {started:.1f} s more)")


if __name__ == "__main__":
    main()
