"""The ``parnassus`` command line: parses arguments and calls the library; user errors are one line."""

from __future__ import annotations

import sys

import click

from parnassus.errors import ParnassusError


@click.group()
@click.version_option(package_name="parnassus")
def main() -> None:
    """Parnassus: learned fast detector simulation (HepMC3 in, Delphes-like ROOT out)."""


@main.command()
@click.option("--card", "card_path", required=True, type=click.Path(dir_okay=False),
              help="Detector card (YAML).")
@click.argument("input_path", metavar="INPUT", type=click.Path(allow_dash=True))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False))
@click.option("-n", "--max-events", type=click.IntRange(min=1), default=None,
              help="Read at most N events (a .cmnd card: generate N).")
@click.option("--skip", type=click.IntRange(min=0), default=0, help="Skip the first N input events.")
@click.option("--seed", type=int, default=None, help="Random seed (default: the card's sampling.seed).")
@click.option("--device", default=None, help="cpu, cuda, ... (default: the card's sampling.device).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Events per batch (default: the card's sampling.batch_size).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(card_path: str, input_path: str, output_path: str, max_events: int | None, skip: int,
        seed: int | None, device: str | None, batch_size: int | None, quiet: bool) -> None:
    """Simulate the events of INPUT and write a Delphes-layout ROOT file OUTPUT.

    INPUT is a HepMC3 file ('-' for stdin) or a Pythia 8 card (.cmnd) that generates the truth events on the
    fly (needs pythia8mc and -n; seeded from --seed).
    """
    from parnassus.card import load_card
    from parnassus.run import run as run_simulation

    try:
        card = load_card(card_path)
        result = run_simulation(card, input_path, output_path, max_events=max_events, skip=skip, seed=seed,
                                batch_size=batch_size, device=device, progress=not quiet)
    except ParnassusError as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        click.echo("interrupted: no output written", err=True)
        sys.exit(130)
    counts = result.counts
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.skipped.items())) or "none"
    click.echo(f"events read {counts.read}, written {counts.written}, skipped {sum(counts.skipped.values())} "
               f"({skipped}), truncated to {card.truth.max_particles} particles {counts.truncated}; "
               f"{result.events_per_second:.1f} events/s -> {output_path}", err=True)


@main.command()
@click.argument("cmnd", type=click.Path(dir_okay=False))
@click.option("-n", "--events", "n_events", type=click.IntRange(min=1), required=True, help="Events to generate.")
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False))
@click.option("--seed", type=click.IntRange(min=0), default=1, help="Pythia random seed.")
def pythia(cmnd: str, n_events: int, output_path: str, seed: int) -> None:
    """Generate N events with the Pythia card CMND into the HepMC3 file OUTPUT (.gz compresses)."""
    from parnassus.io.pythia import write_hepmc

    try:
        written = write_hepmc(cmnd, n_events, output_path, seed=seed)
    except ParnassusError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{written} events -> {output_path}", err=True)


@main.command()
@click.option("--card", "card_path", required=True, type=click.Path(dir_okay=False),
              help="Detector card (YAML); its objects section builds jets, leptons, photons.")
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
    try:
        card = load_card(card_path)
        counts = convert_ntuple(card, input_path, output_path, max_events=max_events, progress=not quiet)
    except ParnassusError as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        click.echo("interrupted: no output written", err=True)
        sys.exit(130)
    seconds = time.perf_counter() - start
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.skipped.items())) or "none"
    click.echo(f"events read {counts.read}, written {counts.written}, skipped {sum(counts.skipped.values())} "
               f"({skipped}); {counts.written / seconds if seconds > 0 else 0.0:.1f} events/s -> {output_path}",
               err=True)
