"""``parnassus dataset``: reproducible production of training and test pairs with refsim.

A dataset spec (YAML, e.g. ``cards/dataset_cms2011.yaml``) names the refsim card and the samples: a Pythia
card (or HepMC3 file), a number of events and a seed each. The card's pileup pool is made first if it is
missing (as the card's pileup section says), so the parallel chunks never race to make it. Every sample
is cut into chunks of ``chunk_events``; each chunk is one ``run`` of the card, seeded with
``seed * 100000 + chunk``, written atomically to ``OUT/<sample>/<sample>_<chunk>.root``. Chunks run in
parallel on Dask (:mod:`parnassus.engine`: local worker processes, a scheduler or a batch system); a chunk whose
file exists is done, so an interrupted production resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from parnassus.card import load_card, load_yaml
from parnassus.engine import ClusterSpec
from parnassus.errors import CardError, ParnassusError

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


def produce(spec_path: str | Path, output: str | Path | None = None, workers: int = 2,
            only: list[str] | None = None, log: Callable[[str], None] = print,
            cluster: ClusterSpec | None = None) -> int:
    """Make the card's pileup pool (if missing) and every missing chunk on a Dask cluster (``cluster``; default a
    local one of ``workers`` processes); returns the number of chunks made. A chunk that fails is reported when
    the others are done, as a one-line :class:`~parnassus.errors.ParnassusError`."""
    from parnassus.engine import Job, Settings, run_jobs
    from parnassus.refsim.pileup import ensure_pool

    spec_path = Path(spec_path)
    spec = load_spec(spec_path)
    base = spec_path.parent
    card = load_card(spec.card)
    if card.generator.kind != "refsim":
        raise CardError(f"{spec.card}: generator.kind: a dataset needs a refsim card")
    pileup = card.generator.refsim.pileup
    if pileup is not None and card.generator.refsim.effects.pileup and pileup.mu > 0:
        ensure_pool(pileup)  # once, here: the workers then only read it
    output = Path(output) if output is not None else (base / spec.output).resolve()
    cluster = cluster or ClusterSpec(workers=workers)
    chunks = plan(spec, output, only)
    todo = [c for c in chunks if not c.path.exists()]
    where = cluster.scheduler or f"{cluster.workers} {'workers' if cluster.kind == 'local' else cluster.kind + ' jobs'}"
    log(f"{len(chunks)} chunks, {len(chunks) - len(todo)} already done, {len(todo)} to make with {where}")
    if not todo:
        return 0
    jobs = [Job(str(chunk.source), chunk.path, chunk.seed, max_events=chunk.events) for chunk in todo]
    result = run_jobs(card, jobs, Settings(split_events=0), cluster, progress=False, log=log, check_done=False)
    if result.failed:
        reasons = "; ".join(job.error for job in result.failed)
        raise ParnassusError(f"{len(result.failed)} of {len(todo)} chunks failed: {reasons}")
    return len(todo)
