"""refsim on a fresh clone: the card's pileup pool is made on first use; `pileup-pool` makes its folders."""

import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from parnassus.cli import main
from parnassus.refsim.pileup import PileupPool

from .conftest import EXAMPLE, ROOT

REFSIM_CARD = ROOT / "cards" / "refsim_cms2011.yaml"
MINBIAS = ROOT / "examples" / "minbias_7TeV.cmnd"


def write_card(folder: Path, pool: str, source: str | None, events: int = 30) -> Path:
    """The shipped refsim card with its pileup pool at ``pool`` (relative to the card), made from ``source``."""
    data = yaml.safe_load(REFSIM_CARD.read_text())
    pileup = data["generator"]["refsim"]["pileup"]
    pileup.update(pool=pool, events=events, seed=3)
    if source is None:
        del pileup["source"]
    else:
        pileup["source"] = source
    data["sampling"]["batch_size"] = 5
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "refsim.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def refsim(card: Path, output: Path):
    return CliRunner().invoke(main, ["refsim", "--quiet", "--config", str(card), "-n", "5", str(EXAMPLE),
                                     str(output)])


def test_missing_pool_is_made_once_on_first_use(tmp_path):
    card = write_card(tmp_path / "cards", "../not/yet/there/minbias.npz", str(MINBIAS))
    pool = tmp_path / "not" / "yet" / "there" / "minbias.npz"
    first = refsim(card, tmp_path / "first.root")
    assert first.exit_code == 0, first.output
    assert "not found; making it once from" in first.stderr and "(30 events" in first.stderr
    assert "events read 5, written 5" in first.stderr
    assert len(PileupPool(pool).counts) == 30
    assert [p.name for p in pool.parent.iterdir()] == ["minbias.npz"]  # no temporary file left
    made = pool.stat().st_mtime_ns
    second = refsim(card, tmp_path / "second.root")
    assert second.exit_code == 0, second.output
    assert "making it" not in second.stderr and pool.stat().st_mtime_ns == made


@pytest.mark.parametrize("source, why", [("../no/such_minbias.cmnd", "no/such_minbias.cmnd not found"),
                                         (None, "no pileup.source in the card"),
                                         ("pythia", "needs Pythia")])
def test_pool_that_cannot_be_made_is_a_one_line_error(tmp_path, monkeypatch, source, why):
    if source == "pythia":
        monkeypatch.setitem(sys.modules, "pythia8mc", None)  # import pythia8mc fails
        source = str(MINBIAS)
    card = write_card(tmp_path / "cards", "../pool/minbias.npz", source)
    result = refsim(card, tmp_path / "out.root")
    assert result.exit_code != 0 and result.exception is not None and isinstance(result.exception, SystemExit)
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and why in message, message
    assert "parnassus pileup-pool " in message and " -n 30 --seed 3 " in message and "minbias.npz" in message
    assert not (tmp_path / "pool").exists() and not (tmp_path / "out.root").exists()


def test_pileup_pool_command_makes_missing_folders(tmp_path):
    output = tmp_path / "a" / "b" / "pool.npz"
    result = CliRunner().invoke(main, ["pileup-pool", str(EXAMPLE), "-n", "4", str(output)])
    assert result.exit_code == 0, result.output
    assert "4 minimum-bias events" in result.stderr and len(PileupPool(output).counts) == 4
    missing = CliRunner().invoke(main, ["pileup-pool", str(tmp_path / "none.hepmc"), "-n", "4", str(output)])
    assert missing.exit_code != 0 and isinstance(missing.exception, SystemExit)
    assert len(missing.stderr.strip().splitlines()) == 1 and "cannot open input" in missing.stderr


def test_dataset_makes_the_pool_before_its_workers(tmp_path):
    from parnassus.dataset import produce

    card = write_card(tmp_path, "pool/minbias.npz", str(EXAMPLE), events=6)  # a HepMC3 source: no Pythia needed
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"card": str(card), "output": "out",
                                    "samples": [{"name": "a", "source": str(EXAMPLE), "events": 4, "seed": 1}]}))
    assert produce(spec, only=["none"], log=lambda line: None) == 0  # no chunk to make: only the pool
    assert len(PileupPool(tmp_path / "pool" / "minbias.npz").counts) == 6
