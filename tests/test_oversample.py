"""Oversampling: every truth event simulated K times with independent random streams."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from parnassus.card import load_card
from parnassus.cli import main
from parnassus.io.delphes import read_metadata
from parnassus.run import replica_seed, run

from .conftest import CARD, EXAMPLE


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The first 10 example events: a plain run and a run with --oversample 3 (batches of 4)."""
    folder = tmp_path_factory.mktemp("oversample")
    card = load_card(CARD)
    plain, oversampled = folder / "plain.root", folder / "oversampled.root"
    run(card, EXAMPLE, plain, max_events=10, seed=5, batch_size=4, progress=False)
    result = run(card, EXAMPLE, oversampled, max_events=10, seed=5, batch_size=4, progress=False, oversample=3)
    assert result.counts.read == 10 and result.counts.written == 30
    return uproot.open(plain)["Delphes"].arrays(), uproot.open(oversampled)["Delphes"].arrays(), oversampled


def test_replicas_keep_the_event_number_carry_their_index_and_share_the_weight(runs):
    plain, oversampled, _ = runs
    assert len(oversampled) == 30
    assert ak.to_list(oversampled["Event.Number"]) == [[n] for n in np.repeat(ak.flatten(plain["Event.Number"]), 3)]
    assert ak.flatten(oversampled["Event.Replica"]).tolist() == [0, 1, 2] * 10
    np.testing.assert_allclose(ak.flatten(oversampled["Event.Weight"]), np.repeat(ak.flatten(plain["Event.Weight"]),
                                                                                   3) / 3, rtol=1e-6)
    np.testing.assert_allclose(ak.flatten(oversampled["Weight.Weight"]), ak.flatten(oversampled["Event.Weight"]))
    assert "Event.Replica" not in plain.fields  # a plain run's layout is unchanged


def test_replica_zero_is_the_plain_run_and_the_others_differ(runs):
    plain, oversampled, _ = runs
    for name in ("ParticleFlowCandidate.PT", "Jet.PT", "Particle.PT", "MissingET.MET"):
        assert ak.to_list(oversampled[name][0::3]) == ak.to_list(plain[name]), name
    pfc = oversampled["ParticleFlowCandidate.PT"]
    assert ak.to_list(oversampled["Particle.PT"][1::3]) == ak.to_list(plain["Particle.PT"])  # the same truth
    for replica in (1, 2):
        assert all(ak.to_list(pfc[replica::3][i]) != ak.to_list(pfc[0::3][i]) for i in range(10))
    assert all(ak.to_list(pfc[1::3][i]) != ak.to_list(pfc[2::3][i]) for i in range(10))
    assert len({replica_seed(5, r) for r in range(3)}) == 3 and replica_seed(5, 0) == 5


def test_metadata_says_so_and_the_command_line_takes_it(runs, tmp_path):
    _, _, path = runs
    metadata = read_metadata(path)
    assert metadata["oversample"] == 3 and metadata["counts"]["written"] == 30 and metadata["counts"]["read"] == 10
    out = tmp_path / "cli.root"
    result = CliRunner().invoke(main, ["run", "--card", str(CARD), str(EXAMPLE), str(out), "-n", "4",
                                       "--oversample", "2", "--seed", "5", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "events read 4, written 8" in result.stderr
    assert uproot.open(out)["Delphes"].num_entries == 8 and read_metadata(out)["oversample"] == 2
    bad = CliRunner().invoke(main, ["run", "--card", str(CARD), str(EXAMPLE), str(out), "--oversample", "0"])
    assert bad.exit_code == 2 and "--oversample" in bad.output
