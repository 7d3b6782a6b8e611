"""Many inputs on Dask (parnassus.engine): equal to serial runs, resumable, atomic per file, interruptible."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import awkward as ak
import pyhepmc
import pytest
import uproot
import yaml
from click.testing import CliRunner

from parnassus.card import load_card
from parnassus.cli import main
from parnassus.engine import ClusterSpec, _ranges, cluster_config, count_events, jobqueue_cluster, output_name
from parnassus.io.delphes import read_metadata
from parnassus.run import run

from .conftest import CARD, EXAMPLE, ROOT, signalled

PYTHIA_CARD = ROOT / "examples" / "ttbar_7TeV.cmnd"


@pytest.fixture(scope="module")
def scheduler():
    """A 2-worker LocalCluster (processes, one thread each) shared by the tests of this file: its address."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[Path]:
    """Three different inputs: the example's first 30 events, its last 20, and the whole example (gzip)."""
    folder = tmp_path_factory.mktemp("inputs")
    with pyhepmc.open(EXAMPLE) as source:
        events = list(source)
    paths = [folder / "first.hepmc", folder / "last.hepmc", folder / "all.hepmc.gz"]
    for path, chosen in zip(paths[:2], (events[:30], events[30:]), strict=True):
        with pyhepmc.open(path, "w") as out:
            for event in chosen:
                out.write(event)
    paths[2].write_bytes(EXAMPLE.read_bytes())
    return paths


def invoke(*args: object):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def branches(path: Path) -> dict:
    """Every branch of the Delphes tree of ``path``, as lists."""
    tree = uproot.open(path)["Delphes"]
    return {name: ak.to_list(tree[name].array()) for name in tree.keys()}


def test_counting_ranges_and_names(inputs):
    assert [count_events(str(path)) for path in inputs] == [30, 20, 50]
    assert count_events(str(inputs[2]), skip=45) == 5 and count_events(str(inputs[2]), skip=10, max_events=7) == 7
    assert count_events(str(PYTHIA_CARD), max_events=12) == 12
    assert _ranges(0, 50, 20) == [(0, 16), (16, 33), (33, 50)] and _ranges(5, 10, 0) == [(5, 15)]
    assert output_name("a/ttbar.hepmc.gz") == "ttbar.root" and output_name("x.cmnd") == "x.root"


def test_many_files_on_two_workers_equal_the_serial_runs(tmp_path, inputs, scheduler):
    card = load_card(CARD)
    out = tmp_path / "out"
    result = invoke("run", "--card", CARD, *inputs, out, "--scheduler", scheduler, "--split-events", "20",
                    "--seed", 7, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines()[-1].startswith(
        "3 inputs (0 done before, 0 failed): events read 100, written 100, skipped 0 (none)")
    assert sorted(p.name for p in out.iterdir()) == ["all.root", "first.root", "last.root"]  # no range folder left
    for path in inputs:
        serial = tmp_path / f"serial_{path.name}.root"
        run(card, path, serial, seed=7, progress=False)
        made = out / output_name(path.name)
        assert branches(made) == branches(serial), path
        stored, expected = read_metadata(made), read_metadata(serial)
        assert stored["counts"] == expected["counts"] and stored["seed"] == 7
    assert read_metadata(out / "all.root")["ranges"] == [[0, 16], [16, 33], [33, 50]]  # split in 3, merged
    assert read_metadata(out / "first.root")["ranges"] == [[0, 15], [15, 30]]


def test_rerun_skips_finished_files_and_refuses_other_settings(tmp_path, inputs, scheduler):
    out = tmp_path / "out"
    first = invoke("run", "--card", CARD, *inputs[:2], out, "--scheduler", scheduler, "--quiet")
    assert first.exit_code == 0, first.output
    kept = out / "first.root"
    stamp = kept.stat().st_mtime_ns
    (out / "last.root").unlink()
    again = invoke("run", "--card", CARD, *inputs[:2], out, "--scheduler", scheduler, "--quiet")
    assert again.exit_code == 0, again.output
    lines = again.stderr.strip().splitlines()
    assert lines[0].startswith("[1/1] last.root: events read 20, written 20") and len(lines) == 2
    assert lines[-1].startswith("2 inputs (1 done before, 0 failed): events read 50, written 50")
    assert kept.stat().st_mtime_ns == stamp and (out / "last.root").exists()
    other = invoke("run", "--card", CARD, *inputs[:2], out, "--scheduler", scheduler, "--seed", 99)
    assert other.exit_code == 1 and "Traceback" not in other.output
    assert other.output.strip() == f"Error: {out / 'first.root'}: exists from a run with another seed; remove it " \
                                   "to make it again"


def test_a_bad_input_fails_alone_with_one_line(tmp_path, inputs, scheduler):
    bad = tmp_path / "bad.hepmc"
    bad.write_text("this is not HepMC\n")
    out = tmp_path / "out"
    result = invoke("run", "--card", CARD, bad, inputs[1], out, "--scheduler", scheduler, "--quiet")
    assert result.exit_code == 1 and "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last == (f"Error: 1 of 2 inputs failed, their outputs are not written: {bad}: not a HepMC3 ASCII file "
                    "(no 'HepMC::Asciiv3' header)")
    assert sorted(p.name for p in out.iterdir()) == ["last.root"]
    missing = invoke("run", "--card", CARD, str(tmp_path / "none*.hepmc"), out, "--scheduler", scheduler)
    assert missing.exit_code == 1 and missing.output.strip() == f"Error: {tmp_path / 'none*.hepmc'}: no file matches"


