"""The whole generator record as Delphes writes it (card ``output.truth: full``), Particle units, and DZ."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pyhepmc
import pytest
import uproot
import yaml

from parnassus.card import load_card
from parnassus.errors import CardError
from parnassus.events import impact_parameters
from parnassus.io.delphes import MM_PER_C_TO_SECONDS
from parnassus.io.hepmc import _family, _vertex_links
from parnassus.pdg import delphes_charge
from parnassus.run import run

from .conftest import CARD, EXAMPLE, ROOT

SHARED = ROOT.parent / "shared" / "reference"
LINKS = ["PID", "Status", "M1", "M2", "D1", "D2"]


def full_card(folder: Path, **output) -> Path:
    data = yaml.safe_load(CARD.read_text())
    data["output"].update(truth="full", **output)
    path = folder / "full.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def particles(path: Path, leaves: list[str]) -> ak.Array:
    return uproot.open(path)["Delphes"].arrays([f"Particle.{leaf}" for leaf in leaves])


def test_family_matches_the_hepmc3_graph():
    """Mothers and daughters, in Delphes' order, are those of pyhepmc's own graph; daughters are a range."""
    checked = 0
    with pyhepmc.open(EXAMPLE) as events:
        for event, _ in zip(events, range(5), strict=False):
            data = pyhepmc.GenEventData()
            event.write_data(data)
            n = len(data.particles)
            family = _family(data, _vertex_links(data, n)[0])
            order = family[0]
            assert sorted(order) == list(range(n))
            position = np.empty(n, dtype=np.int64)
            position[order] = np.arange(n)
            for k, i in enumerate(order):
                particle = event.particles[i]
                daughters = sorted(position[c.id - 1] for c in particle.children)
                d1, d2 = family[3, k], family[4, k]
                assert daughters == (list(range(d1, d2 + 1)) if d1 >= 0 else [])
                mothers = sorted(position[m.id - 1] for m in particle.parents)
                expected = (mothers[0], mothers[-1] if len(mothers) > 1 else -1) if mothers else (-1, -1)
                assert (family[1, k], family[2, k]) == expected
                checked += 1
    assert checked > 3000


def test_full_truth_run_writes_every_particle_with_links(tmp_path):
    card = load_card(full_card(tmp_path))
    run(card, EXAMPLE, tmp_path / "full.root", max_events=10, batch_size=4, progress=False)
    run(load_card(CARD), EXAMPLE, tmp_path / "final.root", max_events=10, progress=False)
    full = particles(tmp_path / "full.root", [*LINKS, "PT", "E", "T"])
    final = particles(tmp_path / "final.root", ["PID", "PT"])
    with pyhepmc.open(EXAMPLE) as events:
        sizes = [len(event.particles) for event, _ in zip(events, range(10), strict=False)]
    assert ak.num(full["Particle.PID"]).tolist() == sizes
    assert ak.all(ak.num(full["Particle.PID"]) > 3 * ak.num(final["Particle.PID"]))
    for event in range(10):
        pid, m1, m2, d1, d2 = (ak.to_numpy(full[f"Particle.{leaf}"][event])
                               for leaf in ("PID", "M1", "M2", "D1", "D2"))
        status = ak.to_numpy(full["Particle.Status"][event])
        assert np.all(d1[status == 1] == -1)  # final particles do not decay
        for i in np.flatnonzero(d1 >= 0):  # every daughter has the particle among its mothers M1..M2
            k = np.arange(d1[i], d2[i] + 1)
            assert np.all((m1[k] == i) | ((m1[k] <= i) & (m2[k] >= i)))
        assert np.all(pid[:2] == 2212) and np.all(m1[:2] == -1)  # the beams first
    assert np.all(np.abs(ak.to_numpy(ak.flatten(full["Particle.T"]))) < 1e-8)  # seconds, not mm/c


@pytest.mark.skipif(not (SHARED / "delphes_3.5.1_cms_ttbar200.root").exists(), reason="shared reference missing")
def test_full_truth_is_delphes_particle_collection(tmp_path):
    """On the 200 reference ttbar events: every Particle link, id, status and kinematic leaf as Delphes 3.5.1."""
    card = load_card(full_card(tmp_path))
    ours = tmp_path / "full.root"
    run(card, SHARED / "ttbar_7TeV_200_pythia_defaults.hepmc.gz", ours, max_events=40, progress=False)
    leaves = [*LINKS, "PT", "Eta", "Phi", "Rapidity", "E", "Mass", "T", "X", "Z"]
    theirs = particles(SHARED / "delphes_3.5.1_cms_ttbar200.root", leaves)[:40]
    mine = particles(ours, leaves)
    for leaf in LINKS:
        assert ak.all(mine[f"Particle.{leaf}"] == theirs[f"Particle.{leaf}"]), leaf
    for leaf in leaves[len(LINKS):]:
        np.testing.assert_allclose(ak.to_numpy(ak.flatten(mine[f"Particle.{leaf}"])),
                                   ak.to_numpy(ak.flatten(theirs[f"Particle.{leaf}"])), rtol=1e-5, atol=1e-12,
                                   err_msg=leaf)


def test_full_truth_from_a_pythia_card_uses_pythias_links(tmp_path):
    card = load_card(full_card(tmp_path))
    run(card, ROOT / "examples" / "ttbar_7TeV.cmnd", tmp_path / "p.root", max_events=2, progress=False)
    full = particles(tmp_path / "p.root", [*LINKS])
    for event in range(2):
        m1, m2, d1, d2 = (ak.to_numpy(full[f"Particle.{leaf}"][event]) for leaf in ("M1", "M2", "D1", "D2"))
        n = len(m1)
        assert np.all((m1 >= -1) & (m1 < n)) and np.all((d1 >= -1) & (d2 < n))
        decays = np.flatnonzero(d1 >= 0)
        assert len(decays) > 100
        for i in decays:  # Pythia's first daughter names the particle among its mothers (one or a range)
            k = d1[i]
            assert m1[k] == i or m2[k] == i or m1[k] <= i <= m2[k]


def test_output_truth_choices(tmp_path):
    bad = full_card(tmp_path)
    bad.write_text(bad.read_text().replace("truth: full", "truth: everything"))
    with pytest.raises(CardError, match=r"output\.truth: expected one of final, full"):
        load_card(bad)


def test_particle_time_in_seconds(example_run):
    """The final-state Particle collection: T in seconds (HepMC3's mm/c / c), like Delphes."""
    t = ak.flatten(particles(example_run, ["T"])["Particle.T"])
    assert ak.max(abs(t)) < 1e-8
    assert MM_PER_C_TO_SECONDS == pytest.approx(3.33564e-12, rel=1e-5)


def test_delphes_charges():
    assert delphes_charge(np.array([2, -1, 21, 11, -211, 2224, 92])).tolist() == [0, 0, 0, -1, -1, 2, -999]


def test_impact_parameters_at_the_point_of_closest_approach():
    # a track along x through (0, 2, 5) mm: closest to the beam at (0, 2, 5), d0 = -2 (x py - y px) / pt
    d0, dz = impact_parameters(np.array([3.0]), np.array([2.0]), np.array([5.0 + 3.0]), np.array([1.0]),
                               np.array([0.0]), np.array([1.0]), np.array([1.0]))
    assert d0[0] == pytest.approx(-2.0) and dz[0] == pytest.approx(5.0)
    # a prompt track from the beam axis: d0 0, dz its production z
    d0, dz = impact_parameters(np.array([0.0]), np.array([0.0]), np.array([7.0]), np.array([1.0]),
                               np.array([1.0]), np.array([4.0]), np.array([2**0.5]))
    assert d0[0] == 0.0 and dz[0] == 7.0


def test_validate_refuses_a_whole_record(tmp_path, example_run):
    from parnassus.errors import InputError
    from parnassus.validate.report import open_inputs

    full = tmp_path / "full.root"
    run(load_card(full_card(tmp_path)), EXAMPLE, full, max_events=3, progress=False)
    with pytest.raises(InputError, match=r"full\.root: Particle holds the whole generator record"):
        open_inputs(example_run, [full])
