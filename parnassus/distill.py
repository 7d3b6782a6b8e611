"""``parnassus distill``: a few-step student from the card's trained teacher (the ``distillation`` section).

Knowledge distillation on the teacher's own trajectories (Luhman & Luhman 2021, "Knowledge distillation in
iterative generative models"; the K-step form is the last stage of progressive distillation, Salimans & Ho 2022):

1. For ``events`` events of the card's training files, the teacher integrates fresh noise with the card's
   solver and steps — both networks: the event quantities given the truth set, and the candidates given the
   truth set, the event quantities and class slots of the training event — and its state is kept at the
   student's grid times ``1, 1 - 1/K, ..., 0`` (K = ``student_steps``, 1 or 2; the teacher's grid must contain
   them). The trajectories are cached (``trajectories.pt``) so a resumed run does not make them again.
2. The student starts as a copy of the teacher and learns, for Euler with K steps, the velocity that takes the
   teacher's state at each grid time to its state at the next: masked MSE against ``K (x_i - x_{i+1})``.
3. The student is written like a trained model, with ``sampling: {solver: euler, steps: K}`` in its
   provenance: a card must name that sampler to use it (checked on loading). ``state.pt`` (weights,
   optimiser, step) makes ``--resume`` continue where it stopped; the losses go to ``training_log.csv``, the
   validation loss on ``validation_events`` trajectories that are never trained on.

Only flow-matching teachers (``model.kind: flow``) are distilled: their network output is the velocity. An anchored
teacher's candidate trajectories start where its sampling starts them (a candidate with a truth partner near it);
the student keeps the teacher's partner head and the truth encoder it reads (neither is trained: a student whose
encoder had learned the trajectories drew 0.33 more muon slots per ttbar event than its teacher), so it draws the
same slots.
"""

from __future__ import annotations

import copy
import csv
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from parnassus.card import Card
from parnassus.errors import CardError
from parnassus.io.atomic import atomic_path, make_folder
from parnassus.nn.checkpoint import load_model, save_model
from parnassus.nn.data import Batch, ParticleSets, load_pairs, make_batch
from parnassus.nn.model import Parnassus
from parnassus.solvers import Objective, sample
from parnassus.train import training_files

STUDENT_SOLVER = "euler"


def student_grid(steps: int) -> list[float]:
    """Times of the student's Euler grid, from noise (1) to data (0)."""
    return [1.0 - i / steps for i in range(steps + 1)]


