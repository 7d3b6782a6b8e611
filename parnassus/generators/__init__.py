"""Generators turn a batch of truth events into particle-flow candidates: ``generator(batch, seed)``.

``seed`` is the run's seed; a generator draws every event's random numbers from that event's own stream
(:class:`parnassus.streams.EventRandom` keyed by ``batch.index``), so its output for an event is the same
whatever batch the event comes in.
"""

from __future__ import annotations

from collections.abc import Callable

import awkward as ak

from parnassus.card import Card
from parnassus.events import TruthBatch

Generator = Callable[[TruthBatch, int], ak.Array]


def device_source(card: Card, device: str | None) -> str:
    """Where a device name came from, for error messages: the option, or the card's sampling.device."""
    return "--device" if device is not None and device != card.sampling.device else f"{card.path}: sampling.device"


def make_generator(card: Card, device: str | None = None) -> Generator:
    """The generator the card asks for (``device`` overrides the card's sampling.device).

    Only the neural generator uses the device (it must exist here); for the others a device name torch does
    not know is still an error (a mistyped option or card field), but torch is imported only to check one
    that is not ``cpu``.
    """
    if card.generator.kind != "neural":
        name = device or card.sampling.device
        if name != "cpu":
            from parnassus.generators.neural import resolve_device

            resolve_device(name, device_source(card, device), available=False)
    if card.generator.kind == "parametric":
        from parnassus.generators.parametric import ParametricGenerator

        return ParametricGenerator(card.generator.parametric, card.output)
    if card.generator.kind == "refsim":
        from parnassus.refsim.simulation import ReferenceSimulation

        return ReferenceSimulation(card.generator.refsim, card.output)
    from parnassus.generators.neural import NeuralGenerator

    return NeuralGenerator(card, device)
