"""``parnassus train``: learn a detector from paired events (the card's ``model`` and ``training`` sections).

A plain loop: load the pairs, split train/validation, standardise, then for each step draw a batch (the
order of an epoch is a permutation seeded by (seed, epoch)), draw times and noise (seeded by (seed, step)),
and regress both networks on their targets — flow matching: velocity MSE + cosine term (paper eqs. 3-4);
diffusion: v-prediction MSE; with ``model.source: anchored`` a candidate with a truth partner starts its flow at
the partner's features plus ``anchor_noise`` times the noise, and a cross-entropy term trains each truth particle's
slot (:mod:`parnassus.nn.anchors`); with ``seeded`` also a candidate without a partner starts near its seed truth
particle, and a second cross-entropy term trains the seeds — with AdamW or Lion, a cosine learning-rate schedule
with warm-up, gradient clipping and EMA weights (decay warmed up as min(ema_decay, (1 + step) / (10 + step))).
Losses go to ``training_log.csv``: every step's training loss, and every ``validate_every`` steps the validation loss of
the weights that ship (the EMA; with ema_decay 0 the final weights) on a fixed random sample of the held-out
events. Every ``checkpoint_every`` steps the full state (``state.pt``: weights, optimiser, step, the file
list, the train/validation split and the normalisation) and the EMA model (``model.safetensors``) are
written, so ``--resume`` continues bit-exact on the same split and standardisation (it refuses if the
training files changed).
Several processes (``torchrun``; GPUs, or CPUs with the gloo backend): the model is wrapped in
``DistributedDataParallel``. Every process draws the same global batch of ``batch_size`` events and the same noise
(neither depends on the number of processes), and trains on its shard of the batch's events (rank r: events r,
r + W, ... of the W processes, the split of a ``DistributedSampler`` without its padding, so no event is dropped or
repeated); each process's loss is its share of the global batch's loss (sums over its events divided by the
batch's event and candidate counts), so DDP's averaged gradient is the gradient of the global loss: training
gives the weights of one process with the same ``batch_size``, up to rounding, and ``--resume`` continues with any
number of processes. Rank 0 alone writes the log and the checkpoints.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import glob
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from tqdm import tqdm

from parnassus.card import Card
from parnassus.errors import CardError
from parnassus.io.atomic import atomic_path, make_folder
from parnassus.nn.checkpoint import save_model
from parnassus.nn.data import Batch, load_pairs, make_batch, normalisation
from parnassus.nn.features import EVENT_FEATURES, N_CLASSES, PARTICLE_FEATURES, SEED_FEATURES, Normalisation
from parnassus.nn.model import Architecture, Parnassus
from parnassus.solvers import Objective, sample_time

VALIDATION_EVENTS = 1024  # held-out events whose loss is logged: a fixed random sample of all processes


def training_files(card: Card) -> list[Path]:
    patterns = card.training.files
    files = sorted({Path(f) for p in patterns for f in glob.glob(str(card.path.parent / p))})
    if not files:
        raise CardError(f"{card.path}: training.files: no file matches {', '.join(patterns)}")
    return files


def architecture(card: Card, norm: Normalisation | None = None) -> Architecture:
    """The card's architecture; a seeded model's ``seed_spread`` is the card's ``seed_noise`` (in η and in φ) in
    the standardised units of ``norm``'s candidate features (sin φ and cos φ each get the φ spread: the angle moves
    by about it, the radius is the flow's to undo)."""
    m = card.model
    std = dict(zip(PARTICLE_FEATURES, norm.pfc_std, strict=True)) if norm is not None else {}
    seed_spread = tuple(float(m.seed_noise / std.get(name, 1.0)) for name in SEED_FEATURES)
    anchored = m.source in ("anchored", "seeded")
    direction_norm = ()  # anchored models attend locally around their slots' anchors (model.Locality)
    if anchored and norm is not None:
        columns = [PARTICLE_FEATURES.index(name) for name in ("eta", "sin_phi", "cos_phi")]
        sets = ((norm.truth_mean, norm.truth_std), (norm.pfc_mean, norm.pfc_std))
        direction_norm = tuple(float(v) for mean, sd in sets for column in columns for v in (mean[column], sd[column]))
    return Architecture(kind=m.kind, dim=m.dim, blocks=m.blocks, heads=m.heads, event_dim=m.event_dim,
                        event_blocks=m.event_blocks, truth_blocks=m.truth_blocks,
                        n_particle_features=len(PARTICLE_FEATURES), n_event_features=len(EVENT_FEATURES),
                        n_classes=N_CLASSES, source=m.source, anchor_noise=m.anchor_noise,
                        seed_spread=seed_spread, partner_tokens=anchored, direction_norm=direction_norm,
                        partner_relative=anchored)


