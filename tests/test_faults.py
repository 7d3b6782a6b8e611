"""Reliability of ``parnassus run``: a full disk, a bad OUTPUT and signals leave no temporary file behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch
import uproot.sink.file
import yaml
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from parnassus.card import TruthCuts, load_card
from parnassus.cli import main
from parnassus.events import RunCounts
from parnassus.io.delphes import read_metadata
from parnassus.io.hepmc import HepMCReader
from parnassus.io.pythia import PythiaReader
from parnassus.pdg import CHARGED_HADRON, NEUTRAL_HADRON, charge_and_class
from parnassus.run import run

from .conftest import CARD, EXAMPLE, ROOT, SIMPLE_EVENT, default_signals, make_event, signalled, tiny_card, write_events

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
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)


def wait_for_part_file(folder: Path, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not list(folder.glob(".OUT.root.*.part*")):
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
    start = time.monotonic()  # how long Python takes to start and import the command line on this machine now
    subprocess.run([sys.executable, "-c", "import parnassus.cli"], check=True)
    startup = time.monotonic() - start
    process = start_long_run(tmp_path)
    time.sleep(2 * startup + 0.1)  # after the command line is imported, before the run has got far
    assert process.poll() is None
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 130, stderr
    assert "Aborted" not in stderr and "Traceback" not in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert list(tmp_path.iterdir()) == []


# -- reliability issue: malformed numbers, unknown PDG ids, broken checkpoints, bad seeds and devices ----------------

LEARNED_CARD = ROOT / "cards" / "cms2011.yaml"
MODEL = ROOT / "models" / "cms2011-refsim"
WIDE_OPEN = {"pt_min": 1e-9, "eta_max": 1e9, "max_particles": 1_000_000}


def read_events(path: Path, **cuts) -> tuple[list[int], RunCounts]:
    """The event numbers the HepMC reader accepts from ``path``, and its counts."""
    counts = RunCounts()
    batches = list(HepMCReader(path, TruthCuts(**cuts), 10, counts))
    return [int(n) for batch in batches for n in batch.number], counts


def corrupt_line(path: Path, event: int, prefix: str, field: int, value: str) -> Path:
    """Replace field ``field`` (0: the line's letter) of the first line of event ``event`` starting with ``prefix``."""
    lines = path.read_text().splitlines(keepends=True)
    start = lines.index(next(line for line in lines if line.startswith(f"E {event} ")))
    at = next(i for i in range(start, len(lines)) if lines[i].startswith(prefix))
    fields = lines[at].split()
    fields[field] = value
    lines[at] = " ".join(fields) + "\n"
    path.write_text("".join(lines))
    return path


@pytest.fixture
def three_events(tmp_path) -> Path:
    """Events 0 to 2; each has a vertex with a position (a V line with '@ x y z t')."""
    return write_events(tmp_path / "three.hepmc",
                        [make_event(i, SIMPLE_EVENT, vertex=(0.1, 0.2, 0.3, 0.4)) for i in range(3)])


@pytest.mark.parametrize("prefix, field, value", [
    ("P 2 ", 4, "abc"),  # px of a charged pion
    ("P 4 ", 6, "1.5e+00x"),  # pz of a photon, a letter after the number
    ("P 5 ", 3, "13O"),  # the PDG id (a letter O for a zero)
    ("V -1 ", 6, "abc"),  # the vertex's y position
    ("P 6 ", 8, ""),  # a missing field (two spaces)
])
def test_malformed_number_skips_the_event_as_malformed(three_events, prefix, field, value):
    corrupt_line(three_events, 1, prefix, field, value)
    numbers, counts = read_events(three_events)
    assert numbers == [0, 2]
    assert counts.read == 3 and dict(counts.skipped) == {"malformed event": 1}


def test_nan_and_valid_number_forms_are_not_malformed(three_events):
    corrupt_line(three_events, 0, "P 3 ", 5, "1")  # plain integer, as a hand-written file may have
    corrupt_line(three_events, 0, "P 4 ", 4, "+3.")
    corrupt_line(three_events, 0, "V -1 ", 5, ".1E-0")
    corrupt_line(three_events, 1, "P 2 ", 4, "nan")  # read, then skipped for its non-finite momentum
    numbers, counts = read_events(three_events)
    assert numbers == [0, 2]
    assert dict(counts.skipped) == {"non-finite momentum": 1}


def test_unknown_pdg_ids_are_counted_skips(three_events):
    corrupt_line(three_events, 0, "P 5 ", 3, "9999999")  # K0L → an id the PDG table does not know
    corrupt_line(three_events, 2, "P 2 ", 3, "1234567")
    numbers, counts = read_events(three_events)
    assert numbers == [1]
    assert dict(counts.skipped) == {"unknown PDG id": 2}
    charge, cls = charge_and_class(np.array([9999999, 1234567, 1000010020, 211, 130]))
    assert cls.tolist()[:2] == [-1, -1] and cls.tolist()[2:] == [CHARGED_HADRON, CHARGED_HADRON, NEUTRAL_HADRON]
    assert charge.tolist()[2:] == [1, 1, 0]


def test_final_state_ids_of_the_example_and_pythia_cards_are_known():
    """Nothing ordinary becomes an 'unknown PDG id' skip: every final-state particle in a wide-open acceptance."""
    drop = load_card(LEARNED_CARD).truth.drop_pids
    numbers, counts = read_events(EXAMPLE, drop_pids=drop, **WIDE_OPEN)
    assert len(numbers) == 50 and not counts.skipped
    for cmnd in sorted((ROOT / "examples").glob("*.cmnd")):
        counts = RunCounts()
        reader = PythiaReader(cmnd, TruthCuts(drop_pids=drop, **WIDE_OPEN), 100, counts, max_events=200, seed=5)
        pids = np.concatenate([ak.to_numpy(ak.flatten(batch.particles.pid)) for batch in reader])
        assert counts.written == 0 and counts.read == 200 and not counts.skipped, (cmnd.name, counts.skipped)
        assert np.all(charge_and_class(pids)[1] >= 0)


def learned_card_with_model(tmp_path: Path, damage) -> tuple[Path, Path]:
    """A copy of the learned card whose checkpoint is a copy of the shipped model, damaged by ``damage(weights)``."""
    folder = tmp_path / "model"
    shutil.copytree(MODEL, folder)
    weights = folder / "model.safetensors"
    damage(weights)
    card = tmp_path / "card.yaml"
    card.write_text(LEARNED_CARD.read_text().replace("checkpoint: ../models/cms2011-refsim",
                                                     f"checkpoint: {folder}"))
    return card, weights


def _truncate(weights: Path) -> None:
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _garbage(weights: Path) -> None:
    weights.write_bytes(b"\x00\x01not a safetensors file" * 100)


def _no_metadata(weights: Path) -> None:
    save_file({"x": torch.zeros(3)}, weights)


def _bad_metadata(weights: Path) -> None:
    save_file({"x": torch.zeros(3)}, weights, metadata={"parnassus": "{not json"})


def _other_architecture(weights: Path) -> None:
    tensors, metadata = load_file(weights), safe_open(weights, "pt").metadata()
    data = json.loads(metadata["parnassus"])
    data["architecture"]["dim"] = 32
    save_file(tensors, weights, metadata={"parnassus": json.dumps(data)})


def _missing_tensor(weights: Path) -> None:
    tensors, metadata = load_file(weights), safe_open(weights, "pt").metadata()
    tensors.pop(sorted(tensors)[0])
    save_file(tensors, weights, metadata=metadata)


@pytest.mark.parametrize("damage", [_truncate, _garbage, _no_metadata, _bad_metadata, _other_architecture,
                                    _missing_tensor])
def test_broken_checkpoint_is_one_line_naming_the_file(tmp_path, damage):
    card, weights = learned_card_with_model(tmp_path, damage)
    result = invoke("run", "--quiet", "--card", card, "-n", "2", EXAMPLE, tmp_path / "out.root")
    assert_one_line_error(result, str(weights))
    assert not (tmp_path / "out.root").exists()


def test_negative_seed_is_one_line(tmp_path):
    result = invoke("run", "--quiet", "--card", CARD, "--seed", "-5", "-n", "2", EXAMPLE, tmp_path / "out.root")
    assert_one_line_error(result, "--seed: must be >= 0, got -5")
    card = tmp_path / "card.yaml"
    card.write_text(CARD.read_text().replace("seed: 12345", "seed: -3"))
    result = invoke("run", "--quiet", "--card", card, "-n", "2", EXAMPLE, tmp_path / "out.root")
    assert_one_line_error(result, f"{card}: sampling.seed: must be >= 0, got -3")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["card.yaml"]


@pytest.mark.parametrize("device", ["bogus", "mps"] + ([] if torch.cuda.is_available() else ["cuda"]))
def test_unknown_or_unavailable_device_is_one_line(tmp_path, device):
    result = invoke("run", "--quiet", "--card", LEARNED_CARD, "--device", device, "-n", "2", EXAMPLE,
                    tmp_path / "out.root")
    assert_one_line_error(result, f"--device: '{device}'")
    assert not list(tmp_path.iterdir())


def test_card_device_is_checked(tmp_path):
    card = tmp_path / "card.yaml"
    card.write_text(LEARNED_CARD.read_text().replace("checkpoint: ../models/cms2011-refsim", f"checkpoint: {MODEL}")
                    .replace("device: cpu", "device: gpu"))
    result = invoke("run", "--quiet", "--card", card, "-n", "2", EXAMPLE, tmp_path / "out.root")
    assert_one_line_error(result, f"{card}: sampling.device: 'gpu' is not a device")
    result = invoke("run", "--quiet", "--card", card, "--device", "cpu", "-n", "2", EXAMPLE, tmp_path / "out.root")
    assert result.exit_code == 0, result.output


# -- silent oddities: unphysical truth, empty outputs, runaway formulas, the device actually used --------------------

def test_unphysical_truth_particles_are_counted_skips(tmp_path):
    """A 1e30 GeV particle, a negative energy and an energy below the momentum skip their event (counted);
    the other events pass."""
    path = write_events(tmp_path / "unphysical.hepmc", [make_event(i, SIMPLE_EVENT) for i in range(5)])
    corrupt_line(path, 1, "P 3 ", 4, "1e30")  # px of the negative pion, and its energy to match
    corrupt_line(path, 1, "P 3 ", 7, "1e30")
    corrupt_line(path, 2, "P 4 ", 7, "-5.0")  # the photon's energy
    corrupt_line(path, 3, "P 4 ", 7, "4.0")  # the photon (|p| = 5) with E = 4
    numbers, counts = read_events(path, **WIDE_OPEN)
    assert numbers == [0, 4]
    assert counts.read == 5 and dict(counts.skipped) == {"unphysical momentum": 3}


def test_no_events_written_is_a_warning(tmp_path):
    from parnassus.io.delphes import read_metadata
    from parnassus.run import run

    card = load_card(CARD)
    result = run(card, EXAMPLE, tmp_path / "skip.root", skip=1000, progress=False)
    assert result.counts.written == 0 and any("no events were written" in w for w in result.warnings)
    assert any("no events were written" in w for w in read_metadata(tmp_path / "skip.root")["warnings"])
    header_only = tmp_path / "header.hepmc"
    header_only.write_text("HepMC::Version 3.02.06\nHepMC::Asciiv3-START_EVENT_LISTING\n"
                           "HepMC::Asciiv3-END_EVENT_LISTING\n")
    result = invoke("run", "--quiet", "--card", CARD, header_only, tmp_path / "header.root")
    assert result.exit_code == 0, result.output
    assert "warning: no events were written" in result.output


def test_runaway_power_in_a_formula_is_a_quick_one_line_card_error(tmp_path):
    from parnassus.errors import CardError

    card = tmp_path / "card.yaml"
    text = CARD.read_text()
    for formula in ("9**9**9**9", "pt**101", "2**-(200)", "(9**99)**99"):
        card.write_text(text.replace("(abs(eta) <= 3.0) * sqrt(", f"{formula} * (abs(eta) <= 3.0) * sqrt(", 1))
        start = time.monotonic()
        with pytest.raises(CardError) as error:
            load_card(card)
        assert time.monotonic() - start < 2.0
        assert "hcal_resolution" in str(error.value) and "\n" not in str(error.value), formula
    for shipped in sorted((ROOT / "cards").glob("*.yaml")):
        if shipped.name != "dataset_cms2011.yaml":
            load_card(shipped)


def test_metadata_records_the_device_actually_used(tmp_path):
    from parnassus.io.delphes import read_metadata
    from parnassus.run import run

    run(load_card(CARD), EXAMPLE, tmp_path / "out.root", max_events=2, device="cuda", progress=False)
    assert read_metadata(tmp_path / "out.root")["device"] == "cpu"


# -- one-line errors: card model section vs checkpoint, validate on bad files, train on bad files --------------------

def test_card_model_section_disagreeing_with_checkpoint_is_a_one_line_card_error(tmp_path):
    """A card whose ``model:`` section disagrees with the checkpoint it names is refused, naming the field."""
    shipped = ROOT / "cards" / "cms2011.yaml"
    card = tmp_path / "cms2011.yaml"
    assert "  dim: 96 " in shipped.read_text()
    text = shipped.read_text().replace("  dim: 96 ", "  dim: 64 ", 1)
    card.write_text(text.replace("checkpoint: ../models/cms2011-refsim",
                                 f"checkpoint: {ROOT / 'models' / 'cms2011-refsim'}", 1))
    result = invoke("run", "--quiet", "--card", card, "-n", "2", EXAMPLE, tmp_path / "out.root")
    assert_one_line_error(result, "model.dim")
    assert "trained with 96, the card says 64" in result.output


@pytest.fixture(scope="module")
def small_delphes_output(tmp_path_factory) -> Path:
    """A valid small ``parnassus run`` output of the Delphes-like card."""
    path = tmp_path_factory.mktemp("validate") / "small.root"
    result = invoke("run", "--quiet", "--card", ROOT / "cards" / "delphes_cms_like.yaml", "-n", "20",
                    ROOT / "examples" / "ttbar_7TeV_50.hepmc.gz", path)
    assert result.exit_code == 0, result.output
    return path


def test_validate_on_a_truncated_root_file_is_a_one_line_error(tmp_path, small_delphes_output):
    truncated = tmp_path / "truncated.root"
    data = small_delphes_output.read_bytes()
    truncated.write_bytes(data[:len(data) // 2])
    result = invoke("validate", "--quiet", "--target", small_delphes_output, truncated, "--out", tmp_path / "report")
    assert_one_line_error(result, str(truncated))


def test_validate_into_a_folder_that_cannot_be_created_is_a_one_line_error(tmp_path, small_delphes_output):
    blocker = tmp_path / "somefile"
    blocker.write_text("a regular file\n")
    candidate = tmp_path / "candidate.root"
    shutil.copyfile(small_delphes_output, candidate)
    result = invoke("validate", "--quiet", "--target", small_delphes_output, candidate,
                    "--out", blocker / "report")
    assert_one_line_error(result, str(blocker / "report"))


def _training_card(tmp_path: Path, pattern: str) -> Path:
    """A copy of the shipped cms2011 card, training on ``pattern`` (relative to tmp_path)."""
    card = tmp_path / "train.yaml"
    text = (ROOT / "cards" / "cms2011.yaml").read_text()
    start, end = text.index("  files: ["), text.index("  steps: 4000")
    card.write_text(text[:start] + f"  files: [{pattern}]\n" + text[end:])
    return card


def test_train_on_a_file_that_is_not_root_is_a_one_line_error(tmp_path):
    (tmp_path / "x.root").write_text("not a ROOT file\nat all\n")
    card = _training_card(tmp_path, "x.root")
    result = invoke("train", "--quiet", "--card", card, "--max-steps", "1", "--out", tmp_path / "model")
    assert_one_line_error(result, str(tmp_path / "x.root"))


def test_train_on_a_root_file_without_the_delphes_tree_is_a_one_line_error(tmp_path):
    with uproot.recreate(tmp_path / "other.root") as file:
        file["Events"] = {"x": np.arange(3.0)}
    card = _training_card(tmp_path, "other.root")
    result = invoke("train", "--quiet", "--card", card, "--max-steps", "1", "--out", tmp_path / "model")
    assert_one_line_error(result, str(tmp_path / "other.root"))
    assert "Delphes" in result.output


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob("*.part*"))


def test_pythia_command_interrupted_leaves_no_file(tmp_path):
    process, stderr = signalled(["pythia", str(PYTHIA_CARD), "-n", "100000", "out.hepmc.gz"], tmp_path,
                                 lambda: leftovers(tmp_path))
    assert process.returncode == 143 and stderr.strip().splitlines() == ["terminated by SIGTERM: no output written"]
    assert list(tmp_path.iterdir()) == []


def test_dataset_interrupted_keeps_finished_chunks_and_no_partial_ones(tmp_path):
    data = yaml.safe_load((ROOT / "cards" / "refsim_cms2011.yaml").read_text())
    data["generator"]["refsim"]["effects"]["pileup"] = False
    (tmp_path / "refsim.yaml").write_text(yaml.safe_dump(data))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"card": "refsim.yaml", "output": "data", "chunk_events": 5, "samples": [
        {"name": "tt", "source": str(PYTHIA_CARD), "events": 1000, "seed": 1}]}))
    out = tmp_path / "data" / "tt"
    process, stderr = signalled(["dataset", str(spec), "--workers", "2"], tmp_path,
                                 lambda: len(list(out.glob("tt_*.root"))) >= 2 and leftovers(out))
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == ("terminated by SIGTERM: the chunks already written are kept; run "
                                               "the command again to resume"), stderr
    assert "Traceback" not in stderr and leftovers(tmp_path) == []
    chunks = sorted(out.glob("tt_*.root"))
    assert 2 <= len(chunks) < 200 and all(read_metadata(chunk)["counts"]["written"] == 5 for chunk in chunks)


