"""The ``parnassus`` command line: parses arguments and calls the library; user errors are one line."""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

import click

from parnassus import __version__
from parnassus.errors import ParnassusError
from parnassus.io.atomic import deferred

CARD_HELP = "Detector card: a built-in card's name (see parnassus cards) or a YAML file."
# oneDNN (torch's CPU kernels) keeps up to 1024 kernels made for one shape and precision each; the learned cards'
# size groups filled ~300 MB of them in bf16 over 2000 ttbar events. 64 (set before torch is imported): 975 -> 765-800
# MB, no measured time
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")


@click.group()
@click.version_option(version=__version__, prog_name="parnassus")
def main() -> None:
    """Parnassus: learned fast detector simulation (HepMC3 in, Delphes-like ROOT out)."""


def _summary(counts, seconds: float, output_path: str, max_particles: int | None = None) -> str:
    """The end-of-run line: events read/written/skipped by reason (and truncated), events/s."""
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.skipped.items())) or "none"
    truncated = f", truncated to {max_particles} particles {counts.truncated}" if max_particles else ""
    rate = counts.written / seconds if seconds > 0 else 0.0
    return (f"events read {counts.read}, written {counts.written}, skipped {sum(counts.skipped.values())} "
            f"({skipped}){truncated}; {rate:.1f} events/s -> {output_path}")