def regression_loss(output: torch.Tensor, target: torch.Tensor, kind: str, mask: torch.Tensor | None = None,
                    count: torch.Tensor | int | None = None) -> torch.Tensor:
    """Flow: MSE + (1 - cosine similarity) per token (paper eq. 4); diffusion: MSE on v. The mean over the items
    (the tokens where ``mask``), or their sum divided by ``count`` (a shard's share of a whole batch's mean)."""
    per_item = ((output - target) ** 2).mean(dim=-1)
    if kind == "flow":
        per_item = per_item + 1 - F.cosine_similarity(output, target, dim=-1, eps=1e-8)
    if mask is not None:
        per_item = torch.where(mask, per_item, torch.zeros_like(per_item))
    if count is None:
        count = mask.sum() if mask is not None else per_item.numel()
    return per_item.sum() / torch.as_tensor(count, dtype=per_item.dtype, device=per_item.device).clamp(min=1.0)


def losses(model: Parnassus, batch: Batch, objective: Objective, time_power: float, generator: torch.Generator,
           rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(event-level loss, PFC-level loss) of one batch.

    ``rows``: only these events of the batch are computed; the noise is the one drawn for the whole batch and the
    losses are their share of the whole batch's (the shares of disjoint ``rows`` add up to the batch's losses).
    """
    kind, device = objective.kind, batch.truth.device
    n = batch.truth.shape[0]
    part = batch if rows is None else Batch(*(getattr(batch, name)[rows] for name in batch.__dataclass_fields__))

    def noisy(x0: torch.Tensor, source=lambda noise: noise) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_t, t, target) from the data ``x0`` and the ``source`` made of Gaussian noise."""
        t = sample_time(n, time_power, generator, device=device)
        eps = source(torch.randn(x0.shape, generator=generator, device=device))
        drawn = objective.path.interpolate(x0, eps, t), t, objective.target(x0, eps, t)
        return drawn if rows is None else tuple(x[rows] for x in drawn)

    x_t, t, target = noisy(batch.pfc_event)
    condition = model.event.condition(part.truth, part.truth_mask, part.truth_event, part.truth_label)
    event_loss = regression_loss(model.event(x_t, t, condition), target, kind, count=n)
    x_t, t, target = noisy(batch.pfc, lambda noise: model.pfc.source(noise, batch.anchor, batch.anchored,
                                                                                batch.seeded))
    cache = model.pfc.encode(part.truth, part.truth_mask, part.truth_event, part.pfc_event, part.truth_label)
    output = model.pfc(x_t, t, model.pfc.slots(part.pfc_class, part.anchor, part.anchored, part.seeded), part.pfc_mask,
                       cache)
    pfc_loss = regression_loss(output, target, kind, part.pfc_mask, count=batch.pfc_mask.sum())
    # the truth particles' slots: cross-entropy, a share of the batch's mean over its truth particles
    if model.arch.anchored:
        logits = model.pfc.partner_logits(cache.tokens).float()
        entropy = F.cross_entropy(logits.flatten(0, 1), part.truth_label.flatten(), reduction="none")
        entropy = torch.where(part.truth_mask.flatten(), entropy, torch.zeros_like(entropy))
        pfc_loss = pfc_loss + entropy.sum() / batch.truth_mask.sum().clamp(min=1)
    # the seeds of the candidates without a partner: cross-entropy over the event's truth tokens, per class
    if model.arch.seeded:
        logits = model.pfc.seed_logits(cache.tokens, cache.mask, part.truth_label).float()  # (B, 1 + Lt, classes)
        free = part.seed_label >= 0
        rows, slots = free.nonzero(as_tuple=True)
        per_slot = logits[rows, :, part.pfc_class[rows, slots].argmax(dim=-1)]  # (free slots, 1 + Lt)
        entropy = F.cross_entropy(per_slot, part.seed_label[rows, slots], reduction="sum")
        pfc_loss = pfc_loss + entropy / (batch.seed_label >= 0).sum().clamp(min=1)
    return event_loss, pfc_loss


