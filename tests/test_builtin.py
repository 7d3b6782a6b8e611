"""Built-in cards by name, ``parnassus cards``, ``--version`` and the card and model versions in the output."""

import hashlib
import importlib.metadata
import subprocess
import sys

import pytest

import parnassus
from parnassus.builtin import builtin_cards, package_folder, resolve_card
from parnassus.card import load_card
from parnassus.errors import CardError
from parnassus.generators import make_generator
from parnassus.io.delphes import read_metadata
from parnassus.run import run

from .conftest import CARD, EXAMPLE, ROOT

BUILTIN = ["cms2011", "cms2011_2step", "cms2011_anchored", "cms2011_gaussian", "delphes_cms_like", "refsim_cms2011"]


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "parnassus", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def test_the_builtin_cards_are_the_detector_cards_of_the_package():
    cards = builtin_cards()
    assert list(cards) == BUILTIN  # not the dataset spec, which is no detector card
    for name, path in cards.items():
        assert path.parent == package_folder("cards") and path.name == f"{name}.yaml"
        assert path.read_text() == (ROOT / "cards" / path.name).read_text()  # the package's folder is the repo's
        assert load_card(path).emulates


def test_a_card_is_a_path_or_a_builtin_name(tmp_path, monkeypatch):
    shipped = package_folder("cards") / "cms2011.yaml"
    assert resolve_card("cms2011") == resolve_card("cms2011.yaml") == shipped
    assert resolve_card(CARD) == CARD
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cms2011").write_text("name: mine\n")  # an existing file wins over the built-in name
    assert resolve_card("cms2011").resolve() == tmp_path / "cms2011"
    with pytest.raises(CardError, match=r"^cards/cms2011.yaml: cannot read card \(no such file; built-in cards: "
                                        r"cms2011, cms2011_2step, cms2011_anchored, cms2011_gaussian, "
                                        r"delphes_cms_like, refsim_cms2011\)$"):
        resolve_card("cards/cms2011.yaml")  # a path is never taken for a name


def test_a_builtin_cards_checkpoint_is_the_packages_model():
    card = load_card("cms2011")
    assert card.path == package_folder("cards") / "cms2011.yaml"
    assert card.generator.checkpoint == (package_folder("models") / "cms2011-refsim").resolve()
    assert (card.generator.checkpoint / "model.safetensors").is_file()


def test_an_unknown_card_is_a_one_line_error_listing_the_builtin_cards(tmp_path):
    result = cli("run", "--card", "cms2012", EXAMPLE, tmp_path / "o.root")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("Error: cms2012: cannot read card (no such file or built-in card; built-in "
                                     "cards: cms2011, cms2011_2step, cms2011_anchored, cms2011_gaussian, "
                                     "delphes_cms_like, refsim_cms2011)")
    assert not (tmp_path / "o.root").exists()


def test_cards_lists_one_line_per_builtin_card(tmp_path):
    result = cli("cards", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.strip().splitlines()
    assert header.split()[:4] == ["card", "generator", "detector", "emulates"]
    assert [line.split()[:3] for line in lines] == [["cms2011", "neural", "cms2011-refsim"],
                                                     ["cms2011_2step", "neural", "cms2011-refsim-2step"],
                                                     ["cms2011_anchored", "neural", "cms2011-refsim-anchored"],
                                                     ["cms2011_gaussian", "neural", "cms2011-refsim-gaussian"],
                                                     ["delphes_cms_like", "parametric", "delphes-cms-like"],
                                                     ["refsim_cms2011", "refsim", "refsim-cms2011"]]
    for name, line in zip(BUILTIN, lines, strict=True):
        assert line.endswith(load_card(name).emulates)


def test_version_is_the_packages_and_the_distributions():
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"parnassus, version {parnassus.__version__}"
    assert importlib.metadata.version("parnassus-fastsim") == parnassus.__version__


def test_output_metadata_records_the_card_and_model_versions(tmp_path, example_run):
    run(load_card("cms2011"), EXAMPLE, tmp_path / "learned.root", max_events=2, progress=False)
    meta = read_metadata(tmp_path / "learned.root")
    card = load_card("cms2011")
    assert meta["parnassus_version"] == parnassus.__version__
    assert meta["card"]["builtin"] == "cms2011"
    assert meta["card"]["sha256"] == hashlib.sha256(card.text.encode()).hexdigest()
    weights = (card.generator.checkpoint / "model.safetensors").read_bytes()
    assert meta["model"] == {"name": "cms2011-refsim", "builtin": True, "sha256": hashlib.sha256(weights).hexdigest()}
    assert meta["precision"] == make_generator(card).precision  # what "auto" became on this machine

    parametric = read_metadata(example_run)  # the repository's cards/ path names the built-in card too
    assert parametric["card"]["builtin"] == "delphes_cms_like" and parametric["model"] is None
    assert parametric["precision"] is None  # no networks
    mine = tmp_path / "mine.yaml"
    mine.write_text(CARD.read_text())
    run(load_card(mine), EXAMPLE, tmp_path / "mine.root", max_events=1, progress=False)
    meta = read_metadata(tmp_path / "mine.root")
    assert meta["card"]["builtin"] is None and meta["card"]["sha256"] == parametric["card"]["sha256"]