def _seed(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """A --seed must be >= 0 (numpy's seed sequences refuse negative seeds): a one-line error otherwise."""
    if value is not None and value < 0:
        raise click.ClickException(f"--seed: must be >= 0, got {value}")
    return value


def _device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A --device that torch does not know, or that this machine does not have, is a one-line error."""
    if value is not None:
        from parnassus.generators.neural import resolve_device

        try:
            resolve_device(value, "--device")
        except ParnassusError as error:
            raise click.ClickException(str(error)) from None
    return value


def _cluster_options(workers_help: str, workers_default: int | None = None):
    """The options that say where many jobs run (``run`` with several inputs, ``dataset``)."""
    def decorate(command):
        options = [
            click.option("--workers", type=click.IntRange(min=1), default=workers_default, help=workers_help),
            click.option("--scheduler", default=None, metavar="ADDRESS",
                         help="Run on the Dask cluster of this scheduler (tcp://host:8786) instead."),
            click.option("--cluster", "cluster_kind", default=None, metavar="KIND|FILE",
                         help="local (default), slurm, htcondor (dask-jobqueue: pip install "
                              "'parnassus-fastsim[cluster]'), or a YAML file: kind, workers, options."),
        ]
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


def _cluster_spec(workers: int | None, scheduler: str | None, cluster_kind: str | None):
    """The :class:`~parnassus.engine.ClusterSpec` of the command line's options (one-line errors)."""
    from dataclasses import replace

    from parnassus.engine import ClusterSpec, cluster_config

    if scheduler is not None and cluster_kind is not None:
        raise click.UsageError("--scheduler and --cluster exclude each other")
    spec = cluster_config(cluster_kind) if cluster_kind is not None else ClusterSpec()
    return replace(spec, scheduler=scheduler, workers=workers or spec.workers)


def _simulation_options(command):
    """INPUT... OUTPUT and the options shared by ``run`` and ``refsim``."""
    options = [
        click.argument("paths", metavar="INPUT... OUTPUT", nargs=-1, required=True,
                       type=click.Path(allow_dash=True)),  # checked by run() and the engine: one-line errors
        click.option("-n", "--max-events", type=click.IntRange(min=1), default=None,
                     help="Read at most N events of each input (a .cmnd card: generate N)."),
        click.option("--skip", type=click.IntRange(min=0), default=0, help="Skip the first N events of each input."),
        click.option("--seed", type=int, default=None, callback=_seed,
                     help="Random seed, >= 0 (default: the card's sampling.seed)."),
        click.option("--device", default=None, help="cpu, cuda, ... (default: the card's sampling.device)."),
        click.option("--batch-size", type=click.IntRange(min=1), default=None,
                     help="Events per batch (default: the card's sampling.batch_size)."),
        click.option("--oversample", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Simulate every event K times with independent random streams (Event.Replica; "
                          "weights / K)."),
        click.option("--split-events", type=click.IntRange(min=0), default=None,
                     help="Several inputs: cut a HepMC3 input with more events into ranges of this many, run in "
                          "parallel (default 20000; 0: never)."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        command = option(command)
    return _cluster_options("Several inputs: worker processes on this machine (default: its cores); "
                            "with --cluster slurm/htcondor, batch jobs.")(command)


class _Signalled(KeyboardInterrupt):
    """A SIGINT, SIGTERM or SIGHUP, raised like Ctrl-C so that the output writer removes its temporary file."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[list[int]]:
    """In the block, SIGINT, SIGTERM and SIGHUP raise :class:`_Signalled` (once: the cleanup is not interrupted).

    Yields the list of signals received, so that a caller can tell a signal that library code turned into
    another error (an interrupted ``import`` can surface as ImportError). A signal the process was started
    ignoring (``nohup``, ``&``) stays ignored.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: object) -> None:
        if deferred(signum):  # raised again when the library's critical block ends
            return
        if not received:
            received.append(signum)
            raise _Signalled(signum)

    names = ("SIGINT", "SIGTERM", "SIGHUP")
    numbers = [getattr(signal, name) for name in names if hasattr(signal, name)]
    previous = {number: signal.getsignal(number) for number in numbers}
    for number, old in previous.items():
        if old is not signal.SIG_IGN:
            signal.signal(number, handler)
    try:
        yield received
    finally:
        for number, old in previous.items():
            signal.signal(number, old if old is not None else signal.SIG_DFL)


@contextlib.contextmanager
def _user_errors(interrupted: Callable[[], str] = lambda: "no output written") -> Iterator[None]:
    """Every command's block: a :class:`ParnassusError` is a one-line error (exit 1); SIGINT, SIGTERM or SIGHUP
    unwind the block (temporary files are removed on the way) and exit 128 + the signal's number with one line,
    ``interrupted: <interrupted()>``."""
    with _signals_interrupt() as received:
        try:
            yield
            return
        except ParnassusError as error:
            if not received:
                raise click.ClickException(str(error)) from None
            signum = received[0]  # a signal that library code turned into an error
        except KeyboardInterrupt as interrupt:
            signum = getattr(interrupt, "signum", signal.SIGINT)
        what = "interrupted" if signum == signal.SIGINT else f"terminated by {signal.Signals(signum).name}"
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            click.echo(f"{what}: {interrupted()}", err=True)
        sys.exit(128 + signum)


def _simulate(card_path: str, paths: tuple[str, ...], kind: str | None = None, **options) -> None:
    """``run`` and ``refsim``: one input into one file in this process, or several inputs (a glob, or cluster
    options) on the engine. One-line errors; a signal exits 128 + its number and leaves no temporary file."""
    if len(paths) < 2:
        raise click.UsageError("give INPUT and OUTPUT (or several INPUTs and an OUTPUT folder)")
    *inputs, output_path = paths
    where = {name: options.pop(name) for name in ("workers", "scheduler", "cluster_kind")}
    split_events = options.pop("split_events")
    if len(inputs) > 1 or any(value is not None for value in where.values()) or split_events is not None \
            or any(glob.has_magic(path) and not os.path.exists(path) for path in inputs):
        _simulate_many(card_path, inputs, output_path, kind, where, split_events, **options)
        return
    input_path = inputs[0]
    result = None

    def interrupted() -> str:
        return f"{output_path} was written" if result is not None else "no output written"

    with _user_errors(interrupted):
        from parnassus.run import run as run_simulation

        card = _load_simulation_card(card_path, kind)
        quiet = options.pop("quiet")
        result = run_simulation(card, input_path, output_path, progress=not quiet, reader_process=True,
                                **options)
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
        click.echo(_summary(result.counts, result.seconds, output_path, card.truth.max_particles), err=True)


def _load_simulation_card(card_path: str, kind: str | None):
    from parnassus.card import load_card
    from parnassus.errors import CardError

    card = load_card(card_path)
    if kind is not None and card.generator.kind != kind:
        raise CardError(f"{card_path}: generator.kind: expected '{kind}', got '{card.generator.kind}'")
    return card


def _simulate_many(card_path: str, inputs: list[str], output_path: str, kind: str | None, where: dict,
                   split_events: int | None, *, max_events: int | None, skip: int, seed: int | None,
                   device: str | None, batch_size: int | None, oversample: int, quiet: bool) -> None:
    """Several inputs (or a glob, or a cluster): one output per input, on the Dask engine."""
    from pathlib import Path

    with _user_errors(lambda: "finished outputs (and finished ranges of split inputs) are kept; run the command "
                              "again to resume"):
        from parnassus import engine

        card = _load_simulation_card(card_path, kind)
        spec = _cluster_spec(**where)
        expanded = engine.expand_inputs(inputs)
        seed = card.sampling.seed if seed is None else seed
        output = Path(output_path)
        if len(expanded) == 1 and not (output_path.endswith(("/", os.sep)) or output.is_dir()):
            jobs = [engine.Job(expanded[0], output, seed, skip, max_events)]  # one input into one file
        else:
            jobs = engine.folder_jobs(expanded, output, seed, skip, max_events)
        settings = engine.Settings(batch_size=batch_size, device=device, oversample=oversample,
                                   split_events=engine.SPLIT_EVENTS if split_events is None else split_events)
        result = engine.run_jobs(card, jobs, settings, spec, progress=not quiet,
                                 log=lambda line: click.echo(line, err=True))
        done_before = sum(job.done_before for job in result.jobs)
        made = [job for job in result.jobs if not job.done_before and job.error is None]
        written = sum(job.counts.written for job in made)
        totals = result.totals()
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(totals.skipped.items())) or "none"
        click.echo(f"{len(jobs)} inputs ({done_before} done before, {len(result.failed)} failed): events read "
                   f"{totals.read}, written {totals.written}, skipped {sum(totals.skipped.values())} ({skipped}), "
                   f"truncated to {card.truth.max_particles} particles {totals.truncated}; "
                   f"{written / result.seconds if result.seconds > 0 else 0.0:.1f} events/s -> {output_path}",
                   err=True)
        if result.failed:
            from parnassus.errors import ParnassusError

            reasons = "; ".join(job.error for job in result.failed)
            raise ParnassusError(f"{len(result.failed)} of {len(jobs)} inputs failed, their outputs are not "
                                 f"written: {reasons}")


@main.command()
@click.option("--card", "card_path", required=True, type=click.Path(dir_okay=False), help=CARD_HELP)
@_simulation_options
def run(card_path: str, paths: tuple[str, ...], **options) -> None:
    """Simulate the events of INPUT and write a Delphes-layout ROOT file OUTPUT.

    INPUT is a HepMC3 file ('-' for stdin) or a Pythia 8 card (.cmnd) that generates the truth events on the
    fly (needs pythia8mc and -n; seeded from --seed). Several INPUTs (files or quoted globs) and an OUTPUT folder
    run on Dask (a local cluster, --scheduler or --cluster): one OUTPUT/<input name>.root per input, the same as
    running each alone; inputs whose output exists are skipped, so a rerun resumes.
    """
    _simulate(card_path, paths, **options)


@main.command()
@click.option("--config", "card_path", required=True, type=click.Path(dir_okay=False),
              help="Reference-simulation card (generator.kind: refsim): refsim_cms2011 or a YAML file.")
@_simulation_options
def refsim(card_path: str, paths: tuple[str, ...], **options) -> None:
    """Run the reference detector simulation (refsim) on INPUT; same inputs and output layout as `run`."""
    _simulate(card_path, paths, kind="refsim", **options)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--out", "output", type=click.Path(file_okay=False), default=None,
              help="Output directory (default: the spec's output).")
@_cluster_options("Worker processes on this machine; with --cluster slurm/htcondor, batch jobs.", 2)
@click.option("--only", multiple=True, help="Make only this sample (repeatable).")
def dataset(spec: str, output: str | None, only: tuple[str, ...], **where) -> None:
    """Produce the training/test pairs of a dataset SPEC with refsim (resumable; see cards/dataset_cms2011.yaml)."""
    from parnassus.dataset import produce

    with _user_errors(lambda: "the chunks already written are kept; run the command again to resume"):
        produce(spec, output, cluster=_cluster_spec(**where), only=list(only) or None,
                log=lambda line: click.echo(line, err=True))


@main.command()
def cards() -> None:
    """List the built-in cards: name (for --card), generator kind, detector, what it emulates."""
    from parnassus.builtin import builtin_cards
    from parnassus.card import load_card

    with _user_errors():
        rows = [("card", "generator", "detector", "emulates")]
        for name, path in builtin_cards().items():
            card = load_card(path)
            rows.append((name, card.generator.kind, card.name, card.emulates or "-"))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for *aligned, emulates in rows:
        columns = [value.ljust(width) for value, width in zip(aligned, widths, strict=True)]
        click.echo("  ".join([*columns, emulates]))


@main.command()
@click.option("--card", "card_path", required=True, type=click.Path(dir_okay=False),
              help="Card with model and training sections (e.g. cards/cms2011.yaml).")
@click.option("--out", "output", type=click.Path(file_okay=False), default=None,
              help="Model folder (default: the card's generator.checkpoint).")
@click.option("--resume", is_flag=True, help="Continue from the folder's state.pt (bit-exact).")
@click.option("--device", default=None, callback=_device, help="cpu, cuda, ... (default: cuda if available).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this step (resumable).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(card_path: str, output: str | None, resume: bool, device: str | None, max_steps: int | None,
          quiet: bool) -> None:
    """Learn a detector from the paired events named in the card's training section."""
    from parnassus.card import load_card
    from parnassus.train import train as train_model

    with _user_errors(lambda: "the last checkpoint's state is kept; continue with --resume"):
        folder = train_model(load_card(card_path), output, resume=resume, device=device, progress=not quiet,
                             max_steps=max_steps)
    click.echo(f"model -> {folder}", err=True)


@main.command()
@click.option("--card", "card_path", required=True, type=click.Path(dir_okay=False),
              help="Card of the teacher, with a distillation section (e.g. cards/cms2011.yaml).")
@click.option("--resume", is_flag=True, help="Continue from the student folder's state.pt.")
@click.option("--device", default=None, callback=_device, help="cpu, cuda, ... (default: cuda if available).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this step (resumable).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def distill(card_path: str, resume: bool, device: str | None, max_steps: int | None, quiet: bool) -> None:
    """Distil the card's trained model into a few-step student (the card's distillation section)."""
    from parnassus.card import load_card
    from parnassus.distill import distill as distill_model

    with _user_errors(lambda: "the last checkpoint's state is kept; continue with --resume"):
        folder = distill_model(load_card(card_path), resume=resume, device=device, progress=not quiet,
                               max_steps=max_steps)
    click.echo(f"student -> {folder}", err=True)


@main.command("pileup-pool")
@click.argument("input_path", metavar="INPUT", type=click.Path(allow_dash=True))
@click.option("-n", "--events", "n_events", type=click.IntRange(min=1), required=True,
              help="Minimum-bias events to store.")
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False))
@click.option("--seed", type=int, default=1, help="Pythia seed (for a .cmnd INPUT).")
def pileup_pool(input_path: str, n_events: int, output_path: str, seed: int) -> None:
    """Store N minimum-bias events of INPUT (.cmnd card or HepMC3) as a refsim pileup pool (.npz).

    Missing folders of OUTPUT are made. A refsim card makes its pool itself when it is missing (its pileup
    section names the source, events and seed); this command makes one by hand.
    """
    from parnassus.refsim.pileup import make_pool

    with _user_errors():
        written = make_pool(input_path, n_events, output_path, seed, progress=True)
    click.echo(f"{written} minimum-bias events -> {output_path}", err=True)