class _StepLosses(torch.nn.Module):
    """The losses of a training step as one module call, which DistributedDataParallel wraps to synchronise the
    gradients of the model's parameters."""

    def __init__(self, model: Parnassus, objective: Objective, time_power: float):
        super().__init__()
        self.model, self.objective, self.time_power = model, objective, time_power

    def forward(self, batch: Batch, generator: torch.Generator, rows: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return losses(self.model, batch, self.objective, self.time_power, generator, rows)


class Lion(torch.optim.Optimizer):
    """Lion (Chen et al. 2023), the optimiser of the paper: sign of an interpolated momentum."""

    def __init__(self, params, lr: float, betas=(0.9, 0.99), weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                momentum = state["exp_avg"]
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(torch.sign(momentum * beta1 + p.grad * (1 - beta1)), alpha=-group["lr"])
                momentum.mul_(beta2).add_(p.grad, alpha=1 - beta2)


def learning_rate(step: int, card: Card) -> float:
    cfg = card.training
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.min_learning_rate + (cfg.learning_rate - cfg.min_learning_rate) * cosine


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng([seed, 12345]).permutation(n)
    n_validation = max(1, int(round(fraction * n))) if n > 1 else 0
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


def _batch_indices(step: int, n_train: int, batch_size: int, seed: int) -> np.ndarray:
    """Events of training step ``step``: consecutive slices of a per-epoch permutation (seeded)."""
    per_epoch = max(1, n_train // batch_size)
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n_train)
    return order[position * batch_size:(position + 1) * batch_size]


def _world() -> tuple[int, int]:
    """(rank, world size) when launched by torchrun, else (0, 1)."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return 0, 1


def _join(device: torch.device) -> None:
    """Join torchrun's process group: NCCL for GPUs, gloo for CPUs."""
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")


def train(card: Card, output: Path | None = None, resume: bool = False, device: str | None = None,
          progress: bool = True, max_steps: int | None = None) -> Path:
    """Train the card's model on its training files; returns the model folder."""
    if card.model is None or card.training is None:
        raise CardError(f"{card.path}: training needs the 'model' and 'training' sections")
    cfg = card.training
    folder = Path(output) if output is not None else card.generator.checkpoint
    if folder is None:
        raise CardError(f"{card.path}: generator.checkpoint: the folder to write the model to")
    rank, world = _world()
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if world > 1:
        _join(device)
    torch.manual_seed(cfg.seed)

    files = training_files(card)
    make_folder(folder)
    state_file, log_file = folder / "state.pt", folder / "training_log.csv"
    state = None
    if resume:
        if not state_file.exists():
            raise CardError(f"{card.path}: --resume: no training state in {folder}")
        state = torch.load(state_file, map_location=device, weights_only=False)
        stored = state.get("files")
        if stored != [str(f) for f in files]:
            raise CardError(f"{card.path}: --resume: training.files now match other files than the run in {folder} "
                            f"was started with ({len(files)} now, {len(stored or [])} then); start a new run")
    truth, pfc = load_pairs(files, card.model.max_truth, card.model.max_pfc, card.model.source)
    if state is None:
        train_index, validation_index = _split(len(truth), cfg.validation_fraction, cfg.seed)
    else:
        train_index, validation_index = state["train_index"], state["validation_index"]
    train_truth, train_pfc = truth.take(train_index), pfc.take(train_index)
    monitored = np.sort(np.random.default_rng([cfg.seed, 7]).permutation(validation_index)[:VALIDATION_EVENTS])
    validation = (truth.take(monitored), pfc.take(monitored))
    norm = normalisation(train_truth, train_pfc) if state is None else Normalisation.from_dict(state["normalisation"])
    provenance = {"files": [str(f) for f in files], "events": len(truth), "train_events": len(train_index),
                  "validation_events": len(validation_index), "truncated_truth": truth.truncated,
                  "truncated_pfc": pfc.truncated, "max_pfc": card.model.max_pfc, "card": card.name,
                  "model": asdict(card.model), "training": asdict(cfg)}

    model = Parnassus(architecture(card, norm)).to(device)
    ema = copy.deepcopy(model).eval()
    for parameter in ema.parameters():
        parameter.requires_grad_(False)
    optimizer_class = Lion if cfg.optimizer == "lion" else torch.optim.AdamW
    optimizer = optimizer_class(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    objective = Objective(card.model.kind)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
    elif log_file.exists() and rank == 0:
        log_file.unlink()
    steps = cfg.steps if max_steps is None else min(cfg.steps, max_steps)
    step_losses = _StepLosses(model, objective, cfg.time_power)
    if world > 1:
        step_losses = torch.nn.parallel.DistributedDataParallel(step_losses)

    def evaluate() -> tuple[float, float]:
        generator = torch.Generator(device=device).manual_seed(cfg.seed)
        batch = make_batch(*validation, norm, np.random.default_rng(cfg.seed)).to(device)
        with torch.no_grad(), autocast:
            event_loss, pfc_loss = losses(ema, batch, objective, cfg.time_power, generator)
        return float(event_loss), float(pfc_loss)

    began = time.perf_counter()
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=steps, initial=start, disable=not progress or rank > 0, unit="step"))
        handle = stack.enter_context(open(log_file, "a", newline="")) if rank == 0 else None
        log = csv.writer(handle) if handle is not None else None
        if log is not None and start == 0:
            log.writerow(["step", "learning_rate", "event_loss", "pfc_loss", "validation_event_loss",
                          "validation_pfc_loss", "seconds"])
        for step in range(start, steps):
            index = _batch_indices(step, len(train_index), cfg.batch_size, cfg.seed)
            batch = make_batch(train_truth.take(index), train_pfc.take(index), norm,
                               np.random.default_rng([cfg.seed, step, 0])).to(device)
            rows = torch.arange(rank, len(index), world, device=device) if world > 1 else None  # this rank's shard
            generator = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + step * 101)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, card)
            with autocast:
                event_loss, pfc_loss = step_losses(batch, generator, rows)
            optimizer.zero_grad(set_to_none=True)
            ((event_loss + pfc_loss) * world).backward()  # DDP averages the shards' gradients: their sum is wanted
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.gradient_clip)
            optimizer.step()
            decay = min(cfg.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for e, p in zip(ema.parameters(), model.parameters(), strict=True):
                    e.lerp_(p, 1 - decay)
            shares = torch.stack([event_loss.detach().float(), pfc_loss.detach().float()])
            if world > 1:
                torch.distributed.all_reduce(shares)  # the whole batch's losses, for the log
            event_loss, pfc_loss = shares.tolist()
            bar.update(1)
            bar.set_postfix(event=f"{event_loss:.3f}", pfc=f"{pfc_loss:.3f}")
            done = step + 1
            if log is None:
                continue
            validation_losses = evaluate() if done % cfg.validate_every == 0 or done == cfg.steps else ("", "")
            log.writerow([done, learning_rate(step, card), event_loss, pfc_loss, *validation_losses,
                          round(time.perf_counter() - began, 1)])
            if done % cfg.checkpoint_every == 0 or done == steps:
                handle.flush()
                provenance["steps"] = done
                save_model(ema, norm, card, provenance, folder)
                with atomic_path(state_file) as temporary:
                    torch.save({"model": model.state_dict(), "ema": ema.state_dict(),
                                "optimizer": optimizer.state_dict(), "step": done, "files": provenance["files"],
                                "train_index": train_index, "validation_index": validation_index,
                                "normalisation": norm.as_dict()}, temporary)
    if world > 1:
        torch.distributed.barrier()  # every process returns once rank 0 has written the last checkpoint
    return folder
