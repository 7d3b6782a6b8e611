"""``parnassus run``: card → reader → generator → objects → writer, one batch of events at a time."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
from tqdm import tqdm

import parnassus
from parnassus.card import Card, Objects
from parnassus.events import RunCounts, TruthBatch
from parnassus.generators import Generator, make_generator
from parnassus.io.delphes import DelphesWriter, check_output_path, pfc_collections, truth_collections
from parnassus.objects import build_objects
from parnassus.pipeline import ReaderProcess, ReaderSpec, open_reader


@dataclass
class RunResult:
    counts: RunCounts
    seconds: float
    warnings: list[str]

    @property
    def events_per_second(self) -> float:
        return self.counts.written / self.seconds if self.seconds > 0 else 0.0


def batch_collections(batch: TruthBatch, pfcs: ak.Array, objects: Objects, seed: int = 0,
                      replica: int | None = None, replicas: int = 1) -> dict[str, ak.Array]:
    """All output collections of one batch, given its truth particles and its particle-flow candidates.

    ``seed`` (the run's) fixes the jet-tagging draws of each event by its position in the input. ``replica`` and
    ``replicas``: see :func:`~parnassus.io.delphes.truth_collections` (oversampled runs).
    """
    return {**truth_collections(batch, replica, replicas), **pfc_collections(pfcs),
            **build_objects(batch.particles, pfcs, objects, history=batch.history, seed=seed, events=batch.index)}


def simulate(batch: TruthBatch, generator: Generator, card: Card, seed: int) -> dict:
    """All output collections of one batch. Every event draws from its own random streams, fixed by ``seed`` and
    its position in the input (:mod:`parnassus.streams`): its output does not depend on the rest of the batch."""
    return batch_collections(batch, generator(batch, seed), card.objects, seed)


def replica_seed(seed: int, replica: int) -> int:
    """The seed of replica ``replica`` of an oversampled run: the run's ``seed`` for replica 0 (so that it equals
    a plain run), else one derived from (seed, replica), which starts independent random streams."""
    if replica == 0:
        return seed
    return int(np.random.SeedSequence([seed, replica]).generate_state(1)[0])


def simulate_oversampled(batch: TruthBatch, generator: Generator, card: Card, seed: int, oversample: int) -> dict:
    """All output collections of one batch, every event simulated ``oversample`` times with independent random
    streams (:func:`replica_seed`, for the generator and the jet tagging), replicas of an event next to each other,
    each with its replica index and 1/oversample of the event weight. ``oversample`` 1: :func:`simulate`."""
    if oversample == 1:
        return simulate(batch, generator, card, seed)
    replicas = []
    for replica in range(oversample):
        replica_run_seed = replica_seed(seed, replica)
        replicas.append(batch_collections(batch, generator(batch, replica_run_seed), card.objects, replica_run_seed,
                                          replica=replica, replicas=oversample))
    event_major = np.arange(len(batch) * oversample).reshape(oversample, len(batch)).T.ravel()
    return {name: ak.concatenate([replica[name] for replica in replicas])[event_major] for name in replicas[0]}


def run(card: Card, input_path: str | Path, output_path: str | Path, *, max_events: int | None = None,
        skip: int = 0, seed: int | None = None, batch_size: int | None = None, device: str | None = None,
        progress: bool = True, oversample: int = 1, report: Callable[[int], None] | None = None,
        reader_process: bool = False) -> RunResult:
    """Simulate the events of ``input_path`` with ``card`` and write a Delphes-layout ROOT file.

    ``output_path`` appears only at the end (temporary file + rename); it must not be ``input_path``.
    ``oversample`` K: every event is simulated K times (:func:`simulate_oversampled`); ``written`` counts the K
    replicas. ``report``: called after every batch with the number of input events read so far.
    ``reader_process``: read the input in a child process (:mod:`parnassus.pipeline`), so that reading overlaps
    with the generator, the objects and writing (the command line's choice; the engine's workers, one core each,
    read in their own process); the output is the same.
    """
    check_output_path(output_path, input_path)
    seed = card.sampling.seed if seed is None else seed
    batch_size = batch_size or card.sampling.batch_size
    device = device or card.sampling.device
    counts = RunCounts()
    spec = ReaderSpec(str(input_path), card.truth, batch_size, max_events=max_events, skip=skip, seed=seed,
                      history=card.objects.jet_flavor, record=card.output.truth == "full")
    with open_reader(spec, counts, process=reader_process) as reader:  # in this process: the input is opened now
        generator = make_generator(card, device)
        if isinstance(reader, ReaderProcess):
            reader.ready()  # the input opened in the reader process, or its one-line error
        start = time.perf_counter()
        with DelphesWriter(output_path) as writer, tqdm(total=max_events, unit="ev", dynamic_ncols=True,
                                                        disable=None if progress else True) as bar:
            for batch in reader:
                writer.write(simulate_oversampled(batch, generator, card, seed, oversample))
                counts.written += len(batch) * oversample
                bar.update(counts.read - bar.n)
                if report is not None:
                    report(counts.read)
            bar.update(counts.read - bar.n)
            if writer.entries == 0:  # still write a valid (empty) tree with every collection
                writer.write(simulate_oversampled(TruthBatch.empty(), generator, card, seed, oversample))
            seconds = time.perf_counter() - start
            counts.model_truncated = getattr(generator, "truncated", 0)
            counts.model_outside_acceptance = getattr(generator, "outside_acceptance", 0)
            warnings = reader.warnings + no_events_warning(counts, skip)
            writer.commit(run_metadata(card, input_path, counts, warnings, seconds,
                                       generator=card.generator.kind,
                                       checkpoint=str(card.generator.checkpoint) if card.generator.checkpoint else None,
                                       seed=seed, batch_size=batch_size, device=used_device(generator),
                                       precision=getattr(generator, "precision", None),  # the networks' (none without)
                                       oversample=oversample))
    return RunResult(counts, seconds, warnings)


def used_device(generator: Generator) -> str:
    """The device the generator actually runs on: its torch device (the neural one), else ``cpu``."""
    return str(getattr(generator, "device", "cpu"))


def no_events_warning(counts: RunCounts, skip: int) -> list[str]:
    """A warning for a run that wrote no event (an input without events, --skip past its end...), else none."""
    if counts.written:
        return []
    if counts.read:
        return [f"no events were written: all {counts.read} events read were skipped"]
    after = f" after skipping {skip}" if skip else ""
    return [f"no events were written: the input has no events{after}"]


def run_metadata(card: Card, input_path: str | Path, counts: RunCounts, warnings: list[str], seconds: float,
                 **details: object) -> dict:
    """The provenance every output file stores (versions, card, input, counts, warnings), plus ``details``."""
    import fastjet
    import pyhepmc
    import uproot

    from parnassus.builtin import card_version, model_version

    return {
        "parnassus_version": parnassus.__version__,
        "card": {"path": str(card.path), "name": card.name, "text": card.text, **card_version(card)},
        "model": model_version(card),
        "input": str(input_path),
        "counts": counts.as_dict(),
        "warnings": warnings,
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "awkward": ak.__version__, "uproot": uproot.__version__,
                     "fastjet": fastjet.__version__, "pyhepmc": pyhepmc.__version__},
        "seconds": round(seconds, 3),
        **details,
    }
