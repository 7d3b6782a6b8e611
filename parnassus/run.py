"""``parnassus run``: card → reader → generator → objects → writer, one batch of events at a time."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import parnassus
from parnassus.card import Card
from parnassus.events import RunCounts, TruthBatch
from parnassus.generators import Generator, make_generator
from parnassus.io.delphes import DelphesWriter, pfc_collections, truth_collections
from parnassus.io.hepmc import HepMCReader
from parnassus.objects import build_objects


@dataclass
class RunResult:
    counts: RunCounts
    seconds: float
    warnings: list[str]

    @property
    def events_per_second(self) -> float:
        return self.counts.written / self.seconds if self.seconds > 0 else 0.0


def batch_seed(seed: int, first_index: int) -> int:
    """Seed of the batch that starts at input event ``first_index``: output does not depend on --skip."""
    return int(np.random.SeedSequence([seed, first_index]).generate_state(1)[0])


def simulate(batch: TruthBatch, generator: Generator, card: Card, seed: int) -> dict:
    """All output collections of one batch."""
    first = int(batch.index[0]) if len(batch) else 0
    pfcs = generator(batch, batch_seed(seed, first))
    return {**truth_collections(batch), **pfc_collections(pfcs), **build_objects(batch.particles, pfcs,
                                                                                 card.objects)}


def run(card: Card, input_path: str | Path, output_path: str | Path, *, max_events: int | None = None,
        skip: int = 0, seed: int | None = None, batch_size: int | None = None, device: str | None = None,
        progress: bool = True) -> RunResult:
    """Simulate the events of ``input_path`` with ``card`` and write a Delphes-layout ROOT file."""
    seed = card.sampling.seed if seed is None else seed
    batch_size = batch_size or card.sampling.batch_size
    device = device or card.sampling.device
    counts = RunCounts()
    reader = HepMCReader(input_path, card.truth, batch_size, counts, max_events=max_events, skip=skip)
    generator = make_generator(card)
    start = time.perf_counter()
    with DelphesWriter(output_path) as writer, tqdm(total=max_events, unit="ev", disable=None if progress else True,
                                                    dynamic_ncols=True) as bar:
        for batch in reader:
            writer.write(simulate(batch, generator, card, seed))
            counts.written += len(batch)
            bar.update(counts.read - bar.n)
        bar.update(counts.read - bar.n)
        if writer.entries == 0:  # still write a valid (empty) tree with every collection
            writer.write(simulate(TruthBatch.empty(), generator, card, seed))
        seconds = time.perf_counter() - start
        writer.commit(_metadata(card, input_path, seed, batch_size, device, counts, reader.warnings, seconds))
    return RunResult(counts, seconds, reader.warnings)


def _metadata(card: Card, input_path: str | Path, seed: int, batch_size: int, device: str,
              counts: RunCounts, warnings: list[str], seconds: float) -> dict:
    import awkward
    import fastjet
    import pyhepmc
    import uproot

    return {
        "parnassus_version": parnassus.__version__,
        "card": {"path": str(card.path), "name": card.name, "text": card.text},
        "generator": card.generator.kind,
        "checkpoint": str(card.generator.checkpoint) if card.generator.checkpoint else None,
        "seed": seed, "batch_size": batch_size, "device": device,
        "input": str(input_path),
        "counts": counts.as_dict(),
        "warnings": warnings,
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "awkward": awkward.__version__, "uproot": uproot.__version__,
                     "fastjet": fastjet.__version__, "pyhepmc": pyhepmc.__version__},
        "seconds": round(seconds, 3),
    }
