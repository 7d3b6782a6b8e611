"""Paired training events (truth particles, reconstructed candidates) read from Delphes-layout ROOT files.

Any file with ``Particle`` and ``ParticleFlowCandidate`` collections works: refsim output, ``run`` output or
converted external data. Events are held as flat feature arrays with offsets (no padding), ordered by pT
within each event; a batch is padded to its own longest event.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import torch
import uproot

from parnassus.errors import InputError, one_line
from parnassus.events import primary_vertices
from parnassus.nn import anchors
from parnassus.nn.features import N_CLASSES, Normalisation, event_features, particle_features, safe_std, standardise
from parnassus.pdg import charge_and_class

# mean of the dequantisation noise added to each class count (none on MET x/y and log HT)
DEQUANTISATION_MEAN = np.concatenate([np.zeros(3), np.full(N_CLASSES, 0.5)])

BRANCHES = [f"Particle.{leaf}" for leaf in ("PT", "Eta", "Phi", "X", "Y", "Z", "PID")] + [
    f"ParticleFlowCandidate.{leaf}" for leaf in ("PT", "Eta", "Phi", "X", "Y", "Z", "Charge", "Class")]


@dataclass
class ParticleSets:
    """Flat per-particle features, class codes and per-event offsets, plus per-event quantities."""

    features: np.ndarray  # (n_particles, n_features), raw (not standardised)
    cls: np.ndarray  # (n_particles,)
    offsets: np.ndarray  # (n_events + 1,)
    events: np.ndarray  # (n_events, n_event_features), raw
    truncated: int = 0
    # anchored models (nn.anchors): for candidates the partner's index in the event's truth set (-1: none), for
    # truth particles 0 (no partner) or 1 + the class of the candidate paired with it; None otherwise
    pairing: np.ndarray | None = None
    # seeded models: for candidates without a partner the seed's index in the event's truth set (-1: none or a
    # partner); None otherwise
    seed: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def take(self, index: np.ndarray) -> ParticleSets:
        starts, stops = self.offsets[index], self.offsets[index + 1]
        sizes = stops - starts
        flat = np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes) + np.arange(sizes.sum())
        return ParticleSets(self.features[flat], self.cls[flat], np.concatenate([[0], np.cumsum(sizes)]),
                            self.events[index], pairing=None if self.pairing is None else self.pairing[flat],
                            seed=None if self.seed is None else self.seed[flat])

    @classmethod
    def concatenate(cls, parts: list[ParticleSets]) -> ParticleSets:
        offsets = [np.zeros(1, dtype=np.int64)]
        total = 0
        for part in parts:
            offsets.append(part.offsets[1:] + total)
            total += part.offsets[-1]
        pairing = None if any(p.pairing is None for p in parts) else np.concatenate([p.pairing for p in parts])
        seed = None if any(p.seed is None for p in parts) else np.concatenate([p.seed for p in parts])
        return cls(np.concatenate([p.features for p in parts]), np.concatenate([p.cls for p in parts]),
                   np.concatenate(offsets), np.concatenate([p.events for p in parts]),
                   sum(p.truncated for p in parts), pairing, seed)


def truth_vertices(charge: ak.Array, x: ak.Array, y: ak.Array, z: ak.Array) -> np.ndarray:
    """(n_events, 3) primary vertex of each event from its truth particles (the origin of the vertex features)."""
    sizes = ak.to_numpy(ak.num(charge))
    event = np.repeat(np.arange(len(sizes)), sizes)
    return primary_vertices(event, *(ak.to_numpy(ak.flatten(a)) for a in (charge, x, y, z)), len(sizes))


def particle_sets(pt: ak.Array, eta: ak.Array, phi: ak.Array, x: ak.Array, y: ak.Array, z: ak.Array,
                  charge: ak.Array, cls: ak.Array, max_particles: int, vertex: np.ndarray,
                  reference_ht: np.ndarray | None = None) -> ParticleSets:
    """Sets ordered by pT and truncated to ``max_particles`` (counted); event quantities from the full sets.
    ``vertex``: (n_events, 3) the truth primary vertex of each event (see :func:`truth_vertices`);
    ``reference_ht``: the HT each event's pT_rel refers to (default: the set's own)."""
    ht = ak.sum(pt, axis=1)
    met_x, met_y = -ak.sum(pt * np.cos(phi), axis=1), -ak.sum(pt * np.sin(phi), axis=1)
    counts = np.stack([ak.to_numpy(ak.sum(cls == k, axis=1)) for k in range(N_CLASSES)], axis=1)
    order = ak.argsort(pt, axis=1, ascending=False)[:, :max_particles]
    truncated = int(ak.sum(ak.num(pt) > max_particles))
    columns = [ak.to_numpy(ak.flatten(a[order])).astype(np.float64) for a in (pt, eta, phi, x, y, z, charge)]
    sizes = ak.to_numpy(ak.num(order))
    event_ht = np.repeat(ak.to_numpy(ht) if reference_ht is None else reference_ht, sizes)
    features = particle_features(*columns, ht=event_ht, vertex=np.repeat(vertex, sizes, axis=0))
    return ParticleSets(features, ak.to_numpy(ak.flatten(cls[order])).astype(np.int64),
                        np.concatenate([[0], np.cumsum(sizes)]),
                        event_features(ak.to_numpy(met_x), ak.to_numpy(met_y), ak.to_numpy(ht), counts), truncated)


def _read_pairs(path: Path) -> ak.Array:
    """The training branches of ``path``; a one-line :class:`InputError` naming the file and the reason if it is
    no readable ROOT file, has no Delphes tree or lacks a branch."""
    try:
        file = uproot.open(path)
    except Exception as error:  # uproot raises many kinds of errors for files that are not ROOT
        raise InputError(f"{path}: not a readable ROOT file ({one_line(error)})") from None
    with file:
        if "Delphes" not in file:
            keys = ", ".join(sorted({key.split(";")[0] for key in file.keys(recursive=False)})) or "none"
            raise InputError(f"{path}: no 'Delphes' tree (not a Delphes-layout file; its keys: {keys})")
        try:
            tree = file["Delphes"]
            missing = [name for name in BRANCHES if name not in tree]
            if missing:
                raise InputError(f"{path}: missing branch {missing[0]} ({len(missing)} missing; the training "
                                 f"needs Particle and ParticleFlowCandidate)")
            return tree.arrays(BRANCHES)
        except InputError:
            raise
        except Exception as error:  # truncated or corrupt baskets
            raise InputError(f"{path}: cannot be read (truncated or corrupt ROOT file: {one_line(error)})"
                             ) from None



def load_pairs(paths: list[Path], max_truth: int, max_pfc: int, source: str = "gaussian"
               ) -> tuple[ParticleSets, ParticleSets]:
    """(truth sets, PFC sets) of every event of ``paths`` for a model with the given ``model.source``. ``anchored``
    and ``seeded`` (:mod:`parnassus.nn.anchors`): the candidates' pT_rel refers to the truth HT, candidates are
    paired with truth particles, and the generated class multiplicities count the candidates without a partner;
    ``seeded``: those get their seeds."""
    anchored = source in ("anchored", "seeded")
    truths, pfcs = [], []
    for path in paths:
        data = _read_pairs(path)
        pid = data["Particle.PID"]
        charge, cls = charge_and_class(ak.to_numpy(ak.flatten(pid)))
        counts = ak.num(pid)
        charge, cls = ak.unflatten(charge, counts), ak.unflatten(cls, counts)
        vertex = truth_vertices(charge, *(data[f"Particle.{leaf}"] for leaf in ("X", "Y", "Z")))
        truth = particle_sets(*(data[f"Particle.{leaf}"] for leaf in ("PT", "Eta", "Phi", "X", "Y", "Z")),
                              charge, cls, max_truth, vertex)
        p = "ParticleFlowCandidate"
        pfc = particle_sets(*(data[f"{p}.{leaf}"] for leaf in ("PT", "Eta", "Phi", "X", "Y", "Z", "Charge")),
                            data[f"{p}.Class"], max_pfc, vertex, np.exp(truth.events[:, 2]) if anchored else None)
        if anchored:
            pair_sets(truth, pfc, seeded=source == "seeded")
        truths.append(truth)
        pfcs.append(pfc)
    return ParticleSets.concatenate(truths), ParticleSets.concatenate(pfcs)


def pair_sets(truth: ParticleSets, pfc: ParticleSets, seeded: bool = False) -> None:
    """Pair the candidates with truth particles (:func:`parnassus.nn.anchors.partners`), in place: both sets'
    ``pairing``, and the candidates' class multiplicities reduced to those without a partner; ``seeded``: the
    candidates' ``seed`` (:func:`parnassus.nn.anchors.seeds`)."""
    pfc.pairing = anchors.partners(truth.features, truth.offsets, pfc.features, pfc.offsets)
    if seeded:
        pfc.seed = anchors.seeds(truth.features, truth.offsets, pfc.features, pfc.offsets, pfc.pairing)
    truth.pairing = anchors.truth_labels(len(truth.features), truth.offsets, pfc.offsets, pfc.pairing, pfc.cls)
    pfc.events[:, 3:] -= anchors.paired_counts(pfc.offsets, pfc.pairing, pfc.cls)


