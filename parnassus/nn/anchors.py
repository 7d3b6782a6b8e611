"""Truth anchors: the data-dependent source of ``model.source: anchored`` (issue 9, item 3).

With a Gaussian source every candidate's ODE starts from noise, and the network has to place each track on its
truth particle from scratch. With an anchored source a candidate that has a truth partner starts near it: its
source is the partner's features plus ``anchor_noise`` times Gaussian noise (standardised units), so the flow
learns the detector's *change* of the particle (resolution, scale, efficiency of the class) rather than the
particle; candidates without a partner (pileup, merged or split clusters, fakes) start from Gaussian noise as
before.

Training pairs candidates with truth particles event by event by a Hungarian assignment
(:func:`parnassus.assignment.assign`) on

    cost = (Δη² + Δφ²) / MATCH_ANGLE² + (Δ log pT)² / MATCH_LOG_PT²,

allowed only between a charged candidate and a charged particle or a neutral candidate and a neutral particle;
pairs with a cost above :data:`MAX_COST` are no pairs. On refsim ttbar with pileup this pairs 56% of the
charged-hadron candidates (most of the rest are pileup tracks; paired ones: median Δ log pT 0.001, half within
|Δη| 0.0005), 84% of the muons, 58% of the electrons, 56% of the photons and 26% of the neutral hadrons (clusters
merge particles).

Sampling needs partners for the slots too: a head on the truth encoder gives each truth particle a categorical
over "no candidate" and "a candidate of class k" (trained with cross-entropy on the pairs of the training data),
from which each truth particle's slot is drawn; the event network generates the multiplicity of the candidates
*without* a partner in each class, which get Gaussian-noise slots.

``model.source: seeded`` also starts the candidates *without* a partner near the truth (issue 9: the anchored
teacher's partnerless photons above 10 GeV sat at a median ΔR of 0.20 from the nearest truth particle above 1 GeV,
refsim's at 0.069, and 6% of them were isolated, refsim's none). Training gives each such candidate a *seed*: the
truth particle nearest to it in (η, φ), of any class, if within :data:`SEED_RADIUS` (else none). A second head on
the truth encoder gives, per candidate class, a categorical over the event's truth particles and "no seed" (the
global token), trained with cross-entropy on those seeds. Sampling draws each partnerless slot's seed from the
categorical of its class; a seeded slot's direction starts at the seed's η and φ plus Gaussian noise of ``seed_noise``
in each (the card's, in ΔR units; :meth:`PFCNet.source`), its pT, vertex and charge from the noise, as does an
unseeded slot. This is a latent-variable model, p(x | class) = Σ_j P(j | class) p(x | j, class):
the flow learns where a candidate lies *given* its seed, which is where refsim puts merged and split clusters.

The draws are a chain, p(labels | truth) p(event quantities, seeds | truth, labels) p(candidates | truth, labels,
seeds): the event network, the seed head and the candidates' cross-attention read each truth particle's slot label
(``Architecture.partner_tokens``; refsim's pairing in training). Without it (the models before the tenth session)
the seeds and the candidates' energies were drawn independently of which truth particles got a candidate: in 200
QCD 470-600 events, per truth jet (anti-kT 0.5, pT > 50 GeV) the pT of the paired and of the free candidates over
the jet's truth pT correlated at -0.72 in refsim (energy a particle's candidate does not carry is carried by a free
one) and at +0.01 to +0.10 in those models, whose jet response was 0.24 wide against refsim's 0.08.
"""

from __future__ import annotations

import numpy as np

from parnassus.assignment import assign
from parnassus.nn.features import N_CLASSES

MATCH_ANGLE = 0.05  # scale of Δη and Δφ in the matching cost
MATCH_LOG_PT = 0.5  # scale of Δ log pT
MAX_COST = 9.0  # three standard deviations
SEED_RADIUS = 0.4  # a candidate without a partner is seeded by the nearest truth particle within this ΔR
# columns of the particle features (nn.features.PARTICLE_FEATURES) the matching reads
_LOG_PT, _ETA, _SIN, _COS, _CHARGE = 0, 1, 2, 3, 7


