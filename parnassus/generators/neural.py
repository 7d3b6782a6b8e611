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

With a truth-anchored source (``model.source: anchored``, :mod:`parnassus.nn.anchors`) the event network's class
multiplicities count the candidates without a truth partner; each truth particle's slot ("no candidate" or "a
candidate of class k") is drawn from the PFC network's partner head, a partnered slot starts its flow at the partner's
features plus ``anchor_noise`` times the slot's noise, and pT_rel refers to the truth HT instead of the sampled one.
With ``model.source: seeded`` each slot without a partner draws a seed from the seed head's categorical of its class
(a truth particle, or none), with one uniform number per slot from its event's stream; a seeded slot's direction
starts at the seed's plus ``seed_noise`` (in η and in φ) times its noise, the rest from the noise. The truth
particles' slots are drawn first: models trained since the tenth session (``Architecture.partner_tokens``) sample the
event quantities, the seeds and the candidates *given* them (the labels "no candidate" / "a candidate of class k" of
every truth particle), as training conditions them on refsim's pairing -- so a candidate can carry the energy of a
neighbour that has no candidate of its own, and a free candidate be seeded where such a neighbour is.

The card's ``sampling.precision: bfloat16`` runs the networks under bf16 autocast (the solver's state stays
float32); ``auto`` does so where the device has bf16 arithmetic (GPUs, CPUs with AVX512-BF16 or AMX). On an
accelerator inputs go through pinned memory, and a group of events that runs out of device memory is split in
halves (down to :data:`ROW_STEP` events) and retried; the smaller size is kept for the rest of the run
(``max_rows``). The same code runs on the CPU (autocast and the back-off included), which is how it is tested.
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
from parnassus.nn.data import ParticleSets, particle_sets, truth_inputs, truth_vertices
from parnassus.nn.features import N_CLASSES, counts_from_samples, standardise, unstandardise, vertex_from_features
from parnassus.solvers import Objective, sample
from parnassus.streams import EventRandom

CHARGED_CLASSES = np.array([True, True, True, False, False])
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")
# Network calls see shapes fixed by each event alone, so an event's candidates do not depend on its batch: truth
# sets are padded to a multiple of TRUTH_STEP and candidate slots to one of CANDIDATE_STEP, events of the same
# padded lengths go through the networks together, their number padded to a multiple of ROW_STEP (matrix
# products of fewer, or of an odd number of, rows round differently on CPU). Grouping by size also saves the
# padding of every event to the batch's largest one.
TRUTH_STEP = 64  # measured on 500 ttbar events (2 cores): 16/16 48 events/s, 32/32 66, 64/32 85, 64/64 81, 128/32 71
CANDIDATE_STEP = 32
ROW_STEP = 4


