"""Shared fixtures: the shipped card and example, a small HepMC3 event builder, one cached example run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pyhepmc
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "cards" / "delphes_cms_like.yaml"
EXAMPLE = ROOT / "examples" / "ttbar_7TeV_50.hepmc.gz"

# (pid, px, py, pz) of a small hand-made event, GeV
SIMPLE_EVENT = [(211, 10.0, 0.0, 5.0), (-211, 0.0, -8.0, 1.0), (22, 3.0, 4.0, 0.0), (130, -6.0, 0.0, -2.0),
                (11, 0.0, 20.0, 3.0), (13, -15.0, -15.0, 10.0), (12, 5.0, 5.0, 5.0), (2212, 0.1, 0.1, 2.0)]


def make_event(number: int, particles: list[tuple], vertex=(0.0, 0.0, 0.0, 0.0), momentum_unit="GEV",
               length_unit="MM", status: int = 1) -> pyhepmc.GenEvent:
    """A HepMC3 event: one beam proton decaying at ``vertex`` into ``particles`` (pid, px, py, pz)."""
    from particle import Particle

    scale = 1000.0 if momentum_unit == "MEV" else 1.0
    event = pyhepmc.GenEvent(getattr(pyhepmc.Units, momentum_unit), getattr(pyhepmc.Units, length_unit))
    event.event_number = number
    beam = pyhepmc.GenParticle(pyhepmc.FourVector(0, 0, 3500 * scale, 3500 * scale), 2212, 4)
    decay = pyhepmc.GenVertex(pyhepmc.FourVector(*vertex))
    decay.add_particle_in(beam)
    for pid, px, py, pz in particles:
        mass = (Particle.from_pdgid(pid).mass or 0.0) / 1000.0
        energy = (px**2 + py**2 + pz**2 + mass**2) ** 0.5
        out = pyhepmc.GenParticle(pyhepmc.FourVector(px * scale, py * scale, pz * scale, energy * scale), pid,
                                  status)
        decay.add_particle_out(out)
    event.add_vertex(decay)
    event.weights = [1.0]
    return event


def write_events(path: Path, events: list[pyhepmc.GenEvent]) -> Path:
    run_info = pyhepmc.GenRunInfo()
    run_info.weight_names = ["Default"]
    with pyhepmc.open(path, "w") as out:
        for event in events:
            event.run_info = run_info
            out.write(event)
    return path


@pytest.fixture
def simple_file(tmp_path: Path) -> Path:
    return write_events(tmp_path / "simple.hepmc", [make_event(i, SIMPLE_EVENT) for i in range(3)])


@pytest.fixture(scope="session")
def example_run(tmp_path_factory) -> Path:
    """The example sample run once through the delphes-like card (batch 20, so several batches)."""
    from parnassus.card import load_card
    from parnassus.run import run

    output = tmp_path_factory.mktemp("run") / "example.root"
    run(load_card(CARD), EXAMPLE, output, batch_size=20, progress=False)
    return output


@pytest.fixture(scope="session")
def pairs(tmp_path_factory) -> Path:
    """200 paired events (parametric generator on Pythia ttbar) as training data."""
    from parnassus.card import load_card
    from parnassus.run import run

    path = tmp_path_factory.mktemp("pairs") / "pairs.root"
    run(load_card(ROOT / "cards" / "delphes_cms_like.yaml"), ROOT / "examples" / "ttbar_7TeV.cmnd", path,
        max_events=200, seed=3, progress=False)
    return path


def tiny_card(folder: Path, pairs: Path, **training) -> Path:
    """A card for a tiny model trained on ``pairs`` in ``folder`` (it trains in seconds on a CPU)."""
    data = yaml.safe_load((ROOT / "cards" / "cms2011.yaml").read_text())
    data["generator"]["checkpoint"] = str(folder / "model")
    data.pop("distillation", None)
    data["model"].update(dim=16, blocks=1, heads=2, event_dim=32, event_blocks=1)
    data["training"].update({"files": [str(pairs)], "steps": 80, "batch_size": 16, "warmup_steps": 5,
                             "checkpoint_every": 20, "validate_every": 20, "learning_rate": 3e-3,
                             "validation_fraction": 0.1, "ema_decay": 0.9, **training})
    data["sampling"].update(batch_size=8, steps=3)
    path = folder / "card.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="session")
def trained(tmp_path_factory, pairs) -> Path:
    folder = tmp_path_factory.mktemp("trained")
    card = tiny_card(folder, pairs)
    from parnassus.card import load_card
    from parnassus.train import train

    train(load_card(card), progress=False)
    return card


def default_signals() -> None:
    """In the child: default signal dispositions, whatever the test runner inherited (a shell's background job
    starts with SIGINT ignored, and an ignored signal stays ignored by design)."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


def signalled(command: list[str], folder: Path, ready, signum: int = signal.SIGTERM, timeout: float = 60.0
               ) -> tuple[subprocess.Popen, str]:
    """Start ``parnassus COMMAND`` in ``folder``, wait until ``ready()`` holds, send ``signum``; (process, stderr)."""
    process = subprocess.Popen([sys.executable, "-m", "parnassus", *command], cwd=folder, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"never ready: {process.communicate()}")
        time.sleep(0.05)
    process.send_signal(signum)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"still running 60 s after the signal: {process.communicate()}")
    return process, stderr
