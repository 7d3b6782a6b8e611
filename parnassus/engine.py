"""Many inputs, one command: simulation jobs on a Dask cluster (``parnassus run`` with several inputs, ``dataset``).

A :class:`Job` is one output file: the events of one input, simulated with one seed. The engine runs jobs on
Dask — a :class:`~distributed.LocalCluster` of single-threaded worker processes by default, a running scheduler
(``scheduler``) or a batch system through dask-jobqueue (SLURM, HTCondor; :func:`cluster_config`) — with these
promises:

- every output appears whole or not at all (each is written by :func:`parnassus.run.run` or by the merge of its
  ranges, through a temporary file and a rename); a job whose output exists is done, and is skipped on a rerun
  (after checking that it was made with the same card, model, seed and oversampling);
- a HepMC3 input with more than ``split_events`` events is cut into event ranges that run in parallel, each
  written to a range file of ``.OUTPUT.ranges/`` next to the output, then merged in order into the output (the
  counts and warnings of the ranges summed); finished ranges survive an interruption and are reused;
- the output is the one of a serial :func:`~parnassus.run.run` of the same job, event by event: every event
  draws from its own random streams, fixed by the seed and its position in the input (:mod:`parnassus.streams`);
- a job whose input or output fails (a :class:`~parnassus.errors.ParnassusError` on a worker) writes nothing and
  the others go on; the failures are reported at the end;
- an interruption (Ctrl-C, a signal the command line turns into one) cancels the work, closes the cluster and
  leaves no temporary file on a cluster the engine started.
"""

from __future__ import annotations

import contextlib
import functools
import lzma
import math
import os
import shutil
import signal
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
from distributed.diagnostics.plugin import WorkerPlugin
from tqdm import tqdm

from parnassus.card import Card, load_card
from parnassus.errors import CardError, InputError, OutputError, ParnassusError
from parnassus.events import RunCounts
from parnassus.io.atomic import make_folder, temporaries

PROGRESS_TOPIC = "parnassus-progress"
SPLIT_EVENTS = 20_000  # default range size: a HepMC3 input with more events is cut into ranges of this many
_COMPRESSION = (".gz", ".bz2", ".xz")
_EVENT_START = b"\nE "  # the first characters of a HepMC3 event line


@dataclass(frozen=True)
class Job:
    """One output file: events ``skip`` … ``skip + max_events - 1`` of ``input`` simulated with ``seed``."""

    input: str
    output: Path
    seed: int
    skip: int = 0
    max_events: int | None = None


@dataclass(frozen=True)
class Settings:
    """What every job of a call shares (see :func:`parnassus.run.run`); ``split_events`` 0 never splits."""

    batch_size: int | None = None
    device: str | None = None
    oversample: int = 1
    split_events: int = SPLIT_EVENTS


@dataclass
class JobResult:
    job: Job
    counts: RunCounts = field(default_factory=RunCounts)
    seconds: float = 0.0  # the simulation's, summed over its ranges
    warnings: list[str] = field(default_factory=list)
    done_before: bool = False  # the output existed: skipped
    error: str | None = None  # why the job failed (its output is not written)


@dataclass
class EngineResult:
    jobs: list[JobResult]
    seconds: float  # wall time of the whole call

    @property
    def failed(self) -> list[JobResult]:
        return [result for result in self.jobs if result.error is not None]

    def totals(self) -> RunCounts:
        """The counts of every job that finished (this time or before), summed."""
        total = RunCounts()
        for result in self.jobs:
            if result.error is None:
                _add(total, result.counts)
        return total


@dataclass(frozen=True)
class ClusterSpec:
    """Where the jobs run: ``scheduler`` (an address) if given, else a cluster the engine starts: ``kind`` local
    (processes on this machine), slurm or htcondor (dask-jobqueue; ``options`` its keyword arguments) with
    ``workers`` single-threaded workers (default: local, this machine's cores)."""

    kind: str = "local"
    workers: int | None = None
    scheduler: str | None = None
    options: dict = field(default_factory=dict)
    source: str = "--cluster"  # where the settings came from, for error messages


