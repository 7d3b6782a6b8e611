import dataclasses

import awkward as ak
import numpy as np
import pytest

from parnassus.card import OutputCuts, load_card
from parnassus.events import TRUTH_FIELDS, TruthBatch
from parnassus.formula import Formula
from parnassus.generators.parametric import ParametricGenerator, log_normal
from parnassus.pdg import CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON, charge_and_class
from parnassus.streams import EventRandom

from .conftest import CARD


def batch_of(pids, pts, etas, n_events=1):
    """n_events copies of one event with the given particles (vertex at z = 5 mm)."""
    pids = np.tile(np.asarray(pids), n_events)
    pt, eta = np.tile(np.asarray(pts, float), n_events), np.tile(np.asarray(etas, float), n_events)
    phi = np.linspace(-3, 3, len(pids))
    charge, cls = charge_and_class(pids)
    columns = dict.fromkeys(TRUTH_FIELDS, np.zeros(len(pids)))
    columns |= {"pid": pids, "status": np.ones(len(pids)), "charge": charge, "cls": cls, "pt": pt, "eta": eta,
                "phi": phi, "px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta),
                "e": pt * np.cosh(eta), "z": np.full(len(pids), 5.0)}
    counts = np.full(n_events, len(pids) // n_events)
    return TruthBatch.from_columns(counts, columns, np.arange(n_events), np.ones(n_events), np.arange(n_events))


def generator(**changes):
    card = load_card(CARD)
    params = card.generator.parametric
    for name, value in changes.items():
        if isinstance(value, dict):
            value = dataclasses.replace(getattr(params, name), **{k: Formula(v) for k, v in value.items()})
        elif isinstance(value, str):
            value = Formula(value)
        params = dataclasses.replace(params, **{name: value})
    return ParametricGenerator(params, card.output)


def test_log_normal_has_requested_mean_and_width():
    event = np.repeat(np.arange(20), 10_000)
    x = log_normal(EventRandom(1, range(20)), event, np.full(200_000, 10.0), np.full(200_000, 2.0))
    assert abs(x.mean() - 10.0) < 0.02 and abs(x.std() - 2.0) < 0.02 and x.min() > 0


def test_perfect_tracking_keeps_charged_particles_and_vertex():
    gen = generator(tracking_efficiency={"charged_hadron": "1.0", "electron": "1.0", "muon": "1.0"},
                    track_pt_resolution={"charged_hadron": "0.0", "electron": "0.0", "muon": "0.0"},
                    identification_efficiency={"electron": "1.0", "muon": "1.0"})
    out = gen(batch_of([211, -11, 13], [5.0, 20.0, 30.0], [0.1, -1.0, 2.0]), seed=3)[0]
    assert sorted(out.pid.tolist()) == [-11, 13, 211]
    np.testing.assert_allclose(sorted(out.pt.tolist()), [5.0, 20.0, 30.0])
    np.testing.assert_allclose(out.z.tolist(), 5.0)
    assert sorted(out.cls.tolist()) == [CHARGED_HADRON, ELECTRON, MUON]


def test_unidentified_leptons_become_charged_hadrons_and_lost_tracks_go_to_calorimeters():
    gen = generator(tracking_efficiency={"charged_hadron": "0.0", "electron": "0.0", "muon": "0.0"})
    out = gen(batch_of([211, 11, 13], [50.0, 50.0, 50.0], [0.1, 0.5, 1.0]), seed=3)[0]
    # no tracks: the pion becomes a neutral hadron, the electron a photon, the muon is lost
    assert sorted(out.cls.tolist()) == [NEUTRAL_HADRON, PHOTON]
    assert out.charge.tolist() == [0, 0] and out.z.tolist() == [5.0, 5.0]  # at the primary vertex
    gen = generator(identification_efficiency={"electron": "0.0", "muon": "0.0"},
                    tracking_efficiency={"charged_hadron": "1.0", "electron": "1.0", "muon": "1.0"})
    out = gen(batch_of([11, 13], [50.0, 50.0], [0.1, 0.5]), seed=3)[0]
    assert out.cls.tolist() == [CHARGED_HADRON, CHARGED_HADRON]


def test_calorimeter_resolution_and_tower_smearing():
    n = 4000
    gen = generator()
    batch = batch_of([22, 130], [100.0, 100.0], [0.30, -0.30], n_events=n)
    out = gen(batch, seed=5)
    photons, hadrons = ak.flatten(out[out.cls == PHOTON]), ak.flatten(out[out.cls == NEUTRAL_HADRON])
    energy = 100.0 * np.cosh(0.3)
    card = load_card(CARD).generator.parametric
    for cands, formula in ((photons, card.ecal_resolution), (hadrons, card.hcal_resolution)):
        sigma = formula(np.array([100.0]), np.array([0.3]), np.array([energy]))[0]
        assert len(cands) > 0.95 * n
        assert abs(np.mean(cands.e) - energy) < 5 * sigma / np.sqrt(n)
        assert abs(np.std(cands.e) / sigma - 1) < 0.1
    # directions spread uniformly over the particle's tower: eta in [0.2958, 0.3132] for the ECAL
    assert photons.eta.tolist() and 0.2957 < min(photons.eta) and max(photons.eta) < 0.3133
    assert np.std(photons.eta) == pytest.approx(0.0174 / np.sqrt(12), rel=0.1)


def test_output_cuts_and_ordering():
    gen = ParametricGenerator(load_card(CARD).generator.parametric, OutputCuts(pt_min=4.0, eta_max=1.0))
    out = gen(batch_of([211, 211, 211, 22], [3.0, 10.0, 10.0, 50.0], [0.0, 0.0, 1.5, 0.5], n_events=50), seed=1)
    flat = ak.flatten(out)
    assert ak.all(flat.pt >= 4.0) and ak.all(abs(flat.eta) <= 1.0)
    assert ak.all(out.pt[:, :-1] >= out.pt[:, 1:])


def test_same_seed_same_output_other_seed_differs():
    gen = generator()
    batch = batch_of([211, 22, 130, 11], [10.0, 20.0, 30.0, 40.0], [0.1, 0.2, 0.3, 0.4], n_events=20)
    a, b, c = gen(batch, seed=7), gen(batch, seed=7), gen(batch, seed=8)
    assert ak.to_list(a) == ak.to_list(b)
    assert ak.to_list(a) != ak.to_list(c)


def test_empty_batch():
    out = generator()(TruthBatch.empty(), seed=0)
    assert len(out) == 0 and "pt" in out.fields


def test_calorimeter_candidates_sit_at_the_primary_vertex(tmp_path):
    from parnassus.events import RunCounts
    from parnassus.io.hepmc import HepMCReader

    from .conftest import SIMPLE_EVENT, make_event, write_events

    path = write_events(tmp_path / "displaced.hepmc",
                        [make_event(i, SIMPLE_EVENT, vertex=(0.01, -0.02, 30.0, 0.0)) for i in range(3)])
    batch = next(iter(HepMCReader(path, load_card(CARD).truth, 10, RunCounts())))
    out = ak.flatten(generator(tracking_efficiency={"charged_hadron": "0.5", "electron": "0.5", "muon": "0.5"})(
        batch, seed=1))
    neutral, charged = out[out.charge == 0], out[out.charge != 0]
    assert len(neutral) >= 6 and len(charged) > 0
    for name, value in zip("xyz", (0.01, -0.02, 30.0), strict=True):
        np.testing.assert_allclose(ak.to_numpy(neutral[name]), value)
        np.testing.assert_allclose(ak.to_numpy(charged[name]), value)
