"""The learned generator: event-level quantities first, then that many particle-flow candidates.

1. The event network samples MET x/y, HT and the multiplicity of each class given the truth set.
2. The PFC network samples, for each class slot, log pT_rel, eta, phi, vertex and charge, given the truth
   set and the event quantities; the truth encoding is computed once per batch and reused at every step.
3. The candidates are projected onto the sampled event quantities, which hold by definition in the data
   (HT = sum of pT, MET = minus the vector sum): alternately, their pT are scaled so that they sum to the
   sampled HT, and every candidate's transverse momentum is shifted by its pT share of the difference between
   the sampled missing momentum and minus their vector sum (three rounds; both agree to ~0.1%). This
   compensates for the PFC network's limited precision on the momentum balance of ~100 candidates; the shift
   is a few % of each pT. Eta is clipped to the
   output acceptance and pT raised to the output threshold, so the sampled multiplicity is kept. Events
   asking for more candidates than the model's maximum are truncated and counted.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import torch

from parnassus.card import Card
from parnassus.errors import CardError
from parnassus.events import TruthBatch, make_pfcs, sort_by_pt
from parnassus.generators import device_source
from parnassus.nn.checkpoint import load_model
from parnassus.nn.data import particle_sets, truth_inputs
from parnassus.nn.features import N_CLASSES, counts_from_samples, standardise, unstandardise
from parnassus.solvers import make_path, sample

CHARGED_CLASSES = np.array([True, True, True, False, False])
PROJECTION_ITERATIONS = 3
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def resolve_device(name: str, where: str = "sampling.device", available: bool = True) -> torch.device:
    """The torch device ``name``; a one-line :class:`CardError` naming ``where`` (the card field or the option)
    if it is no device the generator can run on, or (``available``) if this machine does not have it."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise CardError(f"{where}: '{name}' is not a device (cpu, cuda, cuda:N, mps or xpu)")
    if not available or device.type == "cpu":
        return device
    backend = {"cuda": torch.cuda, "mps": torch.backends.mps, "xpu": getattr(torch, "xpu", None)}[device.type]
    if backend is None or not backend.is_available():
        raise CardError(f"{where}: '{name}' requested but this machine has no {device.type} device")
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if device.index is not None and device.index >= count:
        raise CardError(f"{where}: '{name}' requested but this machine has {count} {device.type} device(s)")
    return device


class NeuralGenerator:
    """Samples candidates with the checkpoint the card names (see module docstring)."""

    def __init__(self, card: Card, device: str | None = None):
        self.device = resolve_device(device or card.sampling.device, device_source(card, device))
        self.model, self.norm, self.metadata = load_model(card, str(self.device))
        arch = self.model.arch
        self.path = make_path("linear" if arch.kind == "flow" else "cosine")
        self.kind = arch.kind
        self.solver, self.steps = card.sampling.solver, card.sampling.steps
        self.output = card.output
        self.max_truth = card.truth.max_particles
        self.max_pfc = self.metadata["provenance"].get("max_pfc", 400)
        self.truncated = 0

    def _velocity(self, output: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return output if self.kind == "flow" else self.path.velocity_from_v(output, x, t)

    @torch.inference_mode()
    def __call__(self, batch: TruthBatch, seed: int) -> ak.Array:
        n_events = len(batch)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        p = batch.particles
        sets = particle_sets(p.pt, p.eta, p.phi, p.x, p.y, p.z, p.charge, p.cls, self.max_truth)
        tokens, mask, truth_event = (torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
                                     for a in truth_inputs(sets, self.norm))
        model, norm = self.model, self.norm

        condition = model.event.condition(tokens, mask, truth_event)
        noise = torch.randn(n_events, truth_event.shape[1], generator=generator, device=self.device)
        events = sample(lambda x, t: self._velocity(model.event(x, t, condition), x, t), noise, self.path,
                        self.solver, self.steps)
        raw = unstandardise(events.cpu().numpy(), norm.event_mean, norm.event_std)
        counts = counts_from_samples(raw[:, 3:])
        totals = counts.sum(axis=1)
        over = totals > self.max_pfc
        self.truncated += int(over.sum())
        while over.any():  # take candidates away from the most populated class until at the maximum
            counts[over, counts[over].argmax(axis=1)] -= 1
            over = counts.sum(axis=1) > self.max_pfc
        totals = counts.sum(axis=1)
        length = max(int(totals.max()) if n_events else 0, 1)
        slot_class = np.repeat(np.tile(np.arange(N_CLASSES), n_events), counts.ravel())
        slot_mask = np.arange(length)[None, :] < totals[:, None]
        one_hot = np.zeros((n_events, length, N_CLASSES), dtype=np.float32)
        one_hot[slot_mask] = np.eye(N_CLASSES, dtype=np.float32)[slot_class]
        pfc_class = torch.from_numpy(one_hot).to(self.device)
        pfc_mask = torch.from_numpy(slot_mask).to(self.device)
        pfc_event = torch.from_numpy(standardise(raw, norm.event_mean, norm.event_std)).to(self.device)

        cache = model.pfc.encode(tokens, mask, truth_event, pfc_event)
        noise = torch.randn(n_events, length, len(norm.pfc_mean), generator=generator, device=self.device)
        x = sample(lambda x, t: self._velocity(model.pfc(x, t, pfc_class, pfc_mask, cache), x, t), noise,
                   self.path, self.solver, self.steps)
        features = unstandardise(x.cpu().numpy()[slot_mask], norm.pfc_mean, norm.pfc_std)
        return self._decode(features, slot_class, totals, raw[:, :3])

    def _decode(self, features: np.ndarray, cls: np.ndarray, totals: np.ndarray, event_quantities: np.ndarray
                ) -> ak.Array:
        """Candidates from sampled features, projected onto the sampled MET x/y and HT (see module docstring)."""
        n_events = len(totals)
        event = np.repeat(np.arange(n_events), totals)
        ht = np.exp(event_quantities[:, 2])
        pt = np.exp(np.clip(features[:, 0], -30, 5))
        phi = np.arctan2(features[:, 2], features[:, 3])
        px, py = pt * np.cos(phi), pt * np.sin(phi)
        for _ in range(PROJECTION_ITERATIONS):  # alternate the two projections; both converge within ~0.1%
            scale = ht / np.maximum(np.bincount(event, weights=np.hypot(px, py), minlength=n_events), 1e-12)
            px, py = px * scale[event], py * scale[event]
            share = np.hypot(px, py) / ht[event]
            for column, target in ((px, -event_quantities[:, 0]), (py, -event_quantities[:, 1])):
                column += share * (target - np.bincount(event, weights=column, minlength=n_events))[event]
        pt, phi = np.maximum(np.hypot(px, py), self.output.pt_min), np.arctan2(py, px)
        eta = np.clip(features[:, 1], -self.output.eta_max, self.output.eta_max)
        charge = np.where(CHARGED_CLASSES[cls], np.where(features[:, 7] < 0, -1, 1), 0)
        pfcs = make_pfcs(totals, pt, eta, phi, charge, cls, features[:, 4], features[:, 5], features[:, 6])
        return sort_by_pt(pfcs)