# -- what runs on the workers ----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _card(path: str, text: str) -> Card:
    """The card at ``path`` (loaded once per worker process), checked to be the text the client read."""
    card = load_card(path)
    if card.text != text:
        raise CardError(f"{path}: the card changed while the jobs were running")
    return card


def count_events(path: str, skip: int = 0, max_events: int | None = None) -> int:
    """How many events a run of ``path`` with ``skip`` and ``max_events`` reads (a HepMC3 input is scanned once;
    a Pythia card generates ``max_events``). A file that is not HepMC3 is a one-line :class:`InputError`."""
    if path.endswith(".cmnd"):
        if max_events is None:
            raise InputError(f"{path}: a Pythia card as input needs -n (the number of events to generate)")
        return max_events
    from parnassus.card import TruthCuts
    from parnassus.io.hepmc import HepMCReader, open_stream

    HepMCReader(path, TruthCuts(), 1, RunCounts()).close()  # checks the header: a one-line error if it is wrong
    limit = math.inf if max_events is None else skip + max_events
    events, tail = 0, b""
    with open_stream(path) as stream:
        while events < limit:
            try:
                chunk = stream.read(1 << 22)
            except (EOFError, OSError, zlib.error, lzma.LZMAError):  # a compressed stream that ends early: the run
                break  # warns
            if not chunk:
                break
            data = tail + chunk
            events += data.count(_EVENT_START)
            tail = data[-(len(_EVENT_START) - 1):]
    return int(max(0, min(events, limit) - skip))


def _simulate(card_path: str, card_text: str, job: Job, output: Path, skip: int, max_events: int | None,
              settings: Settings, key: str):
    """Run one job or one range of it into ``output``; report progress to the client under ``key``."""
    from distributed import get_worker

    from parnassus.run import run

    worker = get_worker()
    make_folder(output.parent)
    return run(_card(card_path, card_text), job.input, output, max_events=max_events, skip=skip, seed=job.seed,
               batch_size=settings.batch_size, device=settings.device, progress=False,
               oversample=settings.oversample, report=lambda read: worker.log_event(PROGRESS_TOPIC, (key, read)))


def _merge(job: Job, parts: list[Path], ranges: list[tuple[int, int]], *finished: object):
    """Write the range files ``parts`` (in order) into the job's output, with their counts and warnings summed,
    and remove them. ``finished``: the range tasks' results (Dask runs the merge after them)."""
    import uproot

    from parnassus.io.delphes import TREE, DelphesWriter, read_metadata
    from parnassus.run import RunResult, no_events_warning

    counts, warnings, seconds = RunCounts(), [], 0.0
    with DelphesWriter(job.output) as writer:
        for part in parts:
            metadata = read_metadata(part)
            _add(counts, _counts(metadata["counts"]))
            seconds += metadata["seconds"]
            warnings += [w for w in metadata["warnings"] if w not in warnings and not w.startswith("no events")]
            with uproot.open(part) as file:
                for arrays in file[TREE].iterate(step_size=writer.flush_events):
                    writer.write(_collections(arrays))
        if writer.entries == 0:  # still a valid (empty) tree with every collection, as run() writes
            with uproot.open(parts[0]) as file:
                writer.write(_collections(file[TREE].arrays(entry_stop=0)))
        warnings += no_events_warning(counts, job.skip)
        writer.commit({**metadata, "counts": counts.as_dict(), "warnings": warnings, "seconds": round(seconds, 3),
                       "ranges": [list(r) for r in ranges]})
    shutil.rmtree(parts[0].parent, ignore_errors=True)
    return RunResult(counts, seconds, warnings)


