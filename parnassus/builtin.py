"""The cards and models shipped inside the package: ``--card cms2011`` names a built-in card.

The built-in cards are ``parnassus/cards/*.yaml`` and their models ``parnassus/models/<name>/``, package data
of the wheel; in the repository these two folders link to its top-level ``cards/`` and ``models/``, so a card's
checkpoint path (``../models/cms2011-refsim``) holds in both places.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from parnassus.errors import CardError, ParnassusError

if TYPE_CHECKING:
    from parnassus.card import Card

CARD_SUFFIX = ".yaml"


def package_folder(name: str) -> Path:
    """A data folder of the installed package (``cards`` or ``models``), as a path on disk."""
    folder = resources.files("parnassus").joinpath(name)
    if not isinstance(folder, Path):  # imported from a zip: cards name their checkpoints by path
        raise ParnassusError(f"parnassus is installed in a zip archive ({folder}); install it as files "
                             "(pip install) to use its built-in cards")
    return folder


def builtin_cards() -> dict[str, Path]:
    """The built-in detector cards by name (file name without ``.yaml``), sorted; a YAML file without a
    ``generator`` section (the dataset spec) is not a detector card."""
    paths = sorted(package_folder("cards").glob(f"*{CARD_SUFFIX}"))
    return {path.name.removesuffix(CARD_SUFFIX): path for path in paths if _is_detector_card(path)}


def _is_detector_card(path: Path) -> bool:
    """A YAML file is a detector card unless it is a mapping without a ``generator`` section."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return True  # a broken card is still a card: loading it says where it is broken
    return not isinstance(data, dict) or "generator" in data


def resolve_card(value: str | Path) -> Path:
    """The card file ``value`` names: an existing path is that file; otherwise a bare name (``cms2011`` or
    ``cms2011.yaml``) is the built-in card of that name. Anything else is a one-line :class:`CardError` that
    lists the built-in cards."""
    text = str(value)
    path = Path(text)
    if path.exists():
        return path
    cards = builtin_cards()
    bare = path.name == text
    name = text.removesuffix(CARD_SUFFIX)
    if bare and name in cards:
        return cards[name]
    why = "no such file or built-in card" if bare else "no such file"
    raise CardError(f"{text}: cannot read card ({why}; built-in cards: {', '.join(cards)})")


def builtin_name(path: Path) -> str | None:
    """The built-in name of the card file ``path`` if it is one of the shipped cards (by location), else None."""
    resolved = path.resolve()
    return next((name for name, card in builtin_cards().items() if card.resolve() == resolved), None)


def card_version(card: Card) -> dict:
    """What identifies a card's version in the output metadata: its built-in name (None for a user's card) and
    the SHA-256 of its text."""
    return {"builtin": builtin_name(card.path), "sha256": hashlib.sha256(card.text.encode()).hexdigest()}


def model_version(card: Card) -> dict | None:
    """What identifies the model of a card with a checkpoint: its folder, whether it is the package's, and the
    SHA-256 of its weights (None while it has none); None for a card without a checkpoint."""
    folder = card.generator.checkpoint
    if folder is None:
        return None
    from parnassus.nn.checkpoint import WEIGHTS  # imports torch, which a card with a checkpoint uses anyway

    weights = folder / WEIGHTS
    digest = hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else None
    shipped = folder.resolve().parent == package_folder("models").resolve()
    return {"name": folder.name, "builtin": shipped, "sha256": digest}
