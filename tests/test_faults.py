"""Reliability of ``parnassus run``: a full disk, a bad OUTPUT and signals leave no temporary file behind."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import uproot.sink.file
from click.testing import CliRunner

from parnassus.cli import main

from .conftest import CARD, EXAMPLE, ROOT

PYTHIA_CARD = ROOT / "examples" / "ttbar_7TeV.cmnd"
PREVIOUS = b"previous output, not to be touched\n"


def invoke(*args: object):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def assert_one_line_error(result, message: str) -> None:
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught exception (a traceback)
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


@pytest.fixture
def full_disk(monkeypatch):
    """uproot's file sink fails with ENOSPC once 100 kB are written, and again when it closes (buffered data)."""
    written = {"bytes": 0}
    sink = uproot.sink.file.FileSink
    write, close, flush = sink.write, sink.close, sink.flush

    def full() -> OSError:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def failing_write(self, location, serialization):
        written["bytes"] += len(serialization)
        if written["bytes"] > 100_000:
            raise full()
        return write(self, location, serialization)

    def failing_flush(self):
        if written["bytes"] > 100_000:
            raise full()
        return flush(self)

    def failing_close(self):
        close(self)
        if written["bytes"] > 100_000:
            raise full()

    monkeypatch.setattr(sink, "write", failing_write)
    monkeypatch.setattr(sink, "flush", failing_flush)
    monkeypatch.setattr(sink, "close", failing_close)
    return written


@pytest.mark.parametrize("existing", [False, True])
def test_full_disk_is_one_line_and_leaves_no_part_file(tmp_path, full_disk, existing):
    output = tmp_path / "out.root"
    if existing:
        output.write_bytes(PREVIOUS)
    result = invoke("run", "--quiet", "--card", CARD, "--batch-size", "10", EXAMPLE, output)
    assert full_disk["bytes"] > 100_000
    assert_one_line_error(result, f"{output}: cannot write (No space left on device)")
    assert list(tmp_path.iterdir()) == ([output] if existing else [])
    if existing:
        assert output.read_bytes() == PREVIOUS


def test_unwritable_output_folder_is_one_line(tmp_path):
    result = invoke("run", "--quiet", "--card", CARD, EXAMPLE, tmp_path / "missing" / "out.root")
    assert_one_line_error(result, "cannot write (No such file or directory)")


def test_output_equal_to_input_is_refused(tmp_path):
    source = tmp_path / "in.hepmc.gz"
    source.write_bytes(EXAMPLE.read_bytes())
    link = tmp_path / "link.hepmc.gz"
    link.symlink_to(source)
    before = source.read_bytes()
    for output in (source, link, tmp_path / "." / "in.hepmc.gz"):
        result = invoke("run", "--quiet", "--card", CARD, source, output)
        assert_one_line_error(result, "is the input file")
    result = invoke("run", "--quiet", "--card", CARD, link, source)
    assert_one_line_error(result, "is the input file")
    assert source.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.hepmc.gz", "link.hepmc.gz"]


@pytest.mark.parametrize("output, message", [
    ("-", "cannot write ROOT to stdout"),
    (".", "names a directory"),
    ("folder", "names a directory"),
    ("new" + os.sep, "names a directory"),
])
def test_output_must_be_a_file_name(tmp_path, monkeypatch, output, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    result = invoke("run", "--quiet", "--card", CARD, EXAMPLE, output)
    assert_one_line_error(result, message)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["folder"]


def test_refsim_refuses_output_equal_to_input(tmp_path):
    source = tmp_path / "in.hepmc.gz"
    source.write_bytes(EXAMPLE.read_bytes())
    result = invoke("refsim", "--quiet", "--config", ROOT / "cards" / "refsim_cms2011.yaml", source, source)
    assert_one_line_error(result, "is the input file")
    assert source.read_bytes() == EXAMPLE.read_bytes()


def start_long_run(folder: Path) -> subprocess.Popen:
    """A run that lasts long: Pythia generates 100000 events on the fly."""
    return subprocess.Popen([sys.executable, "-m", "parnassus", "run", "--quiet", "--card", str(CARD),
                             str(PYTHIA_CARD), "-n", "100000", "OUT.root"], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_part_file(folder: Path, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not list(folder.glob(".OUT.root.*.part")):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no .part file appeared: {process.communicate()}")
        time.sleep(0.05)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_signal_removes_the_part_file_and_keeps_the_output(tmp_path, signum, code):
    output = tmp_path / "OUT.root"
    output.write_bytes(PREVIOUS)
    process = start_long_run(tmp_path)
    wait_for_part_file(tmp_path, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert list(tmp_path.iterdir()) == [output]
    assert output.read_bytes() == PREVIOUS


def test_early_ctrl_c_exits_130_with_one_line(tmp_path):
    process = start_long_run(tmp_path)
    time.sleep(0.5)  # after Python has started, before the card is loaded and the output opened
    assert process.poll() is None and not list(tmp_path.iterdir())
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 130, stderr
    assert "Aborted" not in stderr and "Traceback" not in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert list(tmp_path.iterdir()) == []