def _collections(arrays: ak.Array) -> dict[str, ak.Array]:
    """The collections of a chunk of a Delphes-layout tree read back with uproot (``X.Leaf`` → ``X``)."""
    leaves: dict[str, dict] = {}
    for name in arrays.fields:
        if "." in name:
            collection, leaf = name.split(".", 1)
            leaves.setdefault(collection, {})[leaf] = arrays[name]
    return {collection: ak.zip(columns) for collection, columns in leaves.items()}


class _LocalWorker(WorkerPlugin):
    """A worker plugin for the local cluster. Its processes ignore SIGINT, which a terminal's Ctrl-C sends to the
    whole process group: the command stops them itself, in order (:func:`run_jobs`). tqdm's bars (disabled in
    tasks) lock with a thread lock instead of a multiprocessing one, whose semaphore a worker stopped by the
    command would leave to the resource tracker, which warns about it."""

    name = "parnassus-local-worker"

    def setup(self, worker) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        tqdm.set_lock(threading.RLock())


# -- the client side -------------------------------------------------------------------------------------------------

def output_name(input_path: str) -> str:
    """The output file name of an input: its name without compression and format suffixes, plus ``.root``."""
    name = Path(input_path).name
    for suffix in _COMPRESSION:
        name = name.removesuffix(suffix)
    for suffix in (".hepmc3", ".hepmc", ".cmnd"):
        name = name.removesuffix(suffix)
    return f"{name}.root"


def expand_inputs(patterns: list[str]) -> list[str]:
    """The input files named by paths and glob patterns, in order, each once; a pattern that matches nothing
    is a one-line :class:`InputError`."""
    import glob

    inputs: list[str] = []
    for pattern in patterns:
        if pattern == "-":
            raise InputError("INPUT '-': several inputs or an output folder need files, not stdin")
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise InputError(f"{pattern}: no file matches")
        inputs += [match for match in matches if match not in inputs]
    return inputs


