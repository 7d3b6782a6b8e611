"""Features of the learned generator and their normalisation (paper section III.2).

Per particle (truth and PFC): log pT_rel with pT_rel = pT / HT of its own set, eta, sin phi, cos phi, the
production vertex relative to the event's truth primary vertex (:func:`parnassus.events.primary_vertices` of
the truth particles) as asinh(Δ / 20 µm) per coordinate -- prompt tracks' 20-100 µm structure and decays metres
away both get a useful range, and where the luminous region puts the event drops out -- and the charge (its
sign is taken for charged classes when sampling). The class one-hot is an input, not a generated feature: the
event-level network generates the multiplicity of each class, and the PFC-level network generates the
kinematics of that many candidates of each class. Per event: MET x, MET y, HT and the multiplicity of each of
the 5 classes (the total is their sum); the truth set's own event quantities are an input with their own
standardisation. Multiplicities are generated as continuous values: training adds uniform noise in [0, 1) to
the integer counts (dequantisation) and sampling takes the floor, so every integer keeps its probability and no
rounding artefacts appear.

For a model with a truth-anchored source (:mod:`parnassus.nn.anchors`) the candidates' pT_rel refers to the truth
HT, so a candidate's features and its truth partner's differ only by the detector, and the class multiplicities
count the candidates without a truth partner.

Standardisation statistics (mean, std of every feature) come from the training data and are stored in
the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_CLASSES = 5
PARTICLE_FEATURES = ("log_pt_rel", "eta", "sin_phi", "cos_phi", "asinh_dx", "asinh_dy", "asinh_dz", "charge")
# what a seed gives a candidate without a truth partner (model.source: seeded): its direction, not its pT or vertex
SEED_FEATURES = ("eta", "sin_phi", "cos_phi")
VERTEX_SCALE_MM = 0.02  # the asinh scale of the vertex features
EVENT_FEATURES = ("met_x", "met_y", "log_ht") + tuple(f"n_class{k}" for k in range(N_CLASSES))


@dataclass
class Normalisation:
    """Mean and standard deviation of each feature group."""

    truth_mean: np.ndarray
    truth_std: np.ndarray
    pfc_mean: np.ndarray
    pfc_std: np.ndarray
    event_mean: np.ndarray  # of EVENT_FEATURES of the reconstructed (generated) sets
    event_std: np.ndarray
    truth_event_mean: np.ndarray  # of EVENT_FEATURES of the truth sets (an input)
    truth_event_std: np.ndarray

    def as_dict(self) -> dict[str, list[float]]:
        return {k: np.asarray(v, dtype=np.float64).tolist() for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Normalisation:
        return cls(**{k: np.asarray(v, dtype=np.float32) for k, v in data.items()})


def particle_features(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, x: np.ndarray, y: np.ndarray,
                      z: np.ndarray, charge: np.ndarray, ht: np.ndarray, vertex: np.ndarray) -> np.ndarray:
    """(n, 8) features of flat particles; ``ht`` is the HT of each particle's set (same length as pt) and
    ``vertex`` (n, 3) the primary vertex of its event, in mm."""
    displacement = np.arcsinh((np.stack([x, y, z], axis=1) - vertex) / VERTEX_SCALE_MM)
    return np.column_stack([np.log(np.maximum(pt, 1e-6) / np.maximum(ht, 1e-6)), eta, np.sin(phi), np.cos(phi),
                            displacement, charge]).astype(np.float32)


def vertex_from_features(displacement: np.ndarray, vertex: np.ndarray) -> np.ndarray:
    """(n, 3) production points in mm from the asinh displacement features and each particle's primary vertex."""
    return vertex + np.sinh(displacement) * VERTEX_SCALE_MM


def event_features(met_x: np.ndarray, met_y: np.ndarray, ht: np.ndarray, class_counts: np.ndarray) -> np.ndarray:
    """(n_events, 8) event quantities: MET x, MET y, log HT, multiplicity per class (not yet dequantised)."""
    return np.column_stack([met_x, met_y, np.log(np.maximum(ht, 1e-3)), class_counts]).astype(np.float32)


def counts_from_samples(samples: np.ndarray) -> np.ndarray:
    """Integer class multiplicities from generated continuous values (floor of the dequantised value)."""
    return np.maximum(np.floor(samples), 0).astype(np.int64)


def standardise(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((values - mean) / std).astype(np.float32)


def unstandardise(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return values * std + mean


def safe_std(values: np.ndarray) -> np.ndarray:
    std = np.std(values, axis=0)
    return np.where(std > 1e-6, std, 1.0).astype(np.float32)
