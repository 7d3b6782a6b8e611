"""Reading in a child process (parnassus.pipeline): the same output, counts and warnings as reading in this
process; the reader's errors are one line; signals and a dead process on either side leave no process behind."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import psutil
import pytest
import uproot
import yaml
from click.testing import CliRunner

from parnassus.card import load_card
from parnassus.cli import main
from parnassus.errors import InputError, ParnassusError
from parnassus.events import RunCounts
from parnassus.io.delphes import TREE, read_metadata
from parnassus.pipeline import ReaderProcess, ReaderSpec
from parnassus.run import run

from .conftest import CARD, EXAMPLE, ROOT, default_signals

REFSIM_CARD = ROOT / "cards" / "refsim_cms2011.yaml"
PYTHIA_CARD = ROOT / "examples" / "ttbar_7TeV.cmnd"
RUN_DETAILS = ("counts", "warnings", "seed", "batch_size", "generator", "device", "oversample")


def assert_same_output(first: Path, second: Path) -> None:
    """The two files hold the same events, branch by branch, and the same counts and warnings."""
    with uproot.open(first) as a, uproot.open(second) as b:
        assert a[TREE].keys() == b[TREE].keys()
        assert a[TREE].num_entries == b[TREE].num_entries
        left, right = a[TREE].arrays(), b[TREE].arrays()
    for name in left.fields:
        assert ak.array_equal(left[name], right[name], equal_nan=True, dtype_exact=True), name
    first_metadata, second_metadata = read_metadata(first), read_metadata(second)
    assert {key: first_metadata[key] for key in RUN_DETAILS} == {key: second_metadata[key] for key in RUN_DETAILS}


@pytest.mark.parametrize("card, source, options", [
    (CARD, EXAMPLE, {"batch_size": 20}),
    (CARD, EXAMPLE, {"batch_size": 7, "skip": 5, "max_events": 30, "seed": 11, "oversample": 2}),
    (REFSIM_CARD, EXAMPLE, {"batch_size": 20, "max_events": 25}),
    (CARD, EXAMPLE, {"skip": 1000}),  # no events: an empty tree and a warning
    (CARD, PYTHIA_CARD, {"batch_size": 8, "max_events": 20, "skip": 3, "seed": 5}),  # Pythia in the child
    ("full", EXAMPLE, {"batch_size": 4, "max_events": 10}),  # output.truth full: every event's whole record
])
def test_reader_process_gives_the_same_output(tmp_path, card, source, options):
    if card == "full":
        data = yaml.safe_load(CARD.read_text())
        data["output"]["truth"] = "full"
        card = tmp_path / "full.yaml"
        card.write_text(yaml.safe_dump(data))
    card = load_card(card)
    serial = run(card, source, tmp_path / "serial.root", progress=False, **options)
    piped = run(card, source, tmp_path / "piped.root", progress=False, reader_process=True, **options)
    assert piped.counts == serial.counts and piped.warnings == serial.warnings
    assert serial.counts.written > 0 or serial.warnings
    assert_same_output(tmp_path / "serial.root", tmp_path / "piped.root")


def damaged_input(folder: Path) -> Path:
    """The example with two malformed events, one empty event and a gzip stream cut short: skips and a warning."""
    text = gzip.decompress(EXAMPLE.read_bytes()).decode()
    blocks = text.split("\nE ")
    blocks[3] = blocks[3].replace("\nP 5 ", "\nP 5x ", 1)
    blocks[8] = blocks[8].replace("\nP 7 ", "\nP 7 nan- ", 1)
    blocks[12] = blocks[12].split("\n", 1)[0].rsplit(" ", 1)[0] + " 0\n"
    data = gzip.compress("\nE ".join(blocks).encode())
    path = folder / "damaged.hepmc.gz"
    path.write_bytes(data[: int(len(data) * 0.8)])
    return path


def test_counts_and_warnings_come_back_from_the_reader_process(tmp_path):
    source = damaged_input(tmp_path)
    card = load_card(CARD)
    counts = RunCounts()
    spec = ReaderSpec(str(source), card.truth, 6, history=card.objects.jet_flavor)
    with ReaderProcess(spec, counts) as reader:
        seen = []
        for batch in reader:
            seen.append((counts.read, sum(counts.skipped.values())))
            assert counts.read >= batch.index[-1] + 1
    assert seen == sorted(seen) and len(seen) > 3
    assert sum(counts.skipped.values()) >= 3 and counts.read > 30
    assert reader.warnings and "input ends early" in reader.warnings[0]

    serial = run(card, source, tmp_path / "serial.root", batch_size=6, progress=False)
    result = CliRunner().invoke(main, ["run", "--quiet", "--card", str(CARD), "--batch-size", "6", str(source),
                                       str(tmp_path / "piped.root")])
    assert result.exit_code == 0, result.output
    assert sum(serial.counts.skipped.values()) >= 3 and serial.warnings
    counts.written = serial.counts.written  # the reader process does not write
    assert read_metadata(tmp_path / "piped.root")["counts"] == serial.counts.as_dict() == counts.as_dict()
    assert read_metadata(tmp_path / "piped.root")["warnings"] == serial.warnings == reader.warnings
    assert f"warning: {serial.warnings[0]}" in result.output
    assert_same_output(tmp_path / "serial.root", tmp_path / "piped.root")


@pytest.mark.parametrize("content, message", [
    (None, "cannot open input (No such file or directory)"),
    (b"", "input is empty"),
    (b"not an event file\n", "not a HepMC3 ASCII file"),
    (b"HepMC::Version 2.06.09\nHepMC::IO_GenEvent-START_EVENT_LISTING\nE 0\n", "HepMC2 input is not supported"),
])
def test_bad_input_is_one_line_through_the_cli(tmp_path, content, message):
    source = tmp_path / "in.hepmc"
    if content is not None:
        source.write_bytes(content)
    result = subprocess.run([sys.executable, "-m", "parnassus", "run", "--quiet", "--card", str(CARD), str(source),
                             str(tmp_path / "out.root")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {source}: {message}"), result.stderr
    assert not (tmp_path / "out.root").exists() and not list(tmp_path.glob(".out.root*"))


def test_reader_error_is_raised_again_in_the_main_process():
    spec = ReaderSpec(str(PYTHIA_CARD), load_card(CARD).truth, 10)  # a Pythia card without max_events
    with ReaderProcess(spec, RunCounts()) as reader, pytest.raises(InputError, match="needs -n/--max-events"):
        reader.ready()


def test_a_killed_reader_process_is_a_one_line_error_not_a_hang():
    counts = RunCounts()
    spec = ReaderSpec(str(PYTHIA_CARD), load_card(CARD).truth, 5, max_events=100_000)
    with ReaderProcess(spec, counts) as reader:
        batches = iter(reader)
        next(batches)
        os.kill(reader._process.pid, signal.SIGKILL)
        with pytest.raises(ParnassusError, match=r"reader process ended unexpectedly \(killed by SIGKILL\)"):
            for _ in batches:
                pass


def test_stdin_is_read_by_the_reader_process(tmp_path):
    result = subprocess.run([sys.executable, "-m", "parnassus", "run", "--quiet", "--card", str(CARD),
                             "--batch-size", "20", "-", str(tmp_path / "stdin.root")],
                            input=gzip.decompress(EXAMPLE.read_bytes()), capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    run(load_card(CARD), EXAMPLE, tmp_path / "file.root", batch_size=20, progress=False)
    assert_same_output(tmp_path / "file.root", tmp_path / "stdin.root")


def start_long_run(folder: Path, **options) -> tuple[subprocess.Popen, psutil.Process]:
    """``parnassus run`` of 100000 Pythia events (batches of 10), and its reader process once it has started."""
    process = subprocess.Popen([sys.executable, "-m", "parnassus", "run", "--quiet", "--card", str(CARD),
                                "--batch-size", "10", str(PYTHIA_CARD), "-n", "100000", "OUT.root"], cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=default_signals, **options)
    deadline = time.monotonic() + 60
    while not list(folder.glob(".OUT.root.*.part*")):  # events are being written
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"never started writing: {process.communicate()}")
        time.sleep(0.05)
    children = psutil.Process(process.pid).children()
    assert len(children) == 1 and "parnassus.pipeline" in " ".join(children[0].cmdline())
    return process, children[0]


def assert_gone(process: psutil.Process, timeout: float = 15.0) -> None:
    try:
        process.wait(timeout)
    except psutil.TimeoutExpired:
        process.kill()
        pytest.fail("the reader process outlived the main process")


@pytest.mark.parametrize("signum, to_group", [(signal.SIGTERM, False), (signal.SIGINT, True), (signal.SIGHUP, True)])
def test_a_signal_stops_both_processes_with_one_line(tmp_path, signum, to_group):
    process, reader = start_long_run(tmp_path, start_new_session=True)
    if to_group:  # as a terminal sends Ctrl-C or a hang-up: to the main process and its reader alike
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert_gone(reader)
    assert list(tmp_path.iterdir()) == []


def test_the_reader_process_exits_when_the_main_process_is_killed(tmp_path):
    process, reader = start_long_run(tmp_path)
    process.kill()
    process.communicate(timeout=30)
    assert_gone(reader)
