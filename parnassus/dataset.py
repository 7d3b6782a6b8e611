"""``parnassus dataset``: reproducible production of training and test pairs with refsim.

A dataset spec (YAML, e.g. ``cards/dataset_cms2011.yaml``) names the refsim card and the samples: a Pythia
card (or HepMC3 file), a number of events and a seed each. The card's pileup pool is made first if it is
missing (as the card's pileup section says), so the parallel chunks never race to make it. Every sample
is cut into chunks of ``chunk_events``; each chunk is one ``run`` of the card, seeded with
``seed * 100000 + chunk``, written atomically to ``OUT/<sample>/<sample>_<chunk>.root``. Chunks run in
parallel processes; a chunk whose file exists is done, so an interrupted production resumes where it stopped.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from parnassus.card import load_card, load_yaml
from parnassus.errors import CardError

SEED_STRIDE = 100_000  # chunk seeds of different samples never collide below this many chunks


@dataclass
class Sample:
    name: str
    source: Path  # Pythia .cmnd card or HepMC3 file, relative to the spec
    events: int
    seed: int


@dataclass
class DatasetSpec:
    card: Path  # the refsim card
    output: str  # directory, relative to the spec
    samples: list[Sample]
    chunk_events: int = 2000


@dataclass
class Chunk:
    sample: str
    index: int
    source: Path
    events: int
    seed: int
    path: Path


def load_spec(path: str | Path) -> DatasetSpec:
    spec, _ = load_yaml(DatasetSpec, path)
    names = [s.name for s in spec.samples]
    if len(set(names)) != len(names):
        raise CardError(f"{path}: samples: names must be unique")
    if spec.chunk_events <= 0 or any(s.events <= 0 for s in spec.samples):
        raise CardError(f"{path}: chunk_events and every sample's events must be > 0")
    return spec


def plan(spec: DatasetSpec, output: Path, only: list[str] | None = None) -> list[Chunk]:
    """Every chunk of every (selected) sample, done or not."""
    chunks = []
    for sample in spec.samples:
        if only and sample.name not in only:
            continue
        for index, start in enumerate(range(0, sample.events, spec.chunk_events)):
            chunks.append(Chunk(sample=sample.name, index=index, source=sample.source,
                                events=min(spec.chunk_events, sample.events - start),
                                seed=sample.seed * SEED_STRIDE + index,
                                path=output / sample.name / f"{sample.name}_{index:04d}.root"))
    return chunks


def _run_chunk(card_path: str, chunk: Chunk) -> tuple[Chunk, int, float]:
    from parnassus.run import run

    chunk.path.parent.mkdir(parents=True, exist_ok=True)
    result = run(load_card(card_path), chunk.source, chunk.path, max_events=chunk.events, seed=chunk.seed,
                 progress=False)
    return chunk, result.counts.written, result.seconds


def produce(spec_path: str | Path, output: str | Path | None = None, workers: int = 2,
            only: list[str] | None = None, log=print) -> int:
    """Make the card's pileup pool (if missing) and every missing chunk; returns the number of chunks made."""
    from parnassus.refsim.pileup import ensure_pool

    spec_path = Path(spec_path)
    spec = load_spec(spec_path)
    base = spec_path.parent
    card = load_card(spec.card)
    if card.generator.kind != "refsim":
        raise CardError(f"{spec.card}: generator.kind: a dataset needs a refsim card")
    pileup = card.generator.refsim.pileup
    if pileup is not None and card.generator.refsim.effects.pileup and pileup.mu > 0:
        ensure_pool(pileup)  # once, here: the worker processes then only read it
    output = Path(output) if output is not None else (base / spec.output).resolve()
    chunks = plan(spec, output, only)
    todo = [c for c in chunks if not c.path.exists()]
    log(f"{len(chunks)} chunks, {len(chunks) - len(todo)} already done, {len(todo)} to make with {workers} workers")
    start, events = time.perf_counter(), 0
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_interruptible_worker)
    try:
        futures = [pool.submit(_run_chunk, str(spec.card), chunk) for chunk in todo]
        for done, future in enumerate(as_completed(futures), 1):
            chunk, written, seconds = future.result()
            events += written
            elapsed = time.perf_counter() - start
            log(f"[{done}/{len(todo)}] {chunk.path.name}: {written} events in {seconds:.0f} s; "
                f"total {events} events, {events / elapsed:.1f} events/s")
    except BaseException:  # a failed chunk, Ctrl-C or a signal: stop the chunks in progress, which clean up
        for process in list(pool._processes.values()):  # no public API lists an executor's processes
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return len(todo)


def _stop(signum: int, frame: object) -> None:
    for name in ("SIGTERM", "SIGHUP"):  # once: the cleanup is not interrupted
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    raise SystemExit(128 + signum)


def _interruptible_worker() -> None:
    """In a worker: SIGTERM (sent by :func:`produce` when it stops) or SIGHUP unwinds the chunk in progress,
    whose writer removes its temporary file, and ends the worker quietly; SIGINT is left to the parent (Ctrl-C
    reaches the whole process group), which then stops the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), _stop)
