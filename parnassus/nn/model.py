"""The two networks of the learned generator (paper Figs. 3 and 4), in plain PyTorch.

* :class:`EventNet` — a ResNet-style MLP on the noisy event quantities, with adaLN-zero conditioning on the
  context c = MLP(time embedding ⊕ pooled truth-set embedding ⊕ truth event quantities).
* :class:`PFCNet` — cross-attention DiT blocks: PFC tokens attend to each other and to the truth tokens, with
  adaLN-zero from c = MLP(time ⊕ truth event quantities ⊕ generated event quantities). The truth tokens are
  encoded once per event (self-attention among themselves, no dependence on the PFC state or time), and
  each block's cross-attention keys/values are computed from that encoding once per event
  (:meth:`PFCNet.encode`) and reused at every ODE step. Truth tokens do not attend to the noisy PFCs: that
  would make them depend on the PFC state and break this reuse.

The networks return the raw network output; the probability path (flow velocity or v-prediction) is chosen
by the caller — the networks do not know which solver integrates them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from parnassus.nn.features import PARTICLE_FEATURES, SEED_FEATURES

# Locality: the widths (Delta R) of the local heads' attention, and of the others (nearly global)
LOCAL_WIDTHS = (0.03, 0.1, 0.3)
GLOBAL_WIDTH = 3.0


@dataclass
class Architecture:
    kind: str  # "flow" (conditional flow matching) or "diffusion" (v-prediction, cosine schedule)
    dim: int
    blocks: int
    heads: int
    event_dim: int
    event_blocks: int
    truth_blocks: int
    n_particle_features: int
    n_event_features: int
    n_classes: int
    # "gaussian", "anchored" (candidates start near their truth partners: nn.anchors) or "seeded" (anchored, and
    # candidates without a partner start near a seed truth particle)
    source: str = "gaussian"
    anchor_noise: float = 0.1  # standard deviation of an anchored source around its partner (standardised units)
    # standard deviation of a seeded source around its seed, per SEED_FEATURES (standardised units; training sets it
    # from the card's seed_noise in eta and phi and the features' spread)
    seed_spread: tuple[float, ...] = (0.3, 0.3, 0.3)
    # anchored models: the event network, the seed head and the candidates' cross-attention read each truth
    # particle's slot label (no candidate, or a candidate of class k: the partner head's draw when sampling,
    # refsim's pairing in training), so a candidate knows which of its truth neighbours have no candidate of their
    # own and whose energy it may carry. False: checkpoints made before it (the labels were not read)
    partner_tokens: bool = False
    # anchored models: attention with a locality bias (:class:`Locality`): a slot with a partner or seed attends to
    # the truth particles and slots near its anchor in (eta, phi), with a fixed width per head. The means and
    # standard deviations of eta, sin phi and cos phi of the truth and then of the candidate features (12 numbers,
    # from the training normalisation), with which the network reads raw directions; empty: no bias (checkpoints
    # before the tenth session)
    direction_norm: tuple[float, ...] = ()
    # anchored models: the candidate network also reads a partnered slot's features relative to its partner's, in
    # units of anchor_noise (:meth:`PFCNet.partnered`): a track's 1% in pT is 0.003 of the standardised log pT,
    # which the network hardly resolves as the difference of two inputs of order one. False: checkpoints before
    # the eleventh session
    partner_relative: bool = False

    @property
    def anchored(self) -> bool:
        return self.source in ("anchored", "seeded")

    @property
    def seeded(self) -> bool:
        return self.source == "seeded"

    @property
    def local(self) -> bool:
        return len(self.direction_norm) > 0

    @property
    def n_labels(self) -> int:
        """Width of the slot-label one-hot the networks read (0 where they read none)."""
        return 1 + self.n_classes if self.partner_tokens else 0

    @property
    def slot_features(self) -> int:
        """Width of a candidate slot's description: class one-hot, and for anchored models its partner's (or
        seed's) features and whether it has a partner (and, seeded models, whether it has a seed)."""
        return self.n_classes + (self.n_particle_features + 1 if self.anchored else 0) + int(self.seeded)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of times in [0, 1]."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = 1000.0 * t.float()[:, None] * frequencies[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.SiLU(), nn.Linear(hidden, outputs))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    if x.dim() == 3:
        shift, scale = shift[:, None, :], scale[:, None, :]
    return x * (1 + scale) + shift


def zero_linear(inputs: int, outputs: int) -> nn.Linear:
    layer = nn.Linear(inputs, outputs)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.to(x.dtype)[..., None]
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class ResidualBlock(nn.Module):
    """LayerNorm → adaLN modulation → MLP, gated (adaLN-zero: the block starts as the identity)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.mlp = mlp(dim, 2 * dim, dim)
        self.ada = nn.Sequential(nn.SiLU(), zero_linear(dim, 3 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.ada(c).chunk(3, dim=-1)
        return x + gate * self.mlp(modulate(self.norm(x), shift, scale))


class FinalLayer(nn.Module):
    def __init__(self, dim: int, outputs: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.ada = nn.Sequential(nn.SiLU(), zero_linear(dim, 2 * dim))
        self.out = zero_linear(dim, outputs)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.ada(c).chunk(2, dim=-1)
        return self.out(modulate(self.norm(x), shift, scale))


class TruthEncoder(nn.Module):
    """Embeds truth tokens (features ⊕ class one-hot) plus one global token; self-attention among them."""

    def __init__(self, arch: Architecture):
        super().__init__()
        d = arch.dim
        self.embed = mlp(arch.n_particle_features + arch.n_classes, d, d)
        self.global_token = mlp(arch.n_event_features, d, d)
        layer = nn.TransformerEncoderLayer(d, arch.heads, 2 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, arch.truth_blocks, enable_nested_tensor=False)
        self.locality = Locality(arch) if arch.local else None

    def forward(self, truth: torch.Tensor, truth_mask: torch.Tensor, truth_event: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.cat([self.global_token(truth_event)[:, None, :], self.embed(truth)], dim=1)
        mask = torch.cat([torch.ones_like(truth_mask[:, :1]), truth_mask], dim=1)
        bias = None
        if self.locality is not None:  # local models: a locality bias between truth particles, per head
            bias = self.locality.truth_bias(truth, mask)
            bias = bias.flatten(0, 1).to(tokens.dtype)  # (B * heads, 1 + Lt, 1 + Lt), as the layers take it
        # the layers as in training (attention by F.scaled_dot_product_attention), not torch's inference "fast
        # path": on the CPU its masked softmax over all truth pairs took 36% of a 2-step student's network time
        fast_path = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            if bias is not None:
                return self.layers(tokens, mask=bias), mask
            return self.layers(tokens, src_key_padding_mask=~mask), mask
        finally:
            torch.backends.mha.set_fastpath_enabled(fast_path)


class EventNet(nn.Module):
    """Velocity (or v) of the event quantities given the truth set (paper Fig. 3)."""

    def __init__(self, arch: Architecture):
        super().__init__()
        d = arch.event_dim
        self.arch = arch
        self.time = mlp(d, d, d)
        self.truth = mlp(arch.n_particle_features + arch.n_classes + arch.n_labels, d, d)
        self.globals = mlp(arch.n_event_features, d, d)
        self.context = mlp(3 * d, d, d)
        self.embed = nn.Linear(arch.n_event_features, d)
        self.blocks = nn.ModuleList(ResidualBlock(d) for _ in range(arch.event_blocks))
        self.final = FinalLayer(d, arch.n_event_features)

    def condition(self, truth: torch.Tensor, truth_mask: torch.Tensor, truth_event: torch.Tensor,
                  labels: torch.Tensor | None = None) -> torch.Tensor:
        """The time-independent part of the context (computed once per event); ``labels`` (B, Lt): each truth
        particle's slot label, read where the architecture has ``partner_tokens``."""
        if self.arch.partner_tokens:
            truth = torch.cat([truth, F.one_hot(labels, self.arch.n_labels).to(truth.dtype)], dim=-1)
        return torch.cat([masked_mean(self.truth(truth), truth_mask), self.globals(truth_event)], dim=-1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        c = self.context(torch.cat([self.time(timestep_embedding(t, self.arch.event_dim)), condition], dim=-1))
        h = self.embed(x)
        for block in self.blocks:
            h = block(h, c)
        return self.final(h, c)


def self_allowed(mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, L, L) which candidate slots each may attend to: the valid ones, and itself (so padding rows stay finite
    and never poison valid rows)."""
    return mask[:, None, None, :] | torch.eye(mask.shape[1], dtype=torch.bool, device=mask.device)


def delta_r2(eta_a: torch.Tensor, phi_a: torch.Tensor, eta_b: torch.Tensor, phi_b: torch.Tensor) -> torch.Tensor:
    """(B, La, Lb) squared Delta R between two sets of directions (B, La) and (B, Lb)."""
    dphi = torch.remainder(phi_a[:, :, None] - phi_b[:, None, :] + math.pi, 2 * math.pi) - math.pi
    return (eta_a[:, :, None] - eta_b[:, None, :]) ** 2 + dphi**2


class Locality(nn.Module):
    """Attention biases -ΔR² / (2 w_h²) per head between the anchors of the candidate slots (their truth partner's or
    seed's direction) and the truth particles, and between anchors (and, in the truth encoder, between truth
    particles): a head can attend to what lies within a few calorimeter cells of a slot's anchor (refsim merges
    photons within ECAL cells of 0.0174 and hadrons within HCAL towers of 0.087, a percent of the features' spread,
    which attention on the features alone hardly resolves). Slots without an anchor and the global truth token get
    no bias. The widths w_h are fixed (ALiBi-like): :data:`LOCAL_WIDTHS`, then nearly global heads; the biases do
    not depend on time or on the blocks, so they are computed once per network call, without gradients."""

    def __init__(self, arch: Architecture):
        super().__init__()
        widths = LOCAL_WIDTHS[:arch.heads - 1] + (GLOBAL_WIDTH,) * max(arch.heads - len(LOCAL_WIDTHS), 1)
        strength = torch.tensor([0.5 / width**2 for width in widths[:arch.heads]])
        norm = torch.tensor(arch.direction_norm, dtype=torch.float32).view(2, 3, 2)  # truth/pfc, eta/sin/cos, mean/std
        self.register_buffer("strength", strength, persistent=False)  # derived from arch: not saved
        self.register_buffer("norm", norm, persistent=False)
        self.n_classes, self.n_features, self.seeded = arch.n_classes, arch.n_particle_features, arch.seeded

    def direction(self, standardised: torch.Tensor, which: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(eta, phi) from standardised features (columns 1-3: eta, sin phi, cos phi) of the truth (0) or candidate
        (1) normalisation."""
        raw = standardised[..., 1:4].float() * self.norm[which, :, 1] + self.norm[which, :, 0]
        return raw[..., 0], torch.atan2(raw[..., 1], raw[..., 2])

    def per_head(self, distance: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """(B, heads, La, Lb) biases -ΔR² / (2 w_h²) from squared distances (B, La, Lb), -inf where not ``allowed``
        (broadcast to them): masked before the heads are spread out, four times less to fill."""
        return -self.strength[None, :, None, None] * distance.masked_fill(~allowed, float("inf"))[:, None]

    @torch.no_grad()
    def biases(self, truth: torch.Tensor, slots: torch.Tensor, pfc_mask: torch.Tensor, truth_mask: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """((B, heads, Lp, Lp) between slot anchors, (B, heads, Lp, 1 + Lt) from slot anchors to the truth tokens),
        0 where a slot has no anchor and at the global token, -inf where attention is not allowed (padding; a slot
        may always attend to itself, :func:`self_allowed`). ``truth``: the truth network input (standardised
        features first); ``slots``: :meth:`PFCNet.slots`; ``truth_mask``: (B, 1 + Lt), the global token first."""
        k, f = self.n_classes, self.n_features
        anchor = slots[..., k:k + f]
        located = slots[..., k + f] > 0.5
        if self.seeded:
            located = located | (slots[..., k + f + 1] > 0.5)
        slot_eta, slot_phi = self.direction(anchor, 1)
        truth_eta, truth_phi = self.direction(truth, 0)
        to_truth = delta_r2(slot_eta, slot_phi, truth_eta, truth_phi) * located[..., None]
        to_truth = F.pad(to_truth, (1, 0))
        between = delta_r2(slot_eta, slot_phi, slot_eta, slot_phi) * (located[:, :, None] & located[:, None, :])
        return (self.per_head(between, self_allowed(pfc_mask)[:, 0]),
                self.per_head(to_truth, truth_mask[:, None, :]))

    @torch.no_grad()
    def truth_bias(self, truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, heads, 1 + Lt, 1 + Lt) the truth encoder's bias between truth particles (none at the global token),
        -inf at padding tokens (``mask``: (B, 1 + Lt), the global token first)."""
        eta, phi = self.direction(truth, 0)
        distance = F.pad(delta_r2(eta, phi, eta, phi), (1, 0, 1, 0))
        return self.per_head(distance, mask[:, None, :])


class CrossAttentionBlock(nn.Module):
    """CA-DiT block: adaLN-zero self-attention, cross-attention to the truth tokens, MLP."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norms = nn.ModuleList(nn.LayerNorm(dim, elementwise_affine=False) for _ in range(3))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.self_out = nn.Linear(dim, dim)
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.cross_out = nn.Linear(dim, dim)
        self.mlp = mlp(dim, 2 * dim, dim)
        self.ada = nn.Sequential(nn.SiLU(), zero_linear(dim, 9 * dim))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        b, h, n, d = x.shape
        return x.transpose(1, 2).reshape(b, n, h * d)

    def keys_values(self, truth_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key, value = self.key_value(truth_tokens).chunk(2, dim=-1)
        return self._split(key), self._split(value)

    def forward(self, x: torch.Tensor, c: torch.Tensor, mask: torch.Tensor, truth_kv: tuple[torch.Tensor, torch.Tensor],
                truth_mask: torch.Tensor, biased: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``biased``: the float masks (B, heads, Lp, Lp) and (B, heads, Lp, 1 + Lt) of the self- and cross-attention
        (:class:`Locality`'s biases, -inf where not allowed) instead of the boolean ones of ``mask`` and
        ``truth_mask``."""
        s1, m1, g1, s2, m2, g2, s3, m3, g3 = self.ada(c)[:, None, :].chunk(9, dim=-1)
        h = self.norms[0](x) * (1 + m1) + s1
        q, k, v = (self._split(part) for part in self.qkv(h).chunk(3, dim=-1))
        allowed = self_allowed(mask) if biased is None else biased[0].to(q.dtype)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        x = x + g1 * self.self_out(self._merge(attended))
        h = self.norms[1](x) * (1 + m2) + s2
        query = self._split(self.query(h))
        allowed = truth_mask[:, None, None, :] if biased is None else biased[1].to(query.dtype)
        attended = F.scaled_dot_product_attention(query, *truth_kv, attn_mask=allowed)
        x = x + g2 * self.cross_out(self._merge(attended))
        h = self.norms[2](x) * (1 + m3) + s3
        return x + g3 * self.mlp(h)


@dataclass
class TruthCache:
    """Everything of the PFC network that depends only on the truth event (reused at every ODE step)."""

    kv: list[tuple[torch.Tensor, torch.Tensor]]
    mask: torch.Tensor
    globals: torch.Tensor
    tokens: torch.Tensor  # the encoded truth tokens (global token first)
    truth: torch.Tensor | None = None  # the truth network input (local models: where the truth particles lie)


class PFCNet(nn.Module):
    """Velocity (or v) of the PFC features given the truth set and the event quantities (paper Fig. 4)."""

    def __init__(self, arch: Architecture):
        super().__init__()
        d = arch.dim
        self.arch = arch
        self.truth = TruthEncoder(arch)
        self.time = mlp(d, d, d)
        self.globals = mlp(2 * arch.n_event_features, d, d)
        self.context = mlp(2 * d, d, d)
        # seeded models also read a seeded slot's direction relative to its seed's, in units of its start's spread;
        # partner_relative ones a partnered slot's features relative to its partner's
        relative = (len(SEED_FEATURES) if arch.seeded else 0) + (arch.n_particle_features if arch.partner_relative
                                                                  else 0)
        self.embed = mlp(arch.n_particle_features + arch.slot_features + relative, d, d)
        self.blocks = nn.ModuleList(CrossAttentionBlock(d, arch.heads) for _ in range(arch.blocks))
        self.final = FinalLayer(d, arch.n_particle_features)
        # anchored models: per truth particle, logits of "no candidate" and "a candidate of class k"
        self.partner = nn.Linear(d, 1 + arch.n_classes) if arch.anchored else None
        # seeded models: per truth token (the global one: "no seed") and candidate class, the logit of seeding a
        # candidate without a partner
        self.seed = nn.Linear(d, arch.n_classes) if arch.seeded else None
        # partner_tokens: an embedding of each truth particle's slot label added to its token after the partner head
        # (zero at the start: the model begins as one that does not read them)
        self.label = nn.Embedding(arch.n_labels, d) if arch.partner_tokens else None
        if self.label is not None:
            nn.init.zeros_(self.label.weight)
        self.locality = Locality(arch) if arch.local else None
        if arch.seeded:  # the columns a seed gives (SEED_FEATURES) and their start spread, 0 on the other features
            self.seed_columns = [PARTICLE_FEATURES.index(name) for name in SEED_FEATURES]
            spread = torch.zeros(len(PARTICLE_FEATURES))
            spread[self.seed_columns] = torch.tensor(arch.seed_spread, dtype=spread.dtype)
            self.register_buffer("direction_spread", spread, persistent=False)  # derived from arch: not saved

    def encode(self, truth: torch.Tensor, truth_mask: torch.Tensor, truth_event: torch.Tensor,
               pfc_event: torch.Tensor, labels: torch.Tensor | None = None) -> TruthCache:
        return self.cache(*self.truth(truth, truth_mask, truth_event), truth_event, pfc_event, labels, truth)

    def cache(self, tokens: torch.Tensor, mask: torch.Tensor, truth_event: torch.Tensor, pfc_event: torch.Tensor,
              labels: torch.Tensor | None = None, truth: torch.Tensor | None = None) -> TruthCache:
        """The :class:`TruthCache` of truth tokens already encoded by :attr:`truth` (with their mask); the
        candidates' cross-attention reads them with their slot ``labels`` (:meth:`labelled`); local models need
        the ``truth`` input they were encoded from."""
        labelled = self.labelled(tokens, labels)
        return TruthCache([block.keys_values(labelled) for block in self.blocks], mask,
                          self.globals(torch.cat([truth_event, pfc_event], dim=-1)), tokens, truth)

    def labelled(self, tokens: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The encoded truth tokens (global token first) plus the embedding of each truth particle's slot label
        (B, Lt), where the architecture has ``partner_tokens``; the tokens themselves otherwise."""
        if self.label is None:
            return tokens
        embedded = self.label(labels).to(tokens.dtype)
        return tokens + torch.cat([torch.zeros_like(embedded[:, :1]), embedded], dim=1)

    def partner_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, Lt, 1 + classes) logits of each truth particle's slot, from the encoded truth tokens."""
        return self.partner(tokens[:, 1:])

    def seed_logits(self, tokens: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """(B, 1 + Lt, classes) logits of seeding a candidate of each class by each truth token (the global token
        first: no seed) given the truth particles' slot ``labels`` (:meth:`labelled`); -inf at padding tokens."""
        logits = self.seed(self.labelled(tokens, labels))
        return logits.masked_fill(~mask[..., None], float("-inf"))

    def start_spread(self, anchored: torch.Tensor, seeded: torch.Tensor) -> torch.Tensor:
        """(B, Lp, F) standard deviation of each slot's start around its anchor, per feature (standardised units);
        0 where the start is the noise itself: ``anchor_noise`` at slots with a truth partner; seeded models: at
        slots with a seed ``seed_spread`` on its direction (:data:`SEED_FEATURES`), 0 on pT, vertex and charge."""
        spread = anchored[..., None] * torch.full((len(PARTICLE_FEATURES),), self.arch.anchor_noise,
                                                  device=anchored.device)
        if self.arch.seeded:
            spread = torch.where(seeded[..., None], self.direction_spread, spread)
        return spread

    def source(self, noise: torch.Tensor, anchor: torch.Tensor, anchored: torch.Tensor, seeded: torch.Tensor
               ) -> torch.Tensor:
        """Where the candidates' flows start: the noise, or for anchored models at the slots with a truth partner
        the partner's standardised features plus ``anchor_noise`` times the noise. Seeded models: at the slots with
        a seed, its direction (:data:`SEED_FEATURES`) plus ``seed_spread`` (per feature) times the noise, the other
        features (pT, vertex, charge) from the noise as for slots without one (:meth:`start_spread`)."""
        if not self.arch.anchored:
            return noise
        spread = self.start_spread(anchored, seeded)
        return torch.where(spread > 0, anchor + spread * noise, noise)

    def relative(self, x: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """(B, Lp, len(SEED_FEATURES)) a seeded slot's direction relative to its seed's (in ``slots``), in units of
        ``seed_spread``; 0 at other slots. At the start it is the slot's noise, at the data end where the candidate
        lies around its seed, on a scale of one: the network need not resolve a ring of ΔR ~0.2 in the absolute
        features, where it is a tenth of their spread."""
        k, f, columns = self.arch.n_classes, self.arch.n_particle_features, self.seed_columns
        seed, seeded = slots[..., k:k + f][..., columns], slots[..., k + f + 1:k + f + 2] > 0.5
        return torch.where(seeded, (x[..., columns] - seed) / self.direction_spread[columns], torch.zeros_like(seed))

    def partnered(self, x: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """(B, Lp, F) a partnered slot's features relative to its partner's (in ``slots``), in units of
        ``anchor_noise``; 0 at other slots. At the start it is the slot's noise; at the data end the detector's
        change of the particle, on a scale the network resolves (a track's pT and direction change by a percent
        of the ``anchor_noise`` the flow starts from)."""
        k, f = self.arch.n_classes, self.arch.n_particle_features
        anchor, paired = slots[..., k:k + f], slots[..., k + f:k + f + 1] > 0.5
        return torch.where(paired, (x - anchor) / self.arch.anchor_noise, torch.zeros_like(x))

    def slots(self, pfc_class: torch.Tensor, anchor: torch.Tensor, anchored: torch.Tensor, seeded: torch.Tensor
              ) -> torch.Tensor:
        """The slot description the network reads: the class one-hot, for anchored models followed by the
        partner's (or seed's) standardised features and a flag (seeded models: and a seed flag)."""
        if not self.arch.anchored:
            return pfc_class
        flags = [anchored[..., None].to(pfc_class.dtype)]
        if self.arch.seeded:
            flags.append(seeded[..., None].to(pfc_class.dtype))
        return torch.cat([pfc_class, anchor, *flags], dim=-1)

    def attention_masks(self, slots: torch.Tensor, pfc_mask: torch.Tensor, cache: TruthCache
                        ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Local models: the float masks of every block's self- and cross-attention (:class:`Locality`'s biases,
        -inf where not allowed); None for the others. They depend on the slots and the truth event only, not on
        ``x`` or time: an ODE solver computes them once and passes them to every :meth:`forward`. Under autocast
        they come in its dtype (the attention's)."""
        if self.locality is None:
            return None
        between, to_truth = self.locality.biases(cache.truth, slots, pfc_mask, cache.mask)
        device = slots.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else between.dtype
        return between.to(dtype), to_truth.to(dtype)

    def forward(self, x: torch.Tensor, t: torch.Tensor, slots: torch.Tensor, pfc_mask: torch.Tensor,
                cache: TruthCache, masks: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``masks``: :meth:`attention_masks` of these slots, if already computed (else computed here)."""
        c = self.context(torch.cat([self.time(timestep_embedding(t, self.arch.dim)), cache.globals], dim=-1))
        inputs = [x, slots, self.relative(x, slots)] if self.arch.seeded else [x, slots]
        if self.arch.partner_relative:
            inputs.append(self.partnered(x, slots))
        h = self.embed(torch.cat(inputs, dim=-1))
        biased = masks if masks is not None else self.attention_masks(slots, pfc_mask, cache)
        for block, kv in zip(self.blocks, cache.kv, strict=True):
            h = block(h, c, pfc_mask, kv, cache.mask, biased)
        return self.final(h, c)


class Parnassus(nn.Module):
    """Both networks, saved and loaded together."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        self.event = EventNet(arch)
        self.pfc = PFCNet(arch)
