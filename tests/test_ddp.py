"""Distributed training: DistributedDataParallel under torchrun, 2 CPU processes with gloo."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from parnassus.card import load_card
from parnassus.train import train

from .conftest import tiny_card

STEPS = 10
# a batch of 15 events: shards of 8 and 7; a checkpoint after every step, so that any step can be resumed
SETTINGS = {"steps": STEPS, "batch_size": 15, "checkpoint_every": 1, "validate_every": 5}


def torchrun(card: Path, *options: str) -> None:
    """``parnassus train`` in 2 processes on this machine (gloo)."""
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "parnassus", "train", "--card", str(card), "--device", "cpu", "--quiet",
                             *options], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def state(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "state.pt", weights_only=False)["model"]


def log(folder: Path) -> list[dict]:
    with open(folder / "training_log.csv") as handle:
        return list(csv.DictReader(handle))


def seen(name: str, weights: torch.Tensor) -> torch.Tensor:
    """The part of a weight tensor that the model's outputs depend on. A softmax does not see a constant added to
    all its logits: the truth encoder's key bias (the middle third of ``in_proj_bias``) and the seed head's bias
    (the same for every truth token) get gradients of rounding noise only, which Adam's normalisation turns into
    steps that depend on the reduction order, and which change nothing."""
    if name.endswith("self_attn.in_proj_bias"):
        query, _, value = weights.chunk(3)
        return torch.cat([query, value])
    if name == "pfc.seed.bias":
        return weights[:0]
    return weights


def assert_same_training(folder: Path, reference: Path) -> None:
    """The same weights (up to the rounding of other reduction orders) and the same logged losses."""
    a, b = state(folder), state(reference)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(seen(name, a[name]), seen(name, b[name]), rtol=1e-4, atol=2e-5, msg=name)
    ema_a, ema_b = load_file(folder / "model.safetensors"), load_file(reference / "model.safetensors")
    assert all(torch.allclose(seen(k, ema_a[k]), seen(k, ema_b[k]), rtol=1e-4, atol=2e-5) for k in ema_a)
    rows, expected = log(folder), log(reference)
    assert [r["step"] for r in rows] == [str(step) for step in range(1, STEPS + 1)]  # one header, rank 0 alone
    for column in ("event_loss", "pfc_loss"):
        np.testing.assert_allclose([float(r[column]) for r in rows], [float(r[column]) for r in expected],
                                   rtol=1e-4)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, pairs) -> Path:
    """One process, the whole batch of 15 events, 10 steps."""
    folder = tmp_path_factory.mktemp("one")
    card = load_card(tiny_card(folder, pairs, **SETTINGS))
    train(card, progress=False)
    return card.generator.checkpoint


def test_two_processes_train_and_resume_as_one_process(tmp_path, pairs, reference):
    """Steps 1-4 in one process, 5-7 in two (resuming its state), 8-10 in one again (resuming theirs): the weights
    and the log of 10 steps in one process."""
    card = tiny_card(tmp_path, pairs, **SETTINGS)
    train(load_card(card), progress=False, max_steps=4)
    torchrun(card, "--resume", "--max-steps", "7")
    folder = load_card(card).generator.checkpoint
    assert torch.load(folder / "state.pt", weights_only=False)["step"] == 7
    train(load_card(card), progress=False, resume=True)
    assert_same_training(folder, reference)


def test_the_shards_losses_and_gradients_add_up_to_the_whole_batch(pairs, tmp_path):
    """What each process computes: its share of the batch's losses, whose gradients add up to the batch's."""
    from parnassus.nn.data import load_pairs, make_batch, normalisation
    from parnassus.nn.model import Parnassus
    from parnassus.solvers import Objective
    from parnassus.train import architecture, losses

    card = load_card(tiny_card(tmp_path, pairs))
    truth, pfc = load_pairs([pairs], card.model.max_truth, card.model.max_pfc)
    index = np.arange(15)
    batch = make_batch(truth.take(index), pfc.take(index), normalisation(truth, pfc), np.random.default_rng(1))
    torch.manual_seed(0)
    model = Parnassus(architecture(card))
    # away from the zero-initialised output layers: there the output is ~0 and the cosine term's gradient ~1/|output|
    # (1e7 on the output weights), whose float32 sums over shards and over the whole batch differ by 2e-4
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, std=0.1)
    objective = Objective(card.model.kind)

    def run(rows: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        total = sum(losses(model, batch, objective, 1.0, torch.Generator().manual_seed(3), rows))
        total.backward()
        return total.detach(), [p.grad.clone() for p in model.parameters()]

    whole, whole_grad = run(None)
    shards = [run(torch.arange(rank, 15, 2)) for rank in range(2)]
    torch.testing.assert_close(shards[0][0] + shards[1][0], whole)
    for k, grad in enumerate(whole_grad):
        torch.testing.assert_close(shards[0][1][k] + shards[1][1][k], grad, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(shards[0][0], shards[1][0])