def folder_jobs(inputs: list[str], folder: Path, seed: int, skip: int = 0, max_events: int | None = None
                ) -> list[Job]:
    """One job per input, writing ``folder/<input name>.root``; two inputs with one output name are an error."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: is a file; give a folder for the outputs of several inputs")
    jobs, seen = [], {}
    for path in inputs:
        output = folder / output_name(path)
        if output in seen:
            raise OutputError(f"{path} and {seen[output]} would both write {output}; rename one")
        seen[output] = path
        jobs.append(Job(path, output, seed, skip, max_events))
    return jobs


def cluster_config(value: str) -> ClusterSpec:
    """``--cluster``: ``local``, ``slurm``, ``htcondor`` or a YAML file with ``kind`` (slurm or htcondor),
    ``workers`` (batch jobs) and ``options`` (the keyword arguments of dask-jobqueue's ``SLURMCluster`` /
    ``HTCondorCluster``: queue, account, memory, walltime, job_extra_directives, ...)."""
    import yaml

    if value in ("local", "slurm", "htcondor"):
        return ClusterSpec(kind=value, source=f"--cluster {value}")
    try:
        config = yaml.safe_load(Path(value).read_text())
    except OSError as error:
        raise CardError(f"--cluster {value}: neither local, slurm, htcondor nor a readable YAML file "
                        f"({error.strerror})") from None
    except yaml.YAMLError:
        raise CardError(f"{value}: not valid YAML") from None
    if not isinstance(config, dict):
        raise CardError(f"{value}: expected a mapping with kind, workers and options")
    if unknown := sorted(set(config) - {"kind", "workers", "options"}):
        raise CardError(f"{value}: {unknown[0]}: unknown key (allowed: kind, workers, options)")
    if config.get("kind") not in ("slurm", "htcondor"):
        raise CardError(f"{value}: kind: expected slurm or htcondor, got '{config.get('kind')}'")
    workers, options = config.get("workers"), config.get("options") or {}
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise CardError(f"{value}: workers: expected an integer >= 1, got {workers!r}")
    if not isinstance(options, dict):
        raise CardError(f"{value}: options: expected a mapping of dask-jobqueue keyword arguments")
    return ClusterSpec(kind=config["kind"], workers=workers, options=options, source=value)


def default_workers() -> int:
    """The cores this process may use (its CPU affinity where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def start_cluster(spec: ClusterSpec):
    """A new cluster as ``spec`` says (not for ``spec.scheduler``): a LocalCluster of single-threaded worker
    processes, or a dask-jobqueue cluster scaled to ``spec.workers`` jobs (1 without)."""
    import logging

    if spec.kind == "local":
        from distributed import LocalCluster

        return LocalCluster(n_workers=spec.workers or default_workers(), threads_per_worker=1, processes=True,
                            dashboard_address=":0", silence_logs=logging.CRITICAL)
    cluster = jobqueue_cluster(spec)
    cluster.scale(jobs=spec.workers or 1)
    return cluster


def jobqueue_cluster(spec: ClusterSpec):
    """The dask-jobqueue cluster of ``spec`` (SLURM or HTCondor), no job submitted yet: single-threaded workers,
    one per job, 4 GB each, unless ``spec.options`` (the class's keyword arguments) say otherwise."""
    try:
        import dask_jobqueue
    except ImportError:
        raise CardError(f"{spec.source}: {spec.kind} clusters need dask-jobqueue: "
                        "pip install 'parnassus-fastsim[cluster]'") from None
    cluster_class = {"slurm": dask_jobqueue.SLURMCluster, "htcondor": dask_jobqueue.HTCondorCluster}[spec.kind]
    defaults = {"cores": 1, "processes": 1, "memory": "4GB"} | ({"disk": "4GB"} if spec.kind == "htcondor" else {})
    try:
        return cluster_class(**(defaults | spec.options))
    except (TypeError, ValueError) as error:
        raise CardError(f"{spec.source}: options: {error}") from None


@contextlib.contextmanager
def connect(spec: ClusterSpec) -> Iterator[tuple[object, bool]]:
    """(a Dask client, whether the engine owns the cluster) for the block; a cluster it started is closed after."""
    from distributed import Client

    if spec.scheduler is not None:
        try:
            client = Client(spec.scheduler, timeout="20s")
        except OSError as error:
            raise ParnassusError(f"--scheduler {spec.scheduler}: cannot connect ({error})") from None
        with client:
            yield client, False
        return
    cluster = start_cluster(spec)
    try:
        with Client(cluster) as client:
            if spec.kind == "local":
                client.register_plugin(_LocalWorker())
            yield client, True
    finally:
        cluster.close()


def _ranges(skip: int, events: int, split: int) -> list[tuple[int, int]]:
    """Event ranges [start, stop) covering ``events`` events after ``skip``, of at most ``split`` events each."""
    if not split or events <= split:
        return [(skip, skip + events)]
    parts = math.ceil(events / split)
    bounds = [skip + events * k // parts for k in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def range_folder(output: Path) -> Path:
    """Where the range files of a split job are kept until they are merged (hidden, next to the output)."""
    return output.parent / f".{output.name}.ranges"


def _counts(stored: dict) -> RunCounts:
    fields = ("read", "written", "truncated", "model_truncated", "model_outside_acceptance")
    return RunCounts(**{name: stored.get(name, 0) for name in fields}, skipped=Counter(stored.get("skipped", {})))


def _add(total: RunCounts, counts: RunCounts) -> None:
    for name in ("read", "written", "truncated", "model_truncated", "model_outside_acceptance"):
        setattr(total, name, getattr(total, name) + getattr(counts, name))
    total.skipped.update(counts.skipped)


class _Identity:
    """What must agree for an existing output (or range file) to count as done: card text, model, seed,
    oversampling."""

    def __init__(self, card: Card, settings: Settings):
        from parnassus.builtin import model_version

        self.card_text, self.model, self.oversample = card.text, model_version(card), settings.oversample

    def differs(self, path: Path, seed: int) -> str | None:
        """What differs from the run that made ``path`` (None: nothing); a file that is not parnassus output is
        a one-line :class:`OutputError`."""
        from parnassus.io.delphes import read_metadata

        try:
            metadata = read_metadata(path)
        except Exception:  # noqa: BLE001 (uproot raises many kinds for files that are not ours)
            raise OutputError(f"{path}: exists and is not a parnassus output; remove it or choose another "
                              "output folder") from None
        stored = {"card": metadata.get("card", {}).get("text"), "model": metadata.get("model"),
                  "seed": metadata.get("seed"), "oversampling": metadata.get("oversample", 1)}
        wanted = {"card": self.card_text, "model": self.model, "seed": seed, "oversampling": self.oversample}
        different = [name for name in wanted if stored[name] != wanted[name]]
        return ", ".join(different) or None


def run_jobs(card: Card, jobs: list[Job], settings: Settings = Settings(), cluster: ClusterSpec = ClusterSpec(),
             progress: bool = True, log: Callable[[str], None] = print, check_done: bool = True) -> EngineResult:
    """Run ``jobs`` on ``cluster``; outputs that exist are skipped (``check_done``: after checking they were made
    with the same card, model, seed and oversampling; a difference is a one-line :class:`OutputError`)."""
    from parnassus.io.delphes import read_metadata

    start = time.perf_counter()
    identity = _Identity(card, settings)
    results = {job.output: JobResult(job) for job in jobs}
    todo = []
    for job in jobs:
        if not job.output.exists():
            todo.append(job)
            continue
        if check_done and (what := identity.differs(job.output, job.seed)):
            raise OutputError(f"{job.output}: exists from a run with another {what}; remove it to make it again")
        metadata = read_metadata(job.output) if check_done else None
        result = results[job.output]
        result.done_before = True
        if metadata is not None:
            result.counts, result.warnings = _counts(metadata["counts"]), metadata["warnings"]
    if todo:
        with connect(cluster) as (client, owned):
            _Run(client, owned, card, identity, settings, progress, log).run(todo, results)
    return EngineResult(list(results.values()), time.perf_counter() - start)


class _Run:
    """One call's work on one client: count, plan, simulate, merge, and the progress bar."""

    def __init__(self, client, owned: bool, card: Card, identity: _Identity, settings: Settings, progress: bool,
                 log: Callable[[str], None]):
        self.client, self.owned, self.card, self.identity = client, owned, card, identity
        self.settings, self.log = settings, log
        self.bar = tqdm(total=0, unit="ev", disable=None if progress else True, dynamic_ncols=True, file=sys.stderr)
        self.lock = threading.Lock()
        self.read: dict[str, int] = {}  # events read so far by each running task
        self.writing: dict[object, list[Path]] = {}  # future → the files it may be writing
        self.finished = 0

    def _progress(self, event: tuple[float, tuple[str, int]]) -> None:
        key, read = event[1]
        with self.lock:
            if key in self.read:
                delta = read - self.read[key]
                self.read[key] = read
                self.bar.update(max(delta, 0))

    def _done(self, key: str, events: int) -> None:
        with self.lock:
            self.bar.update(max(events - self.read.pop(key, 0), 0))

    def run(self, jobs: list[Job], results: dict[Path, JobResult]) -> None:
        from distributed import as_completed

        for job in jobs:
            make_folder(job.output.parent)
        self.client.subscribe_topic(PROGRESS_TOPIC, self._progress)
        counting = {self.client.submit(count_events, job.input, job.skip, job.max_events, pure=False): job
                    for job in jobs}
        finals: dict[object, tuple[Job, list[str], int]] = {}
        pending = as_completed(list(counting))
        try:
            for future in pending:
                job = counting.get(future) or finals[future][0]
                error = self._error(future, job)
                if error is not None:
                    results[job.output].error = error
                    self._log(f"failed: {error}")
                    if future in finals:
                        for key in finals[future][1]:
                            self._done(key, 0)
                elif future in counting:
                    final, keys, events = self._submit(job, future.result())
                    finals[final] = (job, keys, events)
                    self.writing[final] = [job.output]
                    pending.add(final)
                else:
                    self._finished(job, future.result(), finals[future][1], results, len(jobs))
                self.writing.pop(future, None)
        except BaseException:  # a bug, Ctrl-C or a signal: stop the work in progress and clean up after it
            self._stop([*counting, *finals, *self.writing])
            raise
        finally:
            self.bar.close()
            with contextlib.suppress(Exception):
                self.client.unsubscribe_topic(PROGRESS_TOPIC)

    def _error(self, future, job: Job) -> str | None:
        """Why a task failed: the one-line message of an input or output error, or of a worker that died; other
        exceptions (bugs) are raised."""
        from distributed import KilledWorker

        if future.status != "error":
            return None
        error = future.exception()
        if isinstance(error, ParnassusError):
            return str(error)
        if isinstance(error, KilledWorker):
            return f"{job.input}: the worker simulating it died (out of memory?)"
        raise error

    def _submit(self, job: Job, events: int):
        """Submit the simulation of ``job`` (ranges and their merge, or one run); (the future of its output, the
        progress keys, the events it reads)."""
        ranges = _ranges(job.skip, events, 0 if job.input.endswith(".cmnd") else self.settings.split_events)
        with self.lock:
            self.bar.total += events
            self.bar.refresh()
        card = (str(self.card.path), self.card.text)
        if len(ranges) == 1:
            key = str(job.output)
            self.read[key] = 0
            return (self.client.submit(_simulate, *card, job, job.output, job.skip, job.max_events, self.settings,
                                       key, pure=False), [key], events)
        folder = range_folder(job.output)
        parts, tasks, keys = [], [], []
        for first, stop in ranges:
            part = folder / f"{first:012d}-{stop:012d}.root"
            parts.append(part)
            if part.exists() and not self.identity.differs(part, job.seed):
                with self.lock:
                    self.bar.update(stop - first)  # made by an earlier, interrupted call
                continue
            key = str(part)
            self.read[key] = 0
            keys.append(key)
            task = self.client.submit(_simulate, *card, job, part, first, stop - first, self.settings, key,
                                      pure=False)
            self.writing[task] = [part]
            tasks.append(task)
        return self.client.submit(_merge, job, parts, ranges, *tasks, pure=False), keys, events

    def _finished(self, job: Job, outcome, keys: list[str], results: dict[Path, JobResult], total: int) -> None:
        for key in keys:
            self._done(key, 0)
        with self.lock:  # the bar reaches the job's events whatever progress reports arrived
            self.bar.refresh()
        result = results[job.output]
        result.counts, result.seconds, result.warnings = outcome.counts, outcome.seconds, outcome.warnings
        self.finished += 1
        counts = outcome.counts
        skipped = sum(counts.skipped.values())
        self._log(f"[{self.finished}/{total}] {job.output.name}: events read {counts.read}, written "
                  f"{counts.written}, skipped {skipped}; {outcome.seconds:.1f} s")
        for warning in outcome.warnings:
            self._log(f"warning: {warning}")

    def _log(self, line: str) -> None:
        with self.lock, self.bar.external_write_mode(file=sys.stderr):
            self.log(line)

    def _stop(self, futures: list) -> None:
        """Cancel every task; on a cluster the engine started, close it and remove what its tasks were writing."""
        with contextlib.suppress(Exception):
            self.client.cancel(futures, force=True)
        if not self.owned:
            return
        with contextlib.suppress(Exception):
            cluster = self.client.cluster
            self.client.close()
            if cluster is not None:
                cluster.close()
        for paths in self.writing.values():
            for path in paths:
                for temporary in temporaries(path):
                    temporary.unlink(missing_ok=True)
