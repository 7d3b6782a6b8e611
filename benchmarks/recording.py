"""Sampling a model over truth events while recording what its generator drew (for the diagnostic benchmarks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

import parnassus.generators.neural as neural
from parnassus.card import load_card
from parnassus.events import RunCounts
from parnassus.generators import make_generator
from parnassus.io.hepmc import HepMCReader

NEEDS = {"anchored": "the model has no truth partners", "seeded": "the model is not seeded"}


def sample_recorded(card_path: Path, truth_path: Path, events: int, needs: str, step: str,
                    record: Callable[..., None]) -> tuple[str, int]:
    """Run the card's learned generator on the first ``events`` events of ``truth_path`` and, for each batch, call
    ``record(sets, drawn, features, cls, totals, ht)``: its truth sets (:class:`parnassus.nn.data.ParticleSets`;
    anchored models set their ``pairing`` to the drawn slot labels), what the generator's method ``step``
    (``"_slots"`` or ``"_seeds"``) returned, and the raw sampled candidate features, classes, slots per event and
    the HT their pT_rel refer to. ``needs``: ``"anchored"`` or ``"seeded"``, which the model must be. Returns the
    card's name and the number of events sampled."""
    card = load_card(card_path)
    generator = make_generator(card)
    if not getattr(generator.model.arch, needs):
        raise SystemExit(f"{card_path}: {NEEDS[needs]} (model.source: {generator.model.arch.source})")
    recorded: dict = {}
    make_sets, draw, decode = neural.particle_sets, getattr(generator, step), generator._decode

    def recording_sets(*args, **kwargs):
        recorded["sets"] = make_sets(*args, **kwargs)
        return recorded["sets"]

    def recording_step(*args):
        recorded["drawn"] = draw(*args)
        return recorded["drawn"]

    def recording_decode(features: np.ndarray, cls: np.ndarray, totals: np.ndarray, ht: np.ndarray, vertex):
        record(recorded["sets"], recorded["drawn"], features, cls, totals, ht)
        return decode(features, cls, totals, ht, vertex)

    neural.particle_sets = recording_sets
    setattr(generator, step, recording_step)
    generator._decode = recording_decode
    n = 0
    try:
        for batch in HepMCReader(truth_path, card.truth, 200, RunCounts(), max_events=events):
            generator(batch, card.sampling.seed)
            n += len(batch)
    finally:
        neural.particle_sets = make_sets
    return card.name, n