def padded_length(sizes: np.ndarray, step: int) -> np.ndarray:
    """The padded length of sets of ``sizes`` elements: the next multiple of ``step`` (at least one step)."""
    return np.maximum(-(-np.asarray(sizes) // step), 1) * step


def same_shape(keys: np.ndarray) -> list[np.ndarray]:
    """Indices of the events that share each key (rows of ``keys``), in input order within each group."""
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    return np.split(order, np.cumsum(np.bincount(inverse))[:-1])


def padded_rows(group: np.ndarray) -> np.ndarray:
    """``group`` followed by copies of its first event, up to a multiple of :data:`ROW_STEP` rows."""
    return np.concatenate([group, np.full(-len(group) % ROW_STEP, group[0])])


def ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(start, stop)`` for each pair."""
    sizes = stops - starts
    return np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes) + np.arange(sizes.sum())


def padded_labels(labels: np.ndarray, offsets: np.ndarray, rows: np.ndarray, length: int) -> np.ndarray:
    """(len(rows), length) the slot labels (flat, by ``offsets``) of the truth particles of the events at ``rows``,
    each event's padded with 0 to ``length``."""
    sizes = offsets[rows + 1] - offsets[rows]
    padded = np.zeros((len(rows), length), dtype=np.int64)
    padded[np.arange(length)[None, :] < sizes[:, None]] = labels[ranges(offsets[rows], offsets[rows + 1])]
    return padded


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


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` does bf16 arithmetic in hardware: a CUDA GPU that supports it, a CPU with AVX512-BF16 or
    AMX. torch tells the CPU's only through private functions, looked up here so that a torch without them just
    gives False (float32: slower, never wrong)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return any(getattr(torch.cpu, name, lambda: False)()
                   for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """The card's ``sampling.precision`` on ``device``: ``auto`` is bfloat16 where :func:`native_bf16`, else
    float32."""
    if precision == "auto":
        return "bfloat16" if native_bf16(device) else "float32"
    return precision


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
        self.precision = resolve_precision(card.sampling.precision, self.device)
        self.autocast = self.precision == "bfloat16"
        self.max_rows = -(-card.sampling.batch_size // ROW_STEP) * ROW_STEP  # halved on out-of-memory

    @torch.inference_mode()
    def __call__(self, batch: TruthBatch, seed: int) -> ak.Array:
        n_events = len(batch)
        rng = EventRandom(seed, batch.index)  # noise drawn per event on the CPU: the same for any batch or device
        p = batch.particles
        vertex = truth_vertices(p.charge, p.x, p.y, p.z)
        sets = particle_sets(p.pt, p.eta, p.phi, p.x, p.y, p.z, p.charge, p.cls, self.max_truth, vertex)
        truth_length = padded_length(np.diff(sets.offsets), TRUTH_STEP)

        n_event_features = len(self.norm.event_mean)
        noise = rng.standard_normal(np.repeat(np.arange(n_events), n_event_features), np.float32)
        noise = noise.reshape(n_events, n_event_features)
        truth_groups = same_shape(truth_length)  # events of the same padded truth length, in input order
        in_group = np.zeros(n_events, dtype=np.int64)  # each event's row within its group
        for group in truth_groups:
            in_group[group] = np.arange(len(group))
        partner, encoded, seed_probabilities = np.zeros(0, np.int64), {}, None
        if self.model.arch.anchored:  # the truth particles' slots first: the event network may read them
            partner, encoded, seed_probabilities = self._partners(sets, truth_groups, truth_length, in_group, rng)
            sets.pairing = partner
        raw = np.zeros((n_events, n_event_features))
        for group in truth_groups:
            length = int(truth_length[group[0]])
            raw[group] = self._in_chunks(padded_rows(group), lambda rows, length=length: self._event_quantities(
                sets.take(rows), length, noise[rows]))[:len(group)]
        counts = counts_from_samples(raw[:, 3:])  # anchored models: the candidates without a truth partner
        slot_event, slot_class, slot_partner, totals = self._slots(counts, sets, partner)
        slot_seed = np.full(len(slot_event), -1, dtype=np.int64)
        if seed_probabilities is not None:
            slot_seed = self._seeds(slot_event, slot_class, slot_partner, seed_probabilities, sets.offsets, rng)
        n_features = len(self.norm.pfc_mean)
        slot_noise = rng.standard_normal(np.repeat(np.arange(n_events), totals * n_features), np.float32)
        slot_noise = slot_noise.reshape(-1, n_features)
        paired, seeded = slot_partner >= 0, slot_seed >= 0
        slot_anchor = np.zeros_like(slot_noise)
        anchors = np.where(paired, slot_partner, slot_seed)
        slot_anchor[paired | seeded] = standardise(sets.features[anchors[paired | seeded]], self.norm.pfc_mean,
                                                   self.norm.pfc_std)

        offsets = np.concatenate([[0], np.cumsum(totals)])
        features = np.zeros((offsets[-1], n_features))
        pfc_length = padded_length(totals, CANDIDATE_STEP)
        for group in same_shape(np.stack([truth_length, pfc_length], axis=1)):
            lengths = int(truth_length[group[0]]), int(pfc_length[group[0]])

            def candidates(rows: np.ndarray, lengths: tuple[int, int] = lengths) -> np.ndarray:
                slots = ranges(offsets[rows], offsets[rows + 1])
                truth = None
                if lengths[0] in encoded:
                    index = torch.from_numpy(in_group[rows]).to(self.device)
                    truth = tuple(tensor[index] for tensor in encoded[lengths[0]])
                return self._candidates(sets.take(rows), lengths[0], raw[rows], totals[rows], lengths[1],
                                        slot_class[slots], slot_anchor[slots], paired[slots], seeded[slots],
                                        slot_noise[slots], truth)

            x = self._in_chunks(padded_rows(group), candidates)
            features[ranges(offsets[group], offsets[group + 1])] = x[:offsets[group + 1].sum() - offsets[group].sum()]
        ht = np.exp(sets.events[:, 2] if self.model.arch.anchored else raw[:, 2])  # what the pT_rel refer to
        return self._decode(features, slot_class, totals, ht, vertex)

    def _partners(self, sets: ParticleSets, truth_groups: list[np.ndarray], truth_length: np.ndarray,
                  in_group: np.ndarray, rng: EventRandom
                  ) -> tuple[np.ndarray, dict[int, tuple[torch.Tensor, torch.Tensor]], np.ndarray | None]:
        """Anchored models: for each truth particle (flat), 0 or 1 + the class of the candidate it gets, drawn from
        the network's categorical with one uniform number per truth particle from its event's stream; per padded
        truth length (``truth_groups``: the events of each; ``in_group``: each event's row in its group), the
        encoded truth tokens and their mask of its events in group order, which the candidate pass reuses; and for
        seeded models the (tokens, classes) seed probabilities of each event's truth tokens (flat, the global token
        "no seed" first in each event) given the drawn slots, else None."""
        sizes = np.diff(sets.offsets)
        uniform = rng.random(np.repeat(np.arange(len(sizes)), sizes))
        labels = np.zeros(len(uniform), dtype=np.int64)
        token_offsets = sets.offsets + np.arange(len(sets.offsets))
        seeds = np.zeros((token_offsets[-1], N_CLASSES)) if self.model.arch.seeded else None
        encoded = {}
        for group in truth_groups:
            length = int(truth_length[group[0]])
            chunks: list[tuple[torch.Tensor, torch.Tensor]] = []
            probabilities = self._in_chunks(padded_rows(group), lambda rows, length=length, chunks=chunks:
                                            self._partner_probabilities(sets.take(rows), length, chunks)
                                            )[:sizes[group].sum()]
            encoded[length] = tuple(torch.cat(parts)[:len(group)] for parts in zip(*chunks, strict=True))
            flat = ranges(sets.offsets[group], sets.offsets[group + 1])
            cumulative = np.cumsum(probabilities, axis=1)
            labels[flat] = np.minimum((uniform[flat, None] >= cumulative).sum(axis=1), N_CLASSES)
            if seeds is not None:
                tokens = ranges(token_offsets[group], token_offsets[group + 1])
                seeds[tokens] = self._in_chunks(padded_rows(group), lambda rows, length=length: (
                    self._seed_probabilities(encoded[length], in_group[rows],
                                             padded_labels(labels, sets.offsets, rows, length))))[:len(tokens)]
        return labels, encoded, seeds

    def _partner_probabilities(self, truth: ParticleSets, length: int,
                               encoded: list[tuple[torch.Tensor, torch.Tensor]]) -> np.ndarray:
        """(truth particles, 1 + classes) probabilities of each truth particle's slot (flat, event by event); the
        encoded truth tokens and their mask are appended to ``encoded``."""
        tokens, mask, truth_event = self._tensors(*truth_inputs(truth, self.norm, length))
        with self._precision():
            tokens_mask = self.model.pfc.truth(tokens, mask, truth_event)
            logits = self.model.pfc.partner_logits(tokens_mask[0])
        encoded.append(tokens_mask)
        return torch.softmax(logits.float(), dim=-1)[mask].cpu().numpy().astype(np.float64)

    def _seed_probabilities(self, encoded: tuple[torch.Tensor, torch.Tensor], rows: np.ndarray, labels: np.ndarray
                            ) -> np.ndarray:
        """Seeded models: the (tokens, classes) seed probabilities of the truth tokens (global token first) of the
        events at ``rows`` of a group's ``encoded`` tokens, given their truth particles' slot ``labels`` (padded)."""
        index, (labels_t,) = torch.from_numpy(rows).to(self.device), self._tensors(labels)
        tokens, mask = (tensor[index] for tensor in encoded)
        with self._precision():
            logits = self.model.pfc.seed_logits(tokens, mask, labels_t)
        return torch.softmax(logits.float(), dim=1)[mask].cpu().numpy().astype(np.float64)

    @staticmethod
    def _seeds(slot_event: np.ndarray, slot_class: np.ndarray, slot_partner: np.ndarray, probabilities: np.ndarray,
               offsets: np.ndarray, rng: EventRandom) -> np.ndarray:
        """Seeded models: the flat truth index of each slot's seed (-1: a partner, or no seed), drawn for each slot
        without a partner from its class's categorical over its event's truth tokens (``probabilities``, global
        token first), with one uniform number per such slot from its event's stream."""
        seed = np.full(len(slot_event), -1, dtype=np.int64)
        free = np.flatnonzero(slot_partner < 0)
        event, cls = slot_event[free], slot_class[free]
        uniform = rng.random(event)
        token_offsets = offsets + np.arange(len(offsets))
        token_event = np.repeat(np.arange(len(offsets) - 1), np.diff(token_offsets))
        for k in np.unique(cls):
            cumulative = np.cumsum(probabilities[:, k])
            before = np.concatenate([[0.0], cumulative])[token_offsets[:-1]]
            # each event's cumulative probabilities run from its index to its index + 1: one sorted array for all
            cumulative = cumulative - before[token_event] + token_event
            slots = np.flatnonzero(cls == k)
            token = np.searchsorted(cumulative, event[slots] + uniform[slots], side="right")
            token = np.clip(token, token_offsets[event[slots]], token_offsets[event[slots] + 1] - 1)
            within = token - token_offsets[event[slots]]  # 0: the global token, no seed
            seed[free[slots]] = np.where(within > 0, offsets[event[slots]] + within - 1, -1)
        return seed

    def _slots(self, counts: np.ndarray, sets: ParticleSets, partner: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(event, class, flat truth partner or -1) of every candidate slot, event by event (slots with a partner
        first, in the truth set's pT order, then those without, by class), and the slots per event. An event
        asking for more than the model's maximum is truncated (counted): slots without a partner go first,
        from the most populated class, then the partnered slots of the softest truth particles."""
        n_events = len(counts)
        paired_flat = np.flatnonzero(partner > 0)
        paired_event = np.repeat(np.arange(n_events), np.diff(sets.offsets))[paired_flat]
        n_paired = np.bincount(paired_event, minlength=n_events)
        over = counts.sum(axis=1) + n_paired > self.max_pfc
        self.truncated += int(over.sum())
        while over.any():  # take candidates away from the most populated class until at the maximum
            counts[over, counts[over].argmax(axis=1)] -= 1
            over = (counts.sum(axis=1) + n_paired > self.max_pfc) & (counts.sum(axis=1) > 0)
        rank = np.arange(len(paired_event)) - np.concatenate([[0], np.cumsum(n_paired)[:-1]])[paired_event]
        keep = rank < self.max_pfc
        paired_flat, paired_event = paired_flat[keep], paired_event[keep]
        free_event = np.repeat(np.arange(n_events), counts.sum(axis=1))
        free_class = np.repeat(np.tile(np.arange(N_CLASSES), n_events), counts.ravel())
        event = np.concatenate([paired_event, free_event])
        order = np.argsort(event, kind="stable")
        cls = np.concatenate([partner[paired_flat] - 1, free_class])[order]
        truth = np.concatenate([paired_flat, np.full(len(free_event), -1)])[order]
        return event[order], cls, truth, np.bincount(event, minlength=n_events)

    def _in_chunks(self, rows: np.ndarray, run) -> np.ndarray:
        """``run(rows)`` on consecutive chunks of at most ``max_rows`` rows, results concatenated. Out of device
        memory, the chunk is halved (a multiple of ROW_STEP rows, so each event's output stays the same) and
        retried, and ``max_rows`` kept at that size; at ROW_STEP rows the error is raised."""
        results, done = [], 0
        while done < len(rows):
            size = min(self.max_rows, len(rows) - done)
            try:
                results.append(run(rows[done:done + size]))
            except torch.OutOfMemoryError:
                if size <= ROW_STEP:
                    raise
                self.max_rows = max(ROW_STEP, size // 2 // ROW_STEP * ROW_STEP)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            done += size
        return np.concatenate(results)

    def _event_quantities(self, truth: ParticleSets, length: int, noise: np.ndarray) -> np.ndarray:
        """Raw event quantities of events whose truth sets are padded to ``length``."""
        model, objective = self.model, self.objective
        tokens, mask, truth_event = self._tensors(*truth_inputs(truth, self.norm, length))
        with self._precision():
            condition = model.event.condition(tokens, mask, truth_event, self._slot_labels(truth, length))
            events = sample(lambda x, t: objective.velocity(model.event(x, t, condition).float(), x, t),
                            self._tensors(noise)[0], objective.path, self.solver, self.steps)
        return unstandardise(events.cpu().numpy(), self.norm.event_mean, self.norm.event_std)

    def _candidates(self, truth: ParticleSets, truth_length: int, raw: np.ndarray, totals: np.ndarray,
                    length: int, slot_class: np.ndarray, slot_anchor: np.ndarray, paired: np.ndarray,
                    seeded: np.ndarray, noise: np.ndarray, encoded: tuple[torch.Tensor, torch.Tensor] | None = None
                    ) -> np.ndarray:
        """Raw features of the candidate slots (flat, event by event) of events padded to the given lengths, whose
        flows start from ``noise`` (for anchored models, near their partners: :meth:`PFCNet.source`);
        ``encoded``: their truth tokens and mask as the PFC network's truth encoder gave them, if already known."""
        model, objective, norm = self.model, self.objective, self.norm
        tokens, mask, truth_event = self._tensors(*truth_inputs(truth, norm, truth_length))
        slot_mask = np.arange(length)[None, :] < totals[:, None]
        one_hot = np.zeros((len(totals), length, N_CLASSES), dtype=np.float32)
        one_hot[slot_mask] = np.eye(N_CLASSES, dtype=np.float32)[slot_class]
        padded = {}
        for name, values in (("anchor", slot_anchor), ("paired", paired), ("seeded", seeded), ("noise", noise)):
            padded[name] = np.zeros(slot_mask.shape + values.shape[1:], dtype=values.dtype)
            padded[name][slot_mask] = values
        pfc_class, pfc_mask, pfc_event, anchor, anchored, seeded, noise = self._tensors(
            one_hot, slot_mask, standardise(raw, norm.event_mean, norm.event_std), padded["anchor"],
            padded["paired"], padded["seeded"], padded["noise"])
        start = model.pfc.source(noise, anchor, anchored, seeded)
        labels = self._slot_labels(truth, truth_length)
        with self._precision():
            cache = model.pfc.cache(*(encoded or model.pfc.truth(tokens, mask, truth_event)), truth_event, pfc_event,
                                    labels, tokens)
            slots = model.pfc.slots(pfc_class, anchor, anchored, seeded)
            masks = model.pfc.attention_masks(slots, pfc_mask, cache)
            x = sample(lambda x, t: objective.velocity(model.pfc(x, t, slots, pfc_mask, cache, masks).float(), x, t),
                       start, objective.path, self.solver, self.steps)
        return unstandardise(x.cpu().numpy()[slot_mask], norm.pfc_mean, norm.pfc_std)

    def _slot_labels(self, truth: ParticleSets, length: int) -> torch.Tensor | None:
        """Models that read the drawn slots (``partner_tokens``): the slot labels of ``truth`` (its ``pairing``),
        padded to ``length``, on the device; None for the others."""
        if not self.model.arch.partner_tokens:
            return None
        return self._tensors(padded_labels(truth.pairing, truth.offsets, np.arange(len(truth)), length))[0]

    def _precision(self) -> torch.autocast:
        """bf16 autocast of the network calls when the card asks for it (on any device), else a no-op."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast)

    def _tensors(self, *arrays: np.ndarray) -> list[torch.Tensor]:
        """The arrays on the generator's device (through pinned memory, asynchronously, to a CUDA device)."""
        tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
        if self.device.type == "cuda":
            return [t.pin_memory().to(self.device, non_blocking=True) for t in tensors]
        return [t.to(self.device) for t in tensors]

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
