"""Per-event random streams: an event's output depends on the seed and its position in the input, nothing else."""

import gzip

import awkward as ak
import numpy as np
import pytest
import uproot

from parnassus.card import load_card
from parnassus.run import run
from parnassus.streams import EventRandom

from .conftest import EXAMPLE, ROOT

CARDS = {name: ROOT / "cards" / f"{name}.yaml" for name in ("delphes_cms_like", "refsim_cms2011", "cms2011")}


def test_an_event_draws_the_same_numbers_whatever_shares_its_batch():
    alone = EventRandom(5, [9])
    shared = EventRandom(5, [3, 9, 4])
    a = alone.standard_normal(np.zeros(4, dtype=int))
    b = shared.standard_normal(np.array([0, 1, 2, 1, 0, 1, 1]))[[1, 3, 5, 6]]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(alone.poisson([0, 0], [2.0, 30.0]), shared.poisson([1, 1, 2], [2.0, 30.0, 1.0])[:2])
    assert not np.array_equal(EventRandom(6, [9]).standard_normal([0, 0, 0, 0]), a)  # the seed matters
    assert shared.random([]).shape == (0,) and shared.integers([], 0, 3).dtype == np.int64


def test_distributions_follow_their_parameters():
    rng = EventRandom(1, range(10))
    event = np.repeat(np.arange(10), 20_000)
    assert abs(rng.normal(event, 3.0, 2.0).mean() - 3.0) < 0.03
    assert abs(rng.gamma(event, 2.0).mean() - 2.0) < 0.03
    assert abs(rng.beta(event, 2.0, 6.0).mean() - 0.25) < 0.005
    assert abs(rng.poisson(event, np.full(len(event), 4.0)).mean() - 4.0) < 0.03
    assert set(rng.sign(event).tolist()) == {-1, 1}
    assert rng.integers(event, 0, 3).max() == 2


def _events(path):
    with uproot.open(path) as file:
        data = file["Delphes"].arrays(["Event.Number", "ParticleFlowCandidate.PT", "ParticleFlowCandidate.Eta",
                                       "ParticleFlowCandidate.Class", "Jet.PT", "Jet.BTag", "MissingET.MET"])
    return {int(number[0]): {field: ak.to_list(data[field][i]) for field in data.fields if field != "Event.Number"}
            for i, number in enumerate(ak.to_list(data["Event.Number"]))}


@pytest.mark.parametrize("name", list(CARDS))
def test_output_does_not_depend_on_batch_size_or_skip(name, tmp_path):
    card = load_card(CARDS[name])
    n = 12 if name == "refsim_cms2011" else 20
    outputs = {}
    for label, options in {"whole": {"batch_size": n}, "small": {"batch_size": 5},
                           "single": {"batch_size": 1, "max_events": n // 2},
                           "skip": {"batch_size": 3, "skip": 7}}.items():
        path = tmp_path / f"{label}.root"
        run(card, EXAMPLE, path, seed=11, progress=False, **{"max_events": n - options.get("skip", 0), **options})
        outputs[label] = _events(path)
    whole = outputs["whole"]
    assert len(whole) == n
    for label in ("small", "single", "skip"):
        assert outputs[label], label
        for number, event in outputs[label].items():
            assert event == whole[number], (label, number)


def test_a_skipped_bad_event_does_not_change_its_neighbours(tmp_path):
    lines = gzip.open(EXAMPLE, "rt").read().splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("E ")]
    broken = next(i for i in range(starts[3], starts[4]) if lines[i].startswith("P ") and lines[i].split()[-1] == "1")
    fields = lines[broken].split()
    fields[4] = "nan"
    bad = tmp_path / "bad.hepmc"
    bad.write_text("".join(lines[:broken] + [" ".join(fields) + "\n"] + lines[broken + 1:]))
    card = load_card(CARDS["delphes_cms_like"])
    run(card, EXAMPLE, tmp_path / "good.root", max_events=8, batch_size=4, seed=2, progress=False)
    run(card, bad, tmp_path / "bad.root", max_events=8, batch_size=4, seed=2, progress=False)
    good, with_bad = _events(tmp_path / "good.root"), _events(tmp_path / "bad.root")
    assert len(with_bad) == 7 and set(with_bad) == set(good) - {int(lines[starts[3]].split()[1])}
    for number, event in with_bad.items():
        assert event == good[number], number
