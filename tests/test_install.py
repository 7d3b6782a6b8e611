"""The built wheel works without the repository: cards and models are package data, cards are named.

The sdist and the wheel are built with ``python -m build`` (the wheel from the sdist) without isolation, the
wheel is installed into a fresh folder with no dependencies (those of this environment are reused) and no index,
and its ``parnassus`` command runs in a folder outside the repository: a missing package-data entry fails here.
"""

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import uproot

import parnassus
from parnassus.io.delphes import read_metadata

from .conftest import EXAMPLE, ROOT

SHIPPED = ["parnassus/cards/cms2011.yaml", "parnassus/cards/cms2011_2step.yaml",
           "parnassus/cards/cms2011_anchored.yaml", "parnassus/cards/cms2011_gaussian.yaml",
           "parnassus/cards/delphes_cms_like.yaml", "parnassus/cards/refsim_cms2011.yaml",
           "parnassus/models/cms2011-refsim/model.safetensors",
           "parnassus/models/cms2011-refsim-2step/model.safetensors",
           "parnassus/models/cms2011-refsim-anchored/model.safetensors",
           "parnassus/models/cms2011-refsim-gaussian/model.safetensors"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from the repository, installed into its own folder (the ``--target`` of pip)."""
    dist = tmp_path_factory.mktemp("dist")
    build = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (sdist,), (wheel,) = dist.glob("*.tar.gz"), dist.glob("*.whl")
    version = parnassus.__version__
    assert (sdist.name, wheel.name) == (f"parnassus_fastsim-{version}.tar.gz",
                                        f"parnassus_fastsim-{version}-py3-none-any.whl")
    with tarfile.open(sdist) as archive:
        assert {f"parnassus_fastsim-{version}/{name}" for name in SHIPPED} <= set(archive.getnames())
    with zipfile.ZipFile(wheel) as archive:
        assert set(SHIPPED) <= set(archive.namelist())
    target = tmp_path_factory.mktemp("site")
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                              "--target", str(target), str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    return target


def _outside(target: Path, tmp_path: Path, *command: str) -> subprocess.CompletedProcess:
    """Run ``command`` from a folder outside the repository with only the installed wheel on the path."""
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run(list(command), cwd=tmp_path, env=env, capture_output=True, text=True)


def test_the_wheel_runs_builtin_cards_by_name_outside_the_repository(installed, tmp_path):
    example = shutil.copy(EXAMPLE, tmp_path)
    where = _outside(installed, tmp_path, sys.executable, "-c", "import parnassus; print(parnassus.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(installed), where.stderr  # not the repository's copy
    command = str(installed / "bin" / "parnassus")
    version = _outside(installed, tmp_path, command, "--version")
    assert version.stdout.strip() == f"parnassus, version {parnassus.__version__}", version.stderr
    listing = _outside(installed, tmp_path, command, "cards")
    assert [line.split()[0] for line in listing.stdout.splitlines()[1:]] == [
        "cms2011", "cms2011_2step", "cms2011_anchored", "cms2011_gaussian", "delphes_cms_like", "refsim_cms2011"
    ], listing.stderr
    for card in ("cms2011", "cms2011_2step", "delphes_cms_like"):
        output = tmp_path / f"{card}.root"
        result = _outside(installed, tmp_path, command, "run", "--card", card, "--quiet", "-n", "5", example,
                          output.name)
        assert result.returncode == 0, result.stderr
        with uproot.open(output) as file:
            assert file["Delphes"].num_entries == 5
        meta = read_metadata(output)
        assert Path(meta["card"]["path"]).is_relative_to(installed) and meta["card"]["builtin"] == card
    model = read_metadata(tmp_path / "cms2011.root")
    assert Path(model["checkpoint"]).is_relative_to(installed.resolve()) and model["model"]["builtin"] is True
