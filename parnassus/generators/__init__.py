"""Generators turn a batch of truth events into particle-flow candidates: ``generator(batch, seed)``."""

from __future__ import annotations

from collections.abc import Callable

import awkward as ak

from parnassus.card import Card
from parnassus.events import TruthBatch

Generator = Callable[[TruthBatch, int], ak.Array]


def make_generator(card: Card, device: str | None = None) -> Generator:
    """The generator the card asks for (``device`` overrides the card's sampling.device)."""
    if card.generator.kind == "parametric":
        from parnassus.generators.parametric import ParametricGenerator

        return ParametricGenerator(card.generator.parametric, card.output)
    if card.generator.kind == "refsim":
        from parnassus.refsim.simulation import ReferenceSimulation

        return ReferenceSimulation(card.generator.refsim, card.output)
    from parnassus.generators.neural import NeuralGenerator

    return NeuralGenerator(card, device)