def test_train_interrupted_keeps_the_last_checkpoint(tmp_path):
    pairs = tmp_path / "pairs.root"
    run(load_card(CARD), EXAMPLE, pairs, progress=False)
    data = yaml.safe_load(LEARNED_CARD.read_text())
    data["generator"]["checkpoint"] = "model"
    data["model"].update(dim=16, blocks=1, heads=2, event_dim=32, event_blocks=1)
    data["training"].update(files=[str(pairs)], steps=100000, batch_size=4, checkpoint_every=2,
                            validate_every=100000)
    (tmp_path / "card.yaml").write_text(yaml.safe_dump(data))
    state = tmp_path / "model" / "state.pt"
    process, stderr = signalled(["train", "--quiet", "--card", "card.yaml"], tmp_path, state.exists)
    assert process.returncode == 143 and stderr.strip().splitlines() == [
        "terminated by SIGTERM: the last checkpoint's state is kept; continue with --resume"], stderr
    assert leftovers(tmp_path) == [] and torch.load(state, weights_only=False)["step"] >= 2


@pytest.mark.parametrize("command", ["pythia", "train"])
def test_writing_into_a_folder_that_cannot_exist_is_a_one_line_error(command, tmp_path, pairs):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    if command == "pythia":
        result = invoke("pythia", ROOT / "examples" / "ttbar_7TeV.cmnd", "-n", "1", blocker / "x.hepmc")
        message = "x.hepmc: cannot write (Not a directory)"
    else:
        result = invoke("train", "--quiet", "--card", tiny_card(tmp_path, pairs), "--out", blocker / "model")
        message = "model: cannot create the folder (Not a directory)"
    assert_one_line_error(result, message)
    assert blocker.read_text() == "not a folder"


def test_distill_interrupted_keeps_the_last_checkpoint_and_resumes(tmp_path, trained):
    data = yaml.safe_load(Path(trained).read_text())
    data["sampling"].update(solver="dpmpp2m", steps=4)
    data["distillation"] = {"checkpoint": "student", "events": 32, "validation_events": 16, "steps": 100000,
                            "batch_size": 16, "checkpoint_every": 2, "validate_every": 100000}
    (tmp_path / "card.yaml").write_text(yaml.safe_dump(data))
    state = tmp_path / "student" / "state.pt"
    process, stderr = signalled(["distill", "--quiet", "--card", "card.yaml"], tmp_path, state.exists)
    assert process.returncode == 143 and stderr.strip().splitlines() == [
        "terminated by SIGTERM: the last checkpoint's state is kept; continue with --resume"], stderr
    assert leftovers(tmp_path) == []
    step = torch.load(state, weights_only=False)["step"]
    result = invoke("distill", "--quiet", "--card", tmp_path / "card.yaml", "--resume", "--max-steps", step + 2)
    assert result.exit_code == 0, result.output
    assert torch.load(state, weights_only=False)["step"] == step + 2
