"""Truth-anchored sources (model.source: anchored, seeded): pairing, seeds, training data, training, sampling."""

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch
import uproot
import yaml

from parnassus.card import load_card
from parnassus.errors import CardError
from parnassus.events import RunCounts
from parnassus.generators import make_generator
from parnassus.io.hepmc import HepMCReader
from parnassus.nn import anchors
from parnassus.nn.data import load_pairs, make_batch, normalisation
from parnassus.nn.features import PARTICLE_FEATURES, SEED_FEATURES
from parnassus.run import run
from parnassus.train import train

from .conftest import EXAMPLE, tiny_card


def features(log_pt, eta, phi, charge):
    """Raw particle features (nn.features order) of particles at the primary vertex."""
    n = len(log_pt)
    return np.column_stack([log_pt, eta, np.sin(phi), np.cos(phi), np.zeros((n, 3)), charge]).astype(np.float32)


def test_candidates_pair_with_the_nearest_truth_particle_of_their_charge_type():
    truth = features([0.0, -1.0, -2.0, -1.5], [0.0, 1.0, -1.0, 2.0], [0.0, 3.1, 1.0, -2.0], [1, 0, -1, 1])
    pfc = features([0.02, -0.9, -2.0, -1.5, 0.01, -3.0],
                   [0.001, 1.01, -1.0, 2.0, 0.0, 0.0],
                   [0.001, -3.13, 1.0, -2.0, 0.002, -2.5],  # the second across phi = pi from its partner
                   [1, 0, 0, 1, 1, 1])
    partner = anchors.event_partners(truth, pfc)
    # candidate 2 sits on truth 2 but is neutral where truth 2 is charged; candidates 0 and 4 both sit on truth 0,
    # which can take one of them; candidate 5 is near nothing
    assert partner.tolist()[1] == 1 and partner[3] == 3 and partner[2] == -1 and partner[5] == -1
    assert sorted([partner[0], partner[4]]) == [-1, 0]


def test_pairs_farther_than_the_cost_limit_are_no_pairs():
    truth = features([0.0], [0.0], [0.0], [1])
    shift = anchors.MATCH_ANGLE * np.sqrt(anchors.MAX_COST)
    assert anchors.event_partners(truth, features([0.0], [0.99 * shift], [0.0], [1])).tolist() == [0]
    assert anchors.event_partners(truth, features([0.0], [1.01 * shift], [0.0], [1])).tolist() == [-1]
    assert anchors.event_partners(truth, features([0.0], [0.0], [0.0], [1])[:0]).tolist() == []


def test_truth_labels_and_paired_counts():
    # two events: truth sets of 3 and 2, candidate sets of 2 and 3
    truth_offsets, pfc_offsets = np.array([0, 3, 5]), np.array([0, 2, 5])
    partner = np.array([2, -1, 0, 1, -1])
    cls = np.array([4, 0, 0, 3, 0])
    assert anchors.truth_labels(5, truth_offsets, pfc_offsets, partner, cls).tolist() == [0, 0, 5, 1, 4]
    assert anchors.paired_counts(pfc_offsets, partner, cls).tolist() == [[0, 0, 0, 0, 1], [1, 0, 0, 1, 0]]