def normalisation(truth: ParticleSets, pfc: ParticleSets) -> Normalisation:
    """Standardisation statistics of the training data; counts get their dequantisation mean (+0.5)."""
    events, truth_events = pfc.events + DEQUANTISATION_MEAN, truth.events + DEQUANTISATION_MEAN
    return Normalisation(truth_mean=truth.features.mean(axis=0), truth_std=safe_std(truth.features),
                         pfc_mean=pfc.features.mean(axis=0), pfc_std=safe_std(pfc.features),
                         event_mean=events.mean(axis=0).astype(np.float32), event_std=safe_std(events),
                         truth_event_mean=truth_events.mean(axis=0).astype(np.float32),
                         truth_event_std=safe_std(truth_events))


def pad(sets: ParticleSets, mean: np.ndarray, std: np.ndarray, length: int | None = None
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(standardised features, class one-hot, mask), each padded to ``length`` (default: the longest set):
    (B, L, ...)."""
    sizes = np.diff(sets.offsets)
    length = length or max(int(sizes.max()) if len(sizes) else 0, 1)
    mask = np.arange(length)[None, :] < sizes[:, None]
    features = np.zeros((len(sizes), length, sets.features.shape[1]), dtype=np.float32)
    features[mask] = standardise(sets.features, mean, std)
    one_hot = np.zeros((len(sizes), length, N_CLASSES), dtype=np.float32)
    one_hot[mask] = np.eye(N_CLASSES, dtype=np.float32)[sets.cls]
    return features, one_hot, mask


@dataclass
class Batch:
    truth: torch.Tensor  # (B, Lt, F + classes)
    truth_mask: torch.Tensor
    truth_event: torch.Tensor  # (B, E) standardised
    pfc: torch.Tensor  # (B, Lp, F) standardised
    pfc_class: torch.Tensor  # (B, Lp, classes)
    pfc_mask: torch.Tensor
    pfc_event: torch.Tensor  # (B, E) standardised, counts dequantised
    anchor: torch.Tensor  # (B, Lp, F) standardised features of each candidate's truth partner (0: none)
    anchored: torch.Tensor  # (B, Lp) whether the candidate has a truth partner
    truth_label: torch.Tensor  # (B, Lt) 0, or 1 + the class of the truth particle's partner
    seeded: torch.Tensor  # (B, Lp) whether the candidate has a seed (seeded models; ``anchor`` holds its features)
    seed_label: torch.Tensor  # (B, Lp) a partnerless candidate's seed token (0: none, 1 + truth index), else -1

    def to(self, device: torch.device) -> Batch:
        return Batch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


def truth_inputs(truth: ParticleSets, norm: Normalisation, length: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth tokens (features ⊕ class one-hot) padded to ``length`` (default: the longest set), mask and
    standardised truth event quantities."""
    features, one_hot, mask = pad(truth, norm.truth_mean, norm.truth_std, length)
    events = truth.events + DEQUANTISATION_MEAN
    return (np.concatenate([features, one_hot], axis=-1), mask,
            standardise(events, norm.truth_event_mean, norm.truth_event_std))


def make_batch(truth: ParticleSets, pfc: ParticleSets, norm: Normalisation, rng: np.random.Generator) -> Batch:
    """A training batch; the class counts of the target are dequantised with uniform noise."""
    truth_tokens, truth_mask, truth_event = truth_inputs(truth, norm)
    features, one_hot, mask = pad(pfc, norm.pfc_mean, norm.pfc_std)
    noise = np.concatenate([np.zeros((len(pfc), 3)), rng.random((len(pfc), N_CLASSES))], axis=1)
    pfc_event = standardise(pfc.events + noise, norm.event_mean, norm.event_std)
    anchor, anchored = np.zeros_like(features), np.zeros_like(mask)
    labels = np.zeros(truth_mask.shape, dtype=np.int64)
    seeded, seed_label = np.zeros_like(mask), np.full(mask.shape, -1, dtype=np.int64)
    event = np.repeat(np.arange(len(pfc)), np.diff(pfc.offsets))
    if pfc.pairing is not None:
        partner = pfc.pairing
        paired = np.zeros_like(mask)
        paired[mask] = partner >= 0
        anchor[paired] = standardise(truth.features[truth.offsets[event] + partner][partner >= 0],
                                     norm.pfc_mean, norm.pfc_std)
        anchored, labels[truth_mask] = paired, truth.pairing
    if pfc.seed is not None:
        seed = pfc.seed
        seeded[mask] = seed >= 0
        anchor[seeded] = standardise(truth.features[truth.offsets[event] + seed][seed >= 0], norm.pfc_mean,
                                     norm.pfc_std)
        seed_label[mask] = np.where(pfc.pairing < 0, seed + 1, -1)
    return Batch(*(torch.from_numpy(np.ascontiguousarray(a)) for a in (
        truth_tokens, truth_mask, truth_event, features, one_hot, mask, pfc_event, anchor, anchored, labels,
        seeded, seed_label)))