def trajectory(velocity, noise: torch.Tensor, objective: Objective, solver: str, steps: int,
               grid: list[float]) -> torch.Tensor:
    """The teacher's states at the times of ``grid`` (``len(grid)`` x noise's shape), integrating ``noise``;
    ``grid`` must be times of the solver's uniform grid of ``steps`` steps (:func:`distill` checks it)."""
    kept: dict[float, torch.Tensor] = {1.0: noise}

    def recording(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        time_now = float(t.reshape(-1)[0]) if t.numel() else 1.0
        for wanted in grid[1:-1]:
            if abs(time_now - wanted) < 1e-6:
                kept[wanted] = x
        return velocity(x, t)

    kept[0.0] = sample(recording, noise, objective.path, solver, steps)
    return torch.stack([kept[t] for t in grid])


def batch_trajectories(teacher: Parnassus, batch: Batch, objective: Objective, solver: str, steps: int,
                       grid: list[float], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's event and candidate trajectories for one batch (its inputs on the teacher's device)."""
    device = batch.truth.device
    condition = teacher.event.condition(batch.truth, batch.truth_mask, batch.truth_event, batch.truth_label)
    noise = torch.randn(batch.pfc_event.shape, generator=generator).to(device)
    event = trajectory(lambda x, t: teacher.event(x, t, condition), noise, objective, solver, steps, grid)
    cache = teacher.pfc.encode(batch.truth, batch.truth_mask, batch.truth_event, batch.pfc_event,
                               batch.truth_label)
    noise = torch.randn(batch.pfc.shape, generator=generator).to(device)
    noise = teacher.pfc.source(noise, batch.anchor, batch.anchored, batch.seeded)  # as in training and sampling
    slots = teacher.pfc.slots(batch.pfc_class, batch.anchor, batch.anchored, batch.seeded)
    masks = teacher.pfc.attention_masks(slots, batch.pfc_mask, cache)
    pfc = trajectory(lambda x, t: teacher.pfc(x, t, slots, batch.pfc_mask, cache, masks), noise, objective,
                     solver, steps, grid)
    return event, pfc


def make_trajectories(teacher: Parnassus, batches: list[Batch], objective: Objective, solver: str, steps: int,
                      grid: list[float], seed: int, device: torch.device, progress: bool) -> list[dict]:
    """For each batch: its inputs and the teacher's event and candidate trajectories (on the CPU)."""
    result = []
    with torch.no_grad():  # not inference mode: the stored tensors are the student's training inputs
        for number, batch in enumerate(tqdm(batches, disable=not progress, unit="batch", desc="teacher")):
            generator = torch.Generator().manual_seed(seed * 1_000_003 + number)
            event, pfc = batch_trajectories(teacher, batch.to(device), objective, solver, steps, grid, generator)
            result.append({"batch": batch, "event": event.cpu(), "pfc": pfc.cpu()})
    return result


def distillation_losses(student: Parnassus, item: dict, grid: list[float], device: torch.device,
                        free_slot_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(event loss, candidate loss): MSE of the student's velocity against the teacher's Euler step targets; the
    candidates without a truth partner (anchored models) weigh ``free_slot_weight`` times a partnered one."""
    batch = item["batch"].to(device)
    event, pfc = item["event"].to(device), item["pfc"].to(device)
    condition = student.event.condition(batch.truth, batch.truth_mask, batch.truth_event, batch.truth_label)
    cache = student.pfc.encode(batch.truth, batch.truth_mask, batch.truth_event, batch.pfc_event,
                               batch.truth_label)
    weight = torch.where(batch.anchored, 1.0, free_slot_weight) if student.arch.anchored else 1.0
    mask = (batch.pfc_mask * weight).to(pfc.dtype)[..., None]
    slots = student.pfc.slots(batch.pfc_class, batch.anchor, batch.anchored, batch.seeded)
    masks = student.pfc.attention_masks(slots, batch.pfc_mask, cache)
    event_loss = pfc_loss = torch.zeros((), device=device)
    for i in range(len(grid) - 1):
        scale = 1.0 / (grid[i] - grid[i + 1])
        t = torch.full((event.shape[1],), grid[i], device=device)
        target = (event[i] - event[i + 1]) * scale
        event_loss = event_loss + ((student.event(event[i], t, condition) - target) ** 2).mean()
        target = (pfc[i] - pfc[i + 1]) * scale
        output = student.pfc(pfc[i], t, slots, batch.pfc_mask, cache, masks)
        pfc_loss = pfc_loss + (((output - target) ** 2) * mask).sum() / (mask.sum() * pfc.shape[-1]).clamp(min=1)
    return event_loss, pfc_loss


def _enough_pairs(card: Card, events: int, seed: int) -> tuple[ParticleSets, ParticleSets]:
    """Paired events of the card's training files, read in a seeded order of the files until there are
    ``events`` of them (or the files run out)."""
    files = training_files(card)
    truths, pfcs = [], []
    for index in np.random.default_rng([seed, 0]).permutation(len(files)):
        truth, pfc = load_pairs([files[index]], card.model.max_truth, card.model.max_pfc, card.model.source)
        truths.append(truth)
        pfcs.append(pfc)
        if sum(len(t) for t in truths) >= events:
            break
    return ParticleSets.concatenate(truths), ParticleSets.concatenate(pfcs)


def learning_rate(step: int, total: int, peak: float, warmup: int = 50) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def distill(card: Card, resume: bool = False, device: str | None = None, progress: bool = True,
            max_steps: int | None = None) -> Path:
    """Distil the card's checkpoint into the student its ``distillation`` section describes; returns its folder."""
    cfg = card.distillation
    if cfg is None or card.model is None or card.training is None:
        raise CardError(f"{card.path}: distillation needs the 'model', 'training' and 'distillation' sections")
    if card.model.kind != "flow":
        raise CardError(f"{card.path}: model.kind: only flow-matching teachers can be distilled (not "
                        f"{card.model.kind!r})")
    if card.sampling.steps % cfg.student_steps:
        raise CardError(f"{card.path}: distillation.student_steps: the teacher's grid ({card.sampling.solver}, "
                        f"{card.sampling.steps} steps) has no state at t = {1 - 1 / cfg.student_steps}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    teacher, norm, metadata = load_model(card, str(device))
    objective = Objective(card.model.kind)
    grid = student_grid(cfg.student_steps)
    folder = cfg.checkpoint
    make_folder(folder)
    state_file, cache_file, log_file = folder / "state.pt", folder / "trajectories.pt", folder / "training_log.csv"
    if resume and not state_file.exists():
        raise CardError(f"{card.path}: --resume: no distillation state in {folder}")
    torch.manual_seed(cfg.seed)

    if cache_file.exists():
        items = torch.load(cache_file, weights_only=False)
    else:
        truth, pfc = _enough_pairs(card, cfg.events + cfg.validation_events, cfg.seed)
        chosen = np.random.default_rng([cfg.seed, 1]).permutation(len(truth))[:cfg.events + cfg.validation_events]
        batches = [make_batch(truth.take(part), pfc.take(part), norm, np.random.default_rng([cfg.seed, 2, k]))
                   for k, part in enumerate(np.array_split(chosen, max(1, len(chosen) // cfg.batch_size)))]
        items = make_trajectories(teacher, batches, objective, card.sampling.solver, card.sampling.steps, grid,
                                  cfg.seed, device, progress)
        with atomic_path(cache_file) as temporary:
            torch.save(items, temporary)
    n_validation = max(1, round(len(items) * cfg.validation_events / (cfg.events + cfg.validation_events)))
    training, validation = items[:-n_validation], items[-n_validation:]

    student = copy.deepcopy(teacher).train()
    for parameter in student.parameters():
        parameter.requires_grad_(True)
    if student.arch.anchored:  # the partner (and seed) heads and the truth encoder (and slot labels) they read stay
        # the teacher's: the same slots
        heads = [student.pfc.truth, student.pfc.partner] + ([student.pfc.seed] if student.arch.seeded else [])
        heads += [student.pfc.label] if student.arch.partner_tokens else []
        for parameter in [p for head in heads for p in head.parameters()]:
            parameter.requires_grad_(False)
    trainable = [parameter for parameter in student.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=0.0)
    start = 0
    if resume:
        state = torch.load(state_file, map_location=device, weights_only=False)
        student.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
    elif log_file.exists():
        log_file.unlink()
    steps = cfg.steps if max_steps is None else min(cfg.steps, max_steps)
    provenance = {**metadata["provenance"], "distilled_from": str(card.generator.checkpoint),
                  "teacher_sampling": {"solver": card.sampling.solver, "steps": card.sampling.steps},
                  "sampling": {"solver": STUDENT_SOLVER, "steps": cfg.student_steps},
                  "distillation": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}}

    def evaluate() -> tuple[float, float]:
        student.eval()
        with torch.no_grad():
            totals = [distillation_losses(student, item, grid, device) for item in validation]
        student.train()
        return tuple(float(sum(t[k] for t in totals) / len(totals)) for k in (0, 1))

    began = time.perf_counter()
    with open(log_file, "a", newline="") as handle, tqdm(total=steps, initial=start, disable=not progress,
                                                          unit="step", desc="student") as bar:
        log = csv.writer(handle)
        if start == 0:
            log.writerow(["step", "learning_rate", "event_loss", "pfc_loss", "validation_event_loss",
                          "validation_pfc_loss", "seconds"])
            log.writerow([0, 0.0, "", "", *evaluate(), 0.0])  # the teacher itself as a K-step sampler
        for step in range(start, steps):
            epoch, position = divmod(step, len(training))
            item = training[np.random.default_rng([cfg.seed, 3, epoch]).permutation(len(training))[position]]
            rate = learning_rate(step, cfg.steps, cfg.learning_rate)
            for group in optimizer.param_groups:
                group["lr"] = rate
            event_loss, pfc_loss = distillation_losses(student, item, grid, device, cfg.free_slot_weight)
            optimizer.zero_grad(set_to_none=True)
            (event_loss + pfc_loss).backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            done = step + 1
            bar.update(1)
            bar.set_postfix(event=f"{event_loss.item():.4f}", pfc=f"{pfc_loss.item():.4f}")
            validation_losses = evaluate() if done % cfg.validate_every == 0 or done == steps else ("", "")
            log.writerow([done, rate, event_loss.item(), pfc_loss.item(), *validation_losses,
                          round(time.perf_counter() - began, 1)])
            if done % cfg.checkpoint_every == 0 or done == steps:
                handle.flush()
                save_model(student.eval(), norm, card, {**provenance, "distillation_steps": done}, folder)
                student.train()
                with atomic_path(state_file) as temporary:
                    torch.save({"model": student.state_dict(), "optimizer": optimizer.state_dict(), "step": done},
                               temporary)
    return folder