def test_oversampled_many_files_equal_oversampled_serial_runs(tmp_path, inputs, scheduler):
    out = tmp_path / "out"
    result = invoke("run", "--card", CARD, inputs[1], f"{out}/", "--scheduler", scheduler, "--oversample", 2,
                    "-n", 8, "--skip", 3, "--quiet")
    assert result.exit_code == 0, result.output
    serial = tmp_path / "serial.root"
    run(load_card(CARD), inputs[1], serial, oversample=2, max_events=8, skip=3, progress=False)
    assert branches(out / "last.root") == branches(serial)
    assert read_metadata(out / "last.root")["oversample"] == 2


def test_cluster_configuration_from_yaml(tmp_path):
    config = tmp_path / "slurm.yaml"
    config.write_text(yaml.safe_dump({"kind": "slurm", "workers": 20, "options": {
        "queue": "short", "account": "phys", "walltime": "01:00:00", "job_extra_directives": ["--constraint=cpu"],
        "scheduler_options": {"host": "127.0.0.1", "dashboard_address": ":0"}}}))
    spec = cluster_config(str(config))
    assert spec.kind == "slurm" and spec.workers == 20
    cluster = jobqueue_cluster(spec)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p short", "#SBATCH -A phys", "#SBATCH -t 01:00:00", "#SBATCH --constraint=cpu",
                 "#SBATCH --cpus-per-task=1", "--nthreads 1"):
        assert line in script, script
    config.write_text(yaml.safe_dump({"kind": "pbs"}))
    result = invoke("run", "--card", CARD, EXAMPLE, tmp_path / "out", "--cluster", config)
    assert result.exit_code == 1 and result.output.strip() == f"Error: {config}: kind: expected slurm or htcondor, " \
                                                              "got 'pbs'"
    config.write_text(yaml.safe_dump({"kind": "slurm", "option": {}}))
    assert "option: unknown key" in invoke("run", "--card", CARD, EXAMPLE, tmp_path / "o", "--cluster", config).output
    assert isinstance(ClusterSpec().options, dict)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupt_closes_the_local_cluster_and_leaves_no_temporary_file(tmp_path, signum, code):
    """Two long Pythia inputs on the command's own 2-worker LocalCluster: a signal while both are written stops
    the workers, exits 128 + n with one line and leaves no .part file; a finished input's output stays."""
    small = tmp_path / "done.hepmc.gz"
    small.write_bytes(EXAMPLE.read_bytes())
    (tmp_path / "out").mkdir()
    first = invoke("run", "--card", CARD, small, tmp_path / "out", "--workers", 1, "--quiet", "-n", 5)
    assert first.exit_code == 0, first.output
    long_inputs = [tmp_path / "a.cmnd", tmp_path / "b.cmnd"]
    for path in long_inputs:
        path.write_text(PYTHIA_CARD.read_text())

    def outputs_being_written() -> bool:
        return len(list((tmp_path / "out").glob(".*.part*"))) >= 2

    process, stderr = signalled(["run", "--quiet", "--card", str(CARD), "-n", "100000", *map(str, long_inputs),
                                 str(small), "out", "--workers", "2"], tmp_path, outputs_being_written, signum,
                                timeout=90)
    assert process.returncode == code, stderr
    what = "interrupted" if signum == signal.SIGINT else "terminated by SIGTERM"
    assert stderr.strip().splitlines() == [f"{what}: finished outputs (and finished ranges of split inputs) are "
                                           "kept; run the command again to resume"], stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["done.root"]