@main.command()
@click.argument("cmnd", type=click.Path(dir_okay=False))
@click.option("-n", "--events", "n_events", type=click.IntRange(min=1), required=True, help="Events to generate.")
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False))
@click.option("--seed", type=click.IntRange(min=0), default=1, help="Pythia random seed.")
def pythia(cmnd: str, n_events: int, output_path: str, seed: int) -> None:
    """Generate N events with the Pythia card CMND into the HepMC3 file OUTPUT (.gz compresses)."""
    from parnassus.io.pythia import write_hepmc

    with _user_errors():
        written = write_hepmc(cmnd, n_events, output_path, seed=seed)
    click.echo(f"{written} events -> {output_path}", err=True)


@main.command()
@click.option("--card", "card_path", required=True, type=click.Path(dir_okay=False),
              help=f"{CARD_HELP} Its objects section builds jets, leptons, photons.")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False))
@click.option("-n", "--max-events", type=click.IntRange(min=1), default=None, help="Convert at most N events.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def convert(card_path: str, input_path: str, output_path: str, max_events: int | None, quiet: bool) -> None:
    """Convert a CMS Open Simulation Parnassus ntuple INPUT (tree evt_tree) into a Delphes-layout ROOT file OUTPUT."""
    import time

    from parnassus.card import load_card
    from parnassus.convert import convert as convert_ntuple

    start = time.perf_counter()
    with _user_errors():
        card = load_card(card_path)
        counts = convert_ntuple(card, input_path, output_path, max_events=max_events, progress=not quiet)
    click.echo(_summary(counts, time.perf_counter() - start, output_path), err=True)


@main.command()
@click.option("--target", "target_path", required=True, type=click.Path(dir_okay=False),
              help="The reference file (e.g. refsim output); the candidates are compared with it.")
@click.argument("candidates", metavar="CANDIDATE...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Report directory (index.md, metrics.json, plots/).")
@click.option("--label", "labels", multiple=True,
              help="Label of a file, once per file, target first (default: the file names).")
@click.option("-n", "--max-events", type=click.IntRange(min=2), default=None, help="Compare the first N events.")
@click.option("--replicas", type=click.IntRange(min=2), default=20, show_default=True, help="Bootstrap replicas.")
@click.option("--seed", type=int, default=1, show_default=True, callback=_seed, help="Seed of the bootstrap.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def validate(target_path: str, candidates: tuple[str, ...], out_dir: str, labels: tuple[str, ...],
             max_events: int | None, replicas: int, seed: int, quiet: bool) -> None:
    """Fidelity report: CANDIDATE files against --target, all holding the same truth events.

    Spectra and residuals w.r.t. truth at event, jet and particle level, Hungarian matching, class
    confusion, 1-Wasserstein distances with noise floor and bootstrap uncertainties: plots, metrics.json
    and index.md in --out.
    """
    from parnassus.validate import validate as make_report

    with _user_errors(lambda: f"the report in {out_dir} is incomplete"):
        results = make_report(target_path, list(candidates), out_dir, labels=list(labels) or None,
                              max_events=max_events, replicas=replicas, seed=seed, progress=not quiet)
    closest = ", ".join(f"{label} {n}" for label, n in results["summary"]["closest_count"].items())
    click.echo(f"{results['events']} events; closest to the target on {len(results['observables'])} "
               f"observables: {closest}; {results['seconds']:.1f} s -> {out_dir}/index.md", err=True)