def event_partners(truth: np.ndarray, pfc: np.ndarray) -> np.ndarray:
    """For each candidate of one event (rows of raw features), the index of its truth partner in ``truth`` or -1.
    Both sets' log pT features must share the reference (the truth HT)."""
    partner = np.full(len(pfc), -1, dtype=np.int64)
    if len(pfc) == 0 or len(truth) == 0:
        return partner
    dphi = np.arctan2(pfc[:, None, _SIN] * truth[None, :, _COS] - pfc[:, None, _COS] * truth[None, :, _SIN],
                      pfc[:, None, _COS] * truth[None, :, _COS] + pfc[:, None, _SIN] * truth[None, :, _SIN])
    deta = pfc[:, None, _ETA] - truth[None, :, _ETA]
    dpt = pfc[:, None, _LOG_PT] - truth[None, :, _LOG_PT]
    cost = (deta**2 + dphi**2) / MATCH_ANGLE**2 + dpt**2 / MATCH_LOG_PT**2
    allowed = (cost <= MAX_COST) & ((pfc[:, None, _CHARGE] != 0) == (truth[None, :, _CHARGE] != 0))
    rows, cols = assign(cost, allowed, MAX_COST)
    partner[rows] = cols
    return partner


def _delta_r(pfc: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(candidates, truth particles) ΔR from rows of raw features."""
    dphi = np.arctan2(pfc[:, None, _SIN] * truth[None, :, _COS] - pfc[:, None, _COS] * truth[None, :, _SIN],
                      pfc[:, None, _COS] * truth[None, :, _COS] + pfc[:, None, _SIN] * truth[None, :, _SIN])
    return np.hypot(pfc[:, None, _ETA] - truth[None, :, _ETA], dphi)


def event_seeds(truth: np.ndarray, pfc: np.ndarray, partner: np.ndarray) -> np.ndarray:
    """For each candidate of one event, the index of its seed in ``truth`` (the nearest truth particle within
    :data:`SEED_RADIUS`) if it has no partner (``partner`` -1), else -1."""
    seed = np.full(len(pfc), -1, dtype=np.int64)
    free = np.flatnonzero(partner < 0)
    if len(free) == 0 or len(truth) == 0:
        return seed
    delta_r = _delta_r(pfc[free], truth)
    nearest = delta_r.argmin(axis=1)
    seed[free] = np.where(delta_r[np.arange(len(free)), nearest] < SEED_RADIUS, nearest, -1)
    return seed


def seeds(truth_features: np.ndarray, truth_offsets: np.ndarray, pfc_features: np.ndarray, pfc_offsets: np.ndarray,
          partner: np.ndarray) -> np.ndarray:
    """:func:`event_seeds` of every event of flat sets: each candidate's seed index within its event's truth set,
    or -1 (a partner, or no truth particle within :data:`SEED_RADIUS`)."""
    result = np.full(len(pfc_features), -1, dtype=np.int64)
    for event in range(len(pfc_offsets) - 1):
        p0, p1 = pfc_offsets[event], pfc_offsets[event + 1]
        t0, t1 = truth_offsets[event], truth_offsets[event + 1]
        result[p0:p1] = event_seeds(truth_features[t0:t1], pfc_features[p0:p1], partner[p0:p1])
    return result


def partners(truth_features: np.ndarray, truth_offsets: np.ndarray, pfc_features: np.ndarray,
             pfc_offsets: np.ndarray) -> np.ndarray:
    """:func:`event_partners` of every event of flat sets: each candidate's partner index within its event's truth
    set, or -1."""
    result = np.full(len(pfc_features), -1, dtype=np.int64)
    for event in range(len(pfc_offsets) - 1):
        p0, p1 = pfc_offsets[event], pfc_offsets[event + 1]
        t0, t1 = truth_offsets[event], truth_offsets[event + 1]
        result[p0:p1] = event_partners(truth_features[t0:t1], pfc_features[p0:p1])
    return result


def truth_labels(n_truth: int, truth_offsets: np.ndarray, pfc_offsets: np.ndarray, partner: np.ndarray,
                 pfc_class: np.ndarray) -> np.ndarray:
    """For each truth particle (flat): 0 if no candidate is its partner, else 1 + the class of that candidate."""
    labels = np.zeros(n_truth, dtype=np.int64)
    event = np.repeat(np.arange(len(pfc_offsets) - 1), np.diff(pfc_offsets))
    paired = partner >= 0
    labels[truth_offsets[event[paired]] + partner[paired]] = 1 + pfc_class[paired]
    return labels


def paired_counts(pfc_offsets: np.ndarray, partner: np.ndarray, pfc_class: np.ndarray) -> np.ndarray:
    """(n_events, classes): candidates with a partner, per event and class."""
    event = np.repeat(np.arange(len(pfc_offsets) - 1), np.diff(pfc_offsets))
    paired = partner >= 0
    counts = np.zeros((len(pfc_offsets) - 1, N_CLASSES), dtype=np.int64)
    np.add.at(counts, (event[paired], pfc_class[paired]), 1)
    return counts