def test_anchored_training_data(pairs):
    truth, pfc = load_pairs([pairs], 400, 400)
    truth_a, pfc_a = load_pairs([pairs], 400, 400, "anchored")
    # candidates' pT_rel refer to the truth HT; the truth sets are unchanged
    np.testing.assert_allclose(truth_a.features, truth.features)
    event = np.repeat(np.arange(len(pfc)), np.diff(pfc.offsets))
    shift = truth.events[event, 2] - pfc.events[event, 2]  # log HT(truth) - log HT(candidates)
    np.testing.assert_allclose(pfc_a.features[:, 0], pfc.features[:, 0] - shift, atol=1e-4)
    # the generated multiplicities count the candidates without a partner
    paired = anchors.paired_counts(pfc_a.offsets, pfc_a.pairing, pfc_a.cls)
    np.testing.assert_array_equal(pfc_a.events[:, 3:] + paired, pfc.events[:, 3:])
    assert 0.3 < (pfc_a.pairing >= 0).mean() < 1.0
    assert (truth_a.pairing > 0).sum() == (pfc_a.pairing >= 0).sum()
    # the batch's anchors are the standardised features of the partners
    norm = normalisation(truth_a, pfc_a)
    index = np.arange(3)
    batch = make_batch(truth_a.take(index), pfc_a.take(index), norm, np.random.default_rng(0))
    first = pfc_a.take(np.array([0]))
    k = int(np.flatnonzero(first.pairing >= 0)[0])
    expected = (truth_a.features[first.pairing[k]] - norm.pfc_mean) / norm.pfc_std
    np.testing.assert_allclose(batch.anchor[0, k].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert bool(batch.anchored[0, k]) and int(batch.truth_label[0, first.pairing[k]]) == 1 + first.cls[k]
    assert batch.anchored.sum() == batch.truth_label.gt(0).sum()


def anchored_card(folder: Path, pairs: Path, source: str = "anchored", **training) -> Path:
    path = tiny_card(folder, pairs, **training)
    data = yaml.safe_load(path.read_text())
    data["model"]["source"] = source
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("source", ["anchored", "seeded"])
def test_anchored_model_trains_and_samples_the_same_for_any_batch(tmp_path, pairs, source):
    card = load_card(anchored_card(tmp_path, pairs, source, steps=40))
    train(card, progress=False)
    generator = make_generator(card)
    assert generator.model.arch.anchored and generator.model.pfc.partner is not None
    assert (generator.model.pfc.seed is not None) == (source == "seeded")
    outputs = []
    for batch_size in (12, 5):
        path = tmp_path / f"run{batch_size}.root"
        run(card, EXAMPLE, path, max_events=12, batch_size=batch_size, progress=False)
        outputs.append(uproot.open(path)["Delphes"].arrays(["ParticleFlowCandidate.PT", "ParticleFlowCandidate.Eta"]))
    assert ak.to_list(outputs[0]["ParticleFlowCandidate.PT"]) == ak.to_list(outputs[1]["ParticleFlowCandidate.PT"])
    assert ak.all(ak.num(outputs[0]["ParticleFlowCandidate.PT"]) > 0)
    assert ak.all(outputs[0]["ParticleFlowCandidate.PT"] >= 1.0)
    # the drawn slots reach the networks: the same events with the label embedding zeroed come out otherwise
    batch = next(iter(HepMCReader(EXAMPLE, card.truth, 6, RunCounts(), max_events=6)))
    first = generator(batch, 1)
    torch.nn.init.zeros_(generator.model.pfc.label.weight)
    assert ak.to_list(generator(batch, 1).pt) != ak.to_list(first.pt)


def test_anchored_source_needs_a_flow_model(tmp_path, pairs):
    data = yaml.safe_load(anchored_card(tmp_path, pairs).read_text())
    data["model"]["kind"] = "diffusion"
    path = tmp_path / "diffusion.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CardError, match="model.source: 'anchored' needs model.kind 'flow'"):
        load_card(path)


@pytest.mark.parametrize("source", ["anchored", "seeded"])
def test_an_anchored_teacher_is_distilled_from_its_anchored_trajectories(tmp_path, pairs, source):
    from parnassus.distill import distill

    data = yaml.safe_load(anchored_card(tmp_path, pairs, source, steps=20).read_text())
    train(load_card(tmp_path / "card.yaml"), progress=False)
    data["sampling"].update(solver="dpmpp2m", steps=4)
    data["distillation"] = {"checkpoint": str(tmp_path / "student"), "student_steps": 2, "events": 32,
                            "validation_events": 16, "steps": 6, "batch_size": 16, "validate_every": 3,
                            "checkpoint_every": 3}
    path = tmp_path / "distill.yaml"
    path.write_text(yaml.safe_dump(data))
    distill(load_card(path), progress=False)
    items = torch.load(tmp_path / "student" / "trajectories.pt", weights_only=False)
    batch, start = items[0]["batch"], items[0]["pfc"][0]  # the teacher's state at t = 1: its source
    paired = batch.anchored
    assert paired.any() and (~paired & batch.pfc_mask).any()
    # a paired candidate starts within a few anchor_noise of its partner, an unpaired one anywhere in N(0, 1)
    distance = (start - batch.anchor).abs().amax(dim=-1)
    assert float(distance[paired].max()) < 8 * 0.1
    # seeded models: a partnerless candidate with a seed (here all) starts within a few seed_noise of the seed's
    # direction; its pT, vertex and charge start in N(0, 1) as for an unseeded one
    assert batch.seeded.any() == (source == "seeded")
    free = batch.seeded if source == "seeded" else ~paired & batch.pfc_mask
    direction = [PARTICLE_FEATURES.index(name) for name in SEED_FEATURES]
    rest = [k for k in range(len(PARTICLE_FEATURES)) if k not in direction]
    distance = (start - batch.anchor).abs()
    assert float(distance[free][:, rest].max()) > 8 * 0.3
    data["generator"]["checkpoint"] = data.pop("distillation")["checkpoint"]
    data["sampling"].update(solver="euler", steps=2)
    path.write_text(yaml.safe_dump(data))
    student = make_generator(load_card(path))
    assert student.model.arch.anchored
    teacher = make_generator(load_card(tmp_path / "card.yaml"))
    # the direction's spread is the card's seed_noise (0.2 in eta and phi) in standardised units, per feature
    spread = torch.tensor(teacher.model.arch.seed_spread) if source == "seeded" else torch.full((3,), float("inf"))
    if source == "seeded":
        std = teacher.norm.pfc_std[direction]
        assert torch.allclose(spread, torch.as_tensor(0.2 / std, dtype=spread.dtype))
    pulls = distance[free][:, direction] / spread
    assert float(distance[free][:, direction].max()) > 8 * 0.1 and float(pulls.max()) < 8
    # the partner (and seed) head, the truth encoder and the slot labels they read are the teacher's (the student
    # draws the same slots); the rest learned
    weights = {name: (value, teacher.model.state_dict()[name]) for name, value in student.model.state_dict().items()}
    frozen = ("pfc.truth.", "pfc.partner.", "pfc.seed.", "pfc.label.")
    assert all(torch.equal(*weights[name]) for name in weights if name.startswith(frozen))
    assert "pfc.label.weight" in weights
    assert any(name.startswith("pfc.seed.") for name in weights) == (source == "seeded")
    assert not torch.equal(*weights["pfc.blocks.0.qkv.weight"])
    run(load_card(path), EXAMPLE, tmp_path / "student.root", max_events=4, progress=False)
    # free_slot_weight: the candidate loss is the weighted mean of the partnered and the free slots' losses
    from parnassus.distill import distillation_losses, student_grid

    # the free slots' first teacher step made one unit longer, so that their loss differs from the partnered ones'
    item = dict(items[0], pfc=items[0]["pfc"].clone())
    item["pfc"][0][~paired & batch.pfc_mask] += 1.0

    def candidate_loss(weight: float) -> float:
        with torch.no_grad():
            return float(distillation_losses(student.model, item, student_grid(2), torch.device("cpu"), weight)[1])

    n_paired, n_free = int(paired.sum()), int((~paired & batch.pfc_mask).sum())
    only_paired, only_free = candidate_loss(1e-9), candidate_loss(1e9)
    assert only_free > 10 * only_paired
    assert candidate_loss(3.0) == pytest.approx((n_paired * only_paired + 3 * n_free * only_free)
                                                / (n_paired + 3 * n_free), rel=1e-4)


def test_a_candidate_without_a_partner_is_seeded_by_the_nearest_truth_particle_within_the_radius():
    truth = features([0.0, -1.0, -2.0], [0.0, 1.0, -1.0], [0.0, 3.1, 1.0], [1, 0, 0])
    radius = anchors.SEED_RADIUS
    pfc = features([-3.0, -3.0, -3.0, 0.0], [0.9 * radius, 1.05, 1.0, 0.0], [0.0, -3.1, -1.0, 0.0], [0, 0, 0, 1])
    partner = np.array([-1, -1, -1, 0])
    # across phi = pi the nearest is the second particle; the third candidate is farther than the radius from all;
    # the fourth has a partner
    assert anchors.event_seeds(truth, pfc, partner).tolist() == [0, 1, -1, -1]
    both = anchors.seeds(np.concatenate([truth, truth]), np.array([0, 3, 6]), np.concatenate([pfc, pfc[:1]]),
                         np.array([0, 4, 5]), np.concatenate([partner, [-1]]))
    assert both.tolist() == [0, 1, -1, -1, 0]


def test_seeded_training_data(pairs):
    truth, pfc = load_pairs([pairs], 400, 400, "seeded")
    _, anchored = load_pairs([pairs], 400, 400, "anchored")
    assert anchored.seed is None and np.array_equal(anchored.pairing, pfc.pairing)
    assert np.all(pfc.seed[pfc.pairing >= 0] == -1) and np.any(pfc.seed >= 0)
    first = pfc.take(np.array([0]))
    batch = make_batch(truth.take(np.array([0])), first, normalisation(truth, pfc), np.random.default_rng(0))
    k = int(np.flatnonzero(first.seed >= 0)[0])
    norm = normalisation(truth, pfc)
    expected = (truth.features[first.seed[k]] - norm.pfc_mean) / norm.pfc_std
    np.testing.assert_allclose(batch.anchor[0, k].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert bool(batch.seeded[0, k]) and not bool(batch.anchored[0, k])
    assert int(batch.seed_label[0, k]) == 1 + first.seed[k]
    # partnered candidates have no seed label; partnerless ones have one, 0 (the global token) when unseeded
    free = ~batch.anchored[0, :len(first.cls)]
    assert torch.all(batch.seed_label[0, :len(first.cls)][~free] == -1)
    assert torch.all(batch.seed_label[0, :len(first.cls)][free] >= 0)
    assert int(batch.seeded.sum()) == int((pfc.seed[:len(first.cls)] >= 0).sum())


def test_seeds_are_drawn_from_each_class_s_categorical_over_the_event_s_truth_tokens():
    from parnassus.generators.neural import NeuralGenerator
    from parnassus.streams import EventRandom

    offsets = np.array([0, 2, 5])  # two events: 2 and 3 truth particles, so 3 and 4 tokens (global first)
    probabilities = np.zeros((7, 5))
    probabilities[[1, 3], 0] = 1.0  # class 0: event 0's first particle; event 1's global token (no seed)
    probabilities[[2, 6], 4] = 1.0  # class 4: event 0's second particle; event 1's third
    probabilities[[0, 4], 1] = [1.0, 0.5]  # class 1: event 1 splits between its first and second particles
    probabilities[5, 1] = 0.5
    slot_event = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    slot_class = np.array([0, 0, 4, 0, 4, 1, 1, 1])
    slot_partner = np.array([1, -1, -1, -1, -1, -1, -1, 3])
    seed = NeuralGenerator._seeds(slot_event, slot_class, slot_partner, probabilities, offsets, EventRandom(1, [0, 1]))
    assert seed[:5].tolist() == [-1, 0, 1, -1, 4]  # flat truth indices; a partnered slot has no seed
    assert set(seed[5:7].tolist()) <= {2, 3} and seed[7] == -1


def test_a_seeded_slot_reads_its_direction_relative_to_its_seed_in_units_of_the_start_spread():
    from parnassus.nn.model import Architecture, Parnassus

    arch = Architecture(kind="flow", dim=16, blocks=1, heads=2, event_dim=16, event_blocks=1, truth_blocks=1,
                        n_particle_features=len(PARTICLE_FEATURES), n_event_features=8, n_classes=5,
                        source="seeded", anchor_noise=0.1, seed_spread=(0.15, 0.3, 0.3))
    pfc = Parnassus(arch).pfc
    generator = torch.Generator().manual_seed(1)
    anchor, noise = (torch.randn(1, 3, len(PARTICLE_FEATURES), generator=generator) for _ in range(2))
    anchored, seeded = torch.tensor([[True, False, False]]), torch.tensor([[False, True, False]])
    slots = pfc.slots(torch.eye(5)[None, :3], anchor, anchored, seeded)
    start = pfc.source(noise, anchor, anchored, seeded)
    direction = [PARTICLE_FEATURES.index(name) for name in SEED_FEATURES]
    rest = [k for k in range(len(PARTICLE_FEATURES)) if k not in direction]
    # the seeded slot (1) starts at its seed's direction plus the spread times its noise, the rest from the noise;
    # the partnered slot (0) at its partner plus anchor_noise times the noise; the free slot (2) at the noise
    assert torch.allclose(start[0, 1, direction], anchor[0, 1, direction] + torch.tensor([0.15, 0.3, 0.3])
                          * noise[0, 1, direction])
    assert torch.equal(start[0, 1, rest], noise[0, 1, rest]) and torch.equal(start[0, 2], noise[0, 2])
    assert torch.allclose(start[0, 0], anchor[0, 0] + 0.1 * noise[0, 0])
    # so at the start the seeded slot's relative direction is its noise; other slots read zeros
    relative = pfc.relative(start, slots)
    assert relative.shape == (1, 3, len(SEED_FEATURES))
    assert torch.allclose(relative[0, 1], noise[0, 1, direction], atol=1e-6)
    assert torch.equal(relative[0, [0, 2]], torch.zeros(2, len(SEED_FEATURES)))
    # and the candidate network's embedding reads it next to the absolute features and the slot description
    assert pfc.embed[0].in_features == len(PARTICLE_FEATURES) + arch.slot_features + len(SEED_FEATURES)


def test_anchored_networks_read_each_truth_particle_s_slot_label(tmp_path, pairs):
    from parnassus.nn.model import Architecture, Parnassus
    from parnassus.train import architecture

    for source, reads in (("gaussian", False), ("anchored", True), ("seeded", True)):
        card = load_card(anchored_card(tmp_path, pairs, source))
        assert architecture(card).partner_tokens is reads and architecture(card).partner_relative is reads
    arch = Architecture(kind="flow", dim=16, blocks=1, heads=2, event_dim=16, event_blocks=1, truth_blocks=1,
                        n_particle_features=len(PARTICLE_FEATURES), n_event_features=8, n_classes=5,
                        source="seeded", partner_tokens=True)
    torch.manual_seed(3)
    model = Parnassus(arch)
    assert torch.equal(model.pfc.label.weight, torch.zeros(6, 16))  # it starts as a model that reads no labels
    for parameter in model.parameters():  # a trained model's: no zero-initialised (identity) layers left
        torch.nn.init.normal_(parameter, std=0.3)
    truth = torch.randn(1, 4, len(PARTICLE_FEATURES) + 5)
    mask, truth_event, pfc_event = torch.ones(1, 4, dtype=torch.bool), torch.randn(1, 8), torch.randn(1, 8)
    x, slots = torch.randn(1, 3, len(PARTICLE_FEATURES)), torch.randn(1, 3, arch.slot_features)
    outputs = []
    for labels in (torch.tensor([[0, 1, 5, 0]]), torch.tensor([[0, 1, 5, 4]])):  # the last particle: none, or a photon
        cache = model.pfc.encode(truth, mask, truth_event, pfc_event, labels)
        outputs.append((model.event.condition(truth, mask, truth_event, labels),
                        model.pfc.seed_logits(cache.tokens, cache.mask, labels),
                        model.pfc(x, torch.full((1,), 0.5), slots, torch.ones(1, 3, dtype=torch.bool), cache),
                        model.pfc.partner_logits(cache.tokens)))
    # the event network, the seed head and the candidates read the labels; the partner head, which draws them, not
    for before, after in zip(outputs[0][:3], outputs[1][:3], strict=True):
        assert not torch.allclose(before, after)
    assert torch.equal(outputs[0][3], outputs[1][3])
    seeds_before, seeds_after = outputs[0][1], outputs[1][1]
    assert torch.equal(seeds_before[:, :4], seeds_after[:, :4])  # only the relabelled token's seed logits move


def test_local_attention_biases_follow_the_delta_r_of_the_slots_anchors():
    from parnassus.nn.model import GLOBAL_WIDTH, LOCAL_WIDTHS, Architecture, Parnassus

    # truth features standardised with mean 0 and std 1 in eta, sin phi and cos phi: the raw values themselves
    arch = Architecture(kind="flow", dim=16, blocks=2, heads=4, event_dim=16, event_blocks=1, truth_blocks=1,
                        n_particle_features=len(PARTICLE_FEATURES), n_event_features=8, n_classes=5, source="seeded",
                        partner_tokens=True, direction_norm=(0.0, 1.0) * 6)
    assert Parnassus(arch.__class__(**{**arch.__dict__, "direction_norm": ()})).pfc.locality is None  # old models
    pfc = Parnassus(arch).pfc
    eta, phi = torch.tensor([0.0, 0.1, 2.0]), torch.tensor([3.1, -3.1, 0.0])  # the first two 0.1 apart, across pi
    truth = torch.zeros(1, 3, len(PARTICLE_FEATURES) + 5)
    truth[0, :, 1], truth[0, :, 2], truth[0, :, 3] = eta, torch.sin(phi), torch.cos(phi)
    slots = torch.zeros(1, 3, arch.slot_features)  # a slot partnered with truth 0, one seeded at truth 2, one free
    slots[0, 0, 5:5 + len(PARTICLE_FEATURES)], slots[0, 0, 5 + len(PARTICLE_FEATURES)] = truth[0, 0, :8], 1.0
    slots[0, 1, 5:5 + len(PARTICLE_FEATURES)], slots[0, 1, 6 + len(PARTICLE_FEATURES)] = truth[0, 2, :8], 1.0
    between, to_truth = pfc.locality.biases(truth, slots, torch.ones(1, 3, dtype=torch.bool),
                                            torch.ones(1, 4, dtype=torch.bool))
    strength = torch.tensor([0.5 / width**2 for width in (*LOCAL_WIDTHS, GLOBAL_WIDTH)])[:, None]
    expected = torch.tensor([0.0, 0.1**2 + (2 * torch.pi - 6.2) ** 2, 4.0 + 3.1**2])  # Delta R^2 from truth 0
    assert between.shape == (1, 4, 3, 3) and to_truth.shape == (1, 4, 3, 4)
    # per head -Delta R^2 / (2 width^2); the global token gets no bias
    assert torch.allclose(to_truth[0, :, 0], -strength * torch.cat([torch.zeros(1), expected]), rtol=1e-4)
    assert torch.allclose(between[0, :, 0, 1], -strength[:, 0] * expected[2], rtol=1e-4)
    assert torch.equal(to_truth[0, :, 2], torch.zeros(4, 4)) and torch.equal(between[0, :, 2], torch.zeros(4, 3))
    # the first head is the most local: the neighbour 0.1 away weighs exp(-0.5 (0.1 / 0.03)^2) of the anchor itself
    assert abs(float(to_truth[0, 0, 0, 2]) + 0.5 * float(expected[1]) / LOCAL_WIDTHS[0] ** 2) < 1e-3
    assert float(to_truth[0, 3, 0, 3]) > -1.0  # the last head nearly global
    # the truth encoder's bias: symmetric, none at the global token
    truth_bias = pfc.truth.locality.truth_bias(truth, torch.ones(1, 4, dtype=torch.bool))
    assert truth_bias.shape == (1, 4, 4, 4) and torch.equal(truth_bias[0, :, 0], torch.zeros(4, 4))
    assert torch.allclose(truth_bias, truth_bias.transpose(-1, -2))
    # padding: no attention to a padded truth particle or candidate slot, but a padded slot still sees itself
    padded_truth, padded_slot = torch.tensor([[True, True, True, False]]), torch.tensor([[True, True, False]])
    between, to_truth = pfc.locality.biases(truth, slots, padded_slot, padded_truth)
    assert torch.isneginf(to_truth[..., 3]).all() and torch.isfinite(to_truth[..., :3]).all()
    assert torch.isneginf(between[:, :, :2, 2]).all() and torch.isfinite(between[:, :, 2, 2]).all()
    assert torch.isneginf(pfc.truth.locality.truth_bias(truth, padded_truth)[..., 3]).all()
    # what a sampler computes once per batch and passes to every step is what a call computes itself; and it is used
    model = Parnassus(arch)
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    mask, labels = torch.ones(1, 3, dtype=torch.bool), torch.tensor([[1, 0, 4]])
    cache = model.pfc.encode(truth, mask, torch.randn(1, 8), torch.randn(1, 8), labels)
    x, t, pfc_mask = torch.randn(1, 3, len(PARTICLE_FEATURES)), torch.full((1,), 0.3), torch.ones(1, 3, dtype=bool)
    masks = model.pfc.attention_masks(slots, pfc_mask, cache)
    itself = model.pfc(x, t, slots, pfc_mask, cache)
    assert torch.equal(model.pfc(x, t, slots, pfc_mask, cache, masks), itself)
    assert not torch.allclose(model.pfc(x, t, slots, pfc_mask, cache, (masks[0], masks[1].flip(-1))), itself)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.pfc.attention_masks(slots, pfc_mask, cache)[0].dtype == torch.bfloat16


def test_partnered_slots_read_their_features_relative_to_their_partner_s():
    from dataclasses import replace

    from parnassus.nn.model import Architecture, Parnassus

    n = len(PARTICLE_FEATURES)
    arch = Architecture(kind="flow", dim=16, blocks=1, heads=2, event_dim=16, event_blocks=1, truth_blocks=1,
                        n_particle_features=n, n_event_features=8, n_classes=5, source="anchored",
                        anchor_noise=0.1, partner_relative=True)
    pfc = Parnassus(arch).pfc
    assert pfc.embed[0].in_features == n + arch.slot_features + n
    assert Parnassus(replace(arch, partner_relative=False)).pfc.embed[0].in_features == n + arch.slot_features
    torch.manual_seed(1)
    anchor, x = torch.randn(n), torch.randn(1, 2, n)
    slots = torch.zeros(1, 2, arch.slot_features)  # slot 0 paired with a truth particle at `anchor`, slot 1 free
    slots[0, 0, 5:5 + n], slots[0, 0, 5 + n] = anchor, 1.0
    relative = pfc.partnered(x, slots)
    assert torch.allclose(relative[0, 0], (x[0, 0] - anchor) / 0.1) and torch.equal(relative[0, 1], torch.zeros(n))
    # the network reads it: a change of the anchor alone (slot description unchanged) moves the velocity
    for parameter in pfc.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    cache = pfc.encode(torch.randn(1, 3, n + 5), torch.ones(1, 3, dtype=torch.bool), torch.randn(1, 8),
                       torch.randn(1, 8))
    t, mask = torch.full((1,), 0.5), torch.ones(1, 2, dtype=torch.bool)
    before = pfc(x, t, slots, mask, cache)
    pfc.arch = replace(arch, anchor_noise=0.2)  # the same slots and x, another scale of the relative input
    assert not torch.allclose(pfc(x, t, slots, mask, cache)[0, 0], before[0, 0])
