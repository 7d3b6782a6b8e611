import csv
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from parnassus.card import load_card
from parnassus.errors import CardError
from parnassus.events import RunCounts
from parnassus.generators import make_generator
from parnassus.io.hepmc import HepMCReader
from parnassus.nn.data import load_pairs, normalisation, particle_sets, truth_vertices
from parnassus.nn.features import counts_from_samples, vertex_from_features
from parnassus.run import run
from parnassus.solvers import evaluations
from parnassus.train import train

from .conftest import EXAMPLE, tiny_card


def read_log(folder: Path) -> list[dict]:
    with open(folder / "training_log.csv") as handle:
        return list(csv.DictReader(handle))


def test_training_loss_decreases_and_is_logged(trained):
    rows = read_log(load_card(trained).generator.checkpoint)
    assert [int(r["step"]) for r in rows] == list(range(1, 81))
    losses = np.array([float(r["event_loss"]) + float(r["pfc_loss"]) for r in rows])
    assert losses[-20:].mean() < 0.9 * losses[:10].mean()
    validation = [float(r["validation_pfc_loss"]) for r in rows if r["validation_pfc_loss"]]
    assert len(validation) == 4 and validation[-1] < validation[0]


def test_resume_is_bit_exact(tmp_path, pairs):
    (tmp_path / "a").mkdir()
    straight = tiny_card(tmp_path / "a", pairs, steps=30, checkpoint_every=10)
    train(load_card(straight), progress=False)
    (tmp_path / "b").mkdir()
    resumed = tiny_card(tmp_path / "b", pairs, steps=30, checkpoint_every=10)
    train(load_card(resumed), progress=False, max_steps=10)
    train(load_card(resumed), progress=False, resume=True)
    a = load_file(tmp_path / "a" / "model" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert read_log(tmp_path / "a" / "model") == [
        {**row, "seconds": a_row["seconds"]} for row, a_row in zip(read_log(tmp_path / "b" / "model"),
                                                                   read_log(tmp_path / "a" / "model"), strict=True)]


def test_neural_run_writes_candidates_reproducibly(trained, tmp_path):
    card = load_card(trained)
    first, again = tmp_path / "a.root", tmp_path / "b.root"
    run(card, EXAMPLE, first, max_events=10, progress=False)
    run(card, EXAMPLE, again, max_events=10, progress=False)
    import uproot

    a = uproot.open(first)["Delphes"].arrays(["ParticleFlowCandidate.PT", "ParticleFlowCandidate.Class",
                                              "ParticleFlowCandidate.Eta", "ScalarHT.HT"])
    b = uproot.open(again)["Delphes"].arrays(["ParticleFlowCandidate.PT"])
    assert ak.to_list(a["ParticleFlowCandidate.PT"]) == ak.to_list(b["ParticleFlowCandidate.PT"])
    assert ak.all(ak.num(a["ParticleFlowCandidate.PT"]) > 0)
    assert ak.all(a["ParticleFlowCandidate.PT"] >= 1.0) and ak.all(abs(a["ParticleFlowCandidate.Eta"]) <= 2.7)
    assert set(ak.flatten(a["ParticleFlowCandidate.Class"]).tolist()) <= {0, 1, 2, 3, 4}


def test_card_and_checkpoint_must_agree(trained, tmp_path):
    data = yaml.safe_load(Path(trained).read_text())
    data["truth"]["pt_min"] = 0.5
    mismatched = tmp_path / "mismatch.yaml"
    mismatched.write_text(yaml.safe_dump(data))
    with pytest.raises(CardError, match=r"truth.pt_min: the model in .* was trained with 0.25, the card says 0.5"):
        make_generator(load_card(mismatched))
    data["truth"]["pt_min"] = 0.25
    data["generator"]["checkpoint"] = str(tmp_path / "nothing")
    mismatched.write_text(yaml.safe_dump(data))
    with pytest.raises(CardError, match="no trained model at"):
        make_generator(load_card(mismatched))


@pytest.mark.parametrize("solver, steps", [("euler", 3), ("heun", 2), ("dpmpp2m", 4), ("pndm", 5)])
def test_card_solver_and_steps_are_honoured(trained, tmp_path, solver, steps):
    data = yaml.safe_load(Path(trained).read_text())
    data["sampling"].update(solver=solver, steps=steps)
    path = tmp_path / "solver.yaml"
    path.write_text(yaml.safe_dump(data))
    generator = make_generator(load_card(path))
    calls = {"event": 0, "pfc": 0}
    generator.model.event.register_forward_hook(lambda *a: calls.__setitem__("event", calls["event"] + 1))
    generator.model.pfc.register_forward_hook(lambda *a: calls.__setitem__("pfc", calls["pfc"] + 1))
    # one event: one group of network shapes, so one network call per solver evaluation
    batch = next(iter(HepMCReader(EXAMPLE, load_card(path).truth, 1, RunCounts(), max_events=1)))
    generator(batch, 1)
    assert calls == {"event": evaluations(solver, steps), "pfc": evaluations(solver, steps)}


def test_multiplicities_are_dequantised_without_rounding_artefacts():
    rng = np.random.default_rng(0)
    counts = rng.poisson(7.3, 200_000)
    continuous = counts + rng.random(counts.shape)  # what the event network learns to sample
    recovered = counts_from_samples(continuous)
    assert np.array_equal(recovered, counts)
    # a smooth sample of the dequantised density (jittered within each unit bin) gives the same pmf:
    smooth = continuous + rng.normal(0, 0.05, counts.shape)
    pmf = np.bincount(counts, minlength=30)[:30] / len(counts)
    sampled = np.bincount(counts_from_samples(smooth), minlength=30)[:30] / len(counts)
    assert np.abs(pmf - sampled).max() < 0.01
    assert abs(counts_from_samples(smooth).mean() - counts.mean()) < 0.01
    assert abs(np.round(continuous).mean() - counts.mean()) > 0.45  # rounding instead of flooring shifts by 1/2


def test_candidates_are_taken_as_sampled_and_outside_acceptance_dropped(trained):
    """No projection onto the sampled HT/MET: pT = pT_rel x sampled HT, the vertex relative to the truth
    primary vertex; candidates outside the output acceptance are dropped and counted."""
    generator = make_generator(load_card(trained))
    rng = np.random.default_rng(2)
    totals = np.array([40, 7, 120])
    features = rng.normal(0, 1, (totals.sum(), 8))
    features[:, 0] = rng.normal(-4, 1, totals.sum())
    features[:, 1] = rng.normal(0, 1.5, totals.sum())
    ht = np.array([400.0, 90.0, 1500.0])
    vertex = np.array([[0.01, -0.02, 30.0], [0.0, 0.0, -12.0], [0.02, 0.01, 0.5]])
    pfcs = generator._decode(features, rng.integers(0, 5, totals.sum()), totals, ht, vertex)
    event = np.repeat(np.arange(3), totals)
    pt = np.exp(features[:, 0]) * ht[event]
    inside = (pt >= 1.0) & (np.abs(features[:, 1]) <= 2.7)
    assert 0 < (~inside).sum() < 60 and generator.outside_acceptance == (~inside).sum()
    assert ak.num(pfcs).tolist() == np.bincount(event[inside], minlength=3).tolist()
    for i in range(3):
        chosen = inside & (event == i)
        np.testing.assert_allclose(sorted(ak.to_numpy(pfcs.pt[i])), sorted(pt[chosen]), rtol=1e-6)
        np.testing.assert_allclose(sorted(ak.to_numpy(pfcs.z[i])),
                                   sorted(vertex[i, 2] + 0.02 * np.sinh(features[chosen, 6])), rtol=1e-9)


def test_vertex_features_do_not_depend_on_where_the_event_sits():
    """Shifting a whole event (the luminous region) leaves every feature unchanged; features invert exactly."""
    rng = np.random.default_rng(5)
    n = [30, 12]
    def sets(shift):
        pt = ak.unflatten(rng.exponential(3, sum(n)) + 0.3, n)
        eta, phi = (ak.unflatten(rng.normal(0, 1.5, sum(n)), n), ak.unflatten(rng.uniform(-3, 3, sum(n)), n))
        x = ak.unflatten(rng.normal(0, 0.03, sum(n)), n)
        y = ak.unflatten(rng.normal(0, 0.03, sum(n)), n)
        z = ak.unflatten(rng.normal(0, 0.05, sum(n)) + shift, n)
        charge = ak.unflatten(rng.choice([-1, 0, 1], sum(n)), n)
        cls = ak.unflatten(rng.integers(0, 5, sum(n)), n)
        return pt, eta, phi, x, y, z, charge, cls
    a = sets(0.0)
    rng = np.random.default_rng(5)
    b = sets(47.0)
    vertex_a, vertex_b = truth_vertices(a[6], *a[3:6]), truth_vertices(b[6], *b[3:6])
    np.testing.assert_allclose(vertex_b - vertex_a, [[0, 0, 47.0]] * 2, atol=1e-9)
    features_a = particle_sets(*a, 100, vertex_a).features
    features_b = particle_sets(*b, 100, vertex_b).features
    np.testing.assert_allclose(features_a, features_b, atol=1e-4)
    order = ak.argsort(b[0], axis=1, ascending=False)
    positions = np.column_stack([ak.to_numpy(ak.flatten(c[order])) for c in b[3:6]])
    recovered = vertex_from_features(features_b[:, 4:7].astype(np.float64),
                                     np.repeat(vertex_b, n, axis=0))
    np.testing.assert_allclose(recovered, positions, atol=1e-5)


def test_truth_and_generated_event_quantities_have_their_own_standardisation(pairs):
    truth, pfc = load_pairs([pairs], 400, 400)
    norm = normalisation(truth, pfc)
    assert not np.allclose(norm.truth_event_mean, norm.event_mean)
    np.testing.assert_allclose(norm.truth_event_mean[:3], truth.events[:, :3].mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(norm.event_mean[3:], pfc.events[:, 3:].mean(axis=0) + 0.5, rtol=1e-5)


def test_resume_refuses_other_training_files(tmp_path, pairs):
    card = tiny_card(tmp_path, pairs, steps=10, checkpoint_every=5)
    train(load_card(card), progress=False, max_steps=5)
    data = yaml.safe_load(Path(card).read_text())
    other = tmp_path / "other.root"
    other.write_bytes(pairs.read_bytes())
    data["training"]["files"] = [str(pairs), str(other)]
    Path(card).write_text(yaml.safe_dump(data))
    with pytest.raises(CardError, match="--resume: training.files"):
        train(load_card(card), progress=False, resume=True)


def test_diffusion_variant_trains_and_samples(tmp_path, pairs):
    data = yaml.safe_load(Path(tiny_card(tmp_path, pairs, steps=12, checkpoint_every=12)).read_text())
    data["model"].update(kind="diffusion", source="gaussian")
    card_path = tmp_path / "diffusion.yaml"
    card_path.write_text(yaml.safe_dump(data))
    card = load_card(card_path)
    train(card, progress=False)
    rows = read_log(card.generator.checkpoint)
    assert len(rows) == 12 and all(np.isfinite(float(r["pfc_loss"])) for r in rows)
    generator = make_generator(card)
    assert generator.objective.kind == "diffusion" and type(generator.objective.path).__name__ == "CosinePath"
    batch = next(iter(HepMCReader(EXAMPLE, card.truth, 3, RunCounts(), max_events=3)))
    pfcs = generator(batch, 0)
    assert len(pfcs) == 3 and ak.all(np.isfinite(ak.flatten(pfcs.pt)))


def test_ema_is_warmed_up(tmp_path, pairs):
    """With ema_decay 0.999 the EMA after 3 steps follows the trained weights (decay warmed up from 0.1), instead
    of staying at the initial weights."""
    from parnassus.nn.model import Parnassus
    from parnassus.train import architecture

    card = load_card(tiny_card(tmp_path, pairs, steps=3, checkpoint_every=3, ema_decay=0.999))
    train(card, progress=False)
    state = torch.load(card.generator.checkpoint / "state.pt", weights_only=False)
    torch.manual_seed(card.training.seed)
    initial = Parnassus(architecture(card)).state_dict()
    moved = sum(float((state["model"][k] - initial[k]).norm()) for k in initial)
    lag = sum(float((state["model"][k] - state["ema"][k]).norm()) for k in initial)
    assert moved > 0 and lag < 0.3 * moved


def test_truth_encoder_samples_with_the_attention_it_was_trained_with(monkeypatch):
    """Inference takes the training path (scaled_dot_product_attention), never torch's fused encoder-layer kernel,
    whose masked softmax over all truth pairs made a third of a student's CPU time; the switch is put back."""
    from parnassus.nn.model import Architecture, TruthEncoder

    torch.manual_seed(0)
    encoder = TruthEncoder(Architecture("flow", dim=16, blocks=1, heads=2, event_dim=16, event_blocks=1,
                                        truth_blocks=2, n_particle_features=4, n_event_features=3, n_classes=5))
    truth, event = torch.randn(3, 7, 9), torch.randn(3, 3)
    mask = torch.arange(7)[None, :] < torch.tensor([[7], [4], [1]])
    trained_path, _ = encoder.train()(truth, mask, event)

    def fused(*args, **kwargs):
        raise AssertionError("the fused inference kernel ran")

    monkeypatch.setattr(torch, "_transformer_encoder_layer_fwd", fused)
    with torch.inference_mode():
        sampled, _ = encoder.eval()(truth, mask, event)
    torch.testing.assert_close(sampled, trained_path.detach())
    assert torch.backends.mha.get_fastpath_enabled()
