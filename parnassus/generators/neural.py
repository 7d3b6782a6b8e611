"""The learned generator: event-level quantities first, then that many particle-flow candidates.

1. The event network samples MET x/y, HT and the multiplicity of each class given the truth set.
2. The PFC network samples, for each class slot, log pT_rel, eta, phi, vertex and charge, given the truth
   set and the event quantities; the truth encoding is computed once per batch and reused at every step.
3. The candidates are taken as sampled: pT = pT_rel x the sampled HT, the vertex relative to the truth
   primary vertex. Nothing forces them onto the sampled HT or MET afterwards: MET, HT and jets are computed
   from the candidates downstream, so the network's own momentum balance is what an analysis sees.
   Candidates outside the output acceptance (pT, |eta|) -- which the training data cannot contain -- are
   dropped and counted (``outside_acceptance``, stored in the output file's counts). Events asking for more
   candidates than the model's maximum are truncated and counted.
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
from parnassus.nn.data import particle_sets, truth_inputs, truth_vertices
from parnassus.nn.features import N_CLASSES, counts_from_samples, standardise, unstandardise, vertex_from_features
from parnassus.solvers import Objective, sample

CHARGED_CLASSES = np.array([True, True, True, False, False])
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
        self.objective = Objective(self.model.arch.kind)
        self.solver, self.steps = card.sampling.solver, card.sampling.steps
        self.output = card.output
        self.max_truth = card.truth.max_particles
        self.max_pfc = int(self.metadata["provenance"]["max_pfc"])  # load_model checked it against the card
        self.truncated = 0
        self.outside_acceptance = 0

    @torch.inference_mode()
    def __call__(self, batch: TruthBatch, seed: int) -> ak.Array:
        n_events = len(batch)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        p = batch.particles
        vertex = truth_vertices(p.charge, p.x, p.y, p.z)
        sets = particle_sets(p.pt, p.eta, p.phi, p.x, p.y, p.z, p.charge, p.cls, self.max_truth, vertex)
        tokens, mask, truth_event = (torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
                                     for a in truth_inputs(sets, self.norm))
        model, norm = self.model, self.norm

        condition = model.event.condition(tokens, mask, truth_event)
        noise = torch.randn(n_events, truth_event.shape[1], generator=generator, device=self.device)
        objective = self.objective
        events = sample(lambda x, t: objective.velocity(model.event(x, t, condition), x, t), noise, objective.path,
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
        x = sample(lambda x, t: objective.velocity(model.pfc(x, t, pfc_class, pfc_mask, cache), x, t), noise,
                   objective.path, self.solver, self.steps)
        features = unstandardise(x.cpu().numpy()[slot_mask], norm.pfc_mean, norm.pfc_std)
        return self._decode(features, slot_class, totals, np.exp(raw[:, 2]), vertex)

    def _decode(self, features: np.ndarray, cls: np.ndarray, totals: np.ndarray, ht: np.ndarray,
                vertex: np.ndarray) -> ak.Array:
        """Candidates from sampled features (see module docstring); ``ht`` and ``vertex`` per event."""
        event = np.repeat(np.arange(len(totals)), totals)
        pt = np.exp(np.clip(features[:, 0], -30, 5)) * ht[event]
        eta, phi = features[:, 1], np.arctan2(features[:, 2], features[:, 3])
        charge = np.where(CHARGED_CLASSES[cls], np.where(features[:, 7] < 0, -1, 1), 0)
        x, y, z = vertex_from_features(features[:, 4:7], vertex[event]).T
        keep = (pt >= self.output.pt_min) & (np.abs(eta) <= self.output.eta_max)
        self.outside_acceptance += int((~keep).sum())
        kept = np.bincount(event[keep], minlength=len(totals))
        pfcs = make_pfcs(kept, *(a[keep] for a in (pt, eta, phi, charge, cls, x, y, z)))
        return sort_by_pt(pfcs)
