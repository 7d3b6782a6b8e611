from pathlib import Path

import numpy as np
import pytest
import yaml

from parnassus.card import load_card
from parnassus.errors import CardError
from parnassus.formula import Formula

from .conftest import CARD


def write_card(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(CARD.read_text())
    change(data)
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_card_loads():
    card = load_card(CARD)
    assert card.generator.kind == "parametric"
    assert card.truth.drop_pids[:3] == [12, 14, 16]
    assert card.objects.jets.radius == 0.5
    eff = card.generator.parametric.tracking_efficiency.charged_hadron
    np.testing.assert_allclose(eff(np.array([0.5, 5.0, 5.0, 5.0]), np.array([0.0, 0.0, 2.0, 3.0])),
                               [0.70, 0.95, 0.85, 0.0])


@pytest.mark.parametrize("change, message", [
    (lambda d: d["objects"]["jets"].update(radious=0.4), "card.yaml: objects.jets.radious: unknown key"),
    (lambda d: d["truth"].update(pt_min="high"), "card.yaml: truth.pt_min: expected a number, got str 'high'"),
    (lambda d: d["sampling"].update(batch_size=2.5), "sampling.batch_size: expected an integer"),
    (lambda d: d["sampling"].update(batch_size=0), "sampling.batch_size: must be > 0"),
    (lambda d: d["objects"]["jets"].update(algorithm="siscone"), "objects.jets.algorithm: expected one of"),
    (lambda d: d["generator"].update(kind="magic"), "generator.kind: expected one of parametric, refsim, neural"),
    (lambda d: d.pop("generator"), "card.yaml: generator: missing required key"),
    (lambda d: d["generator"].pop("parametric"), "generator.parametric: required"),
    (lambda d: d["generator"]["parametric"].update(ecal_resolution="sqrt(energy) + os"),
     "generator.parametric.ecal_resolution: invalid formula: unknown name 'os'"),
    (lambda d: d["generator"]["parametric"].update(hcal_resolution="(energy"),
     "generator.parametric.hcal_resolution: invalid formula"),
    (lambda d: d["generator"]["parametric"].update(hcal_resolution="__import__('os')"),
     "invalid formula: unknown name '__import__'"),
    (lambda d: d["truth"].update(drop_pids=[12, "nu"]), "truth.drop_pids[1]: expected an integer"),
    (lambda d: d["truth"].update(stable_ctau_mm=-1), "card.yaml: truth.stable_ctau_mm: must be > 0, got -1.0"),
    (lambda d: d["truth"].update(stable_ctau_mm="10 mm"), "truth.stable_ctau_mm: expected a number, got str"),
    (lambda d: d.update(objects=[1, 2]), "objects: expected a mapping"),
    (lambda d: d["generator"]["parametric"]["tracking_efficiency"].update(muon="1.2"),
     "tracking_efficiency.muon: gives 1.2 at pt = 0.1 GeV, eta = -5 (must be in [0, 1]"),
    (lambda d: d["generator"]["parametric"]["identification_efficiency"].update(electron="0.9 + 0.001 * pt"),
     "identification_efficiency.electron: gives 1.026 at pt = 126 GeV"),
    (lambda d: d["generator"]["parametric"].update(ecal_resolution="sqrt(energy - 1)"),
     "ecal_resolution: gives nan at pt = 0.1 GeV, eta = -2.9 (must be finite and >= 0"),
    (lambda d: d["generator"]["parametric"]["track_pt_resolution"].update(charged_hadron="0.01 - 0.001 * pt"),
     "track_pt_resolution.charged_hadron: gives -0.002589 at pt = 12.6 GeV"),
])
def test_card_errors_name_file_and_key(tmp_path, change, message):
    path = write_card(tmp_path, change)
    with pytest.raises(CardError) as error:
        load_card(path)
    text = str(error.value)
    assert message in text
    assert str(path) in text
    assert "\n" not in text


def test_stable_ctau_is_optional(tmp_path):
    assert load_card(CARD).truth.stable_ctau_mm is None  # Delphes-like: the record as it is
    for value in (10, None):
        card = load_card(write_card(tmp_path, lambda d, v=value: d["truth"].update(stable_ctau_mm=v)))
        assert card.truth.stable_ctau_mm == value


def test_missing_and_invalid_card_files(tmp_path):
    with pytest.raises(CardError, match="cannot read card"):
        load_card(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(CardError, match=r"bad.yaml: not valid YAML \(line"):
        load_card(bad)


def test_checkpoint_path_is_resolved_relative_to_card(tmp_path):
    (tmp_path / "models" / "m").mkdir(parents=True)
    cards = tmp_path / "cards"
    cards.mkdir()
    data = yaml.safe_load(CARD.read_text())
    data["generator"]["checkpoint"] = "../models/m"
    (cards / "c.yaml").write_text(yaml.safe_dump(data))
    card = load_card(cards / "c.yaml")
    assert card.generator.checkpoint == (tmp_path / "models" / "m").resolve()


def test_formula_counts_conditions_like_delphes():
    f = Formula("(pt > 1) + (eta > 0)")  # a sum of two conditions is 2 where both hold, not a logical or
    np.testing.assert_array_equal(f(np.array([2.0, 2.0, 0.5]), np.array([1.0, -1.0, -1.0])), [2.0, 1.0, 0.0])
    assert Formula("0.5")(np.zeros(3), np.zeros(3)).shape == (3,)
    with pytest.raises(ValueError, match="chained"):
        Formula("1 < pt < 2")
    with pytest.raises(ValueError):
        Formula("pt.__class__")
