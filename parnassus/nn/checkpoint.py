"""Model folders: ``model.safetensors`` (the EMA weights; with ema_decay 0 the final ones) with metadata that
holds everything needed to use them.

Metadata (JSON under the key ``parnassus``): format version, architecture, feature definitions,
normalisation, the truth and output cuts the model was trained with, and the training-data provenance.
Loading checks a card against it and explains a mismatch in one line.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from parnassus.card import Card
from parnassus.errors import CardError
from parnassus.nn.features import EVENT_FEATURES, PARTICLE_FEATURES, Normalisation
from parnassus.nn.model import Architecture, Parnassus

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"


def cuts_of(card: Card) -> dict:
    return {"truth": dataclasses.asdict(card.truth), "output": dataclasses.asdict(card.output)}


def save_model(model: Parnassus, norm: Normalisation, card: Card, provenance: dict, folder: Path) -> Path:
    """Write the weights and metadata of ``model`` to ``folder/model.safetensors`` (atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format_version": FORMAT_VERSION, "architecture": dataclasses.asdict(model.arch),
        "features": {"particle": list(PARTICLE_FEATURES), "event": list(EVENT_FEATURES)},
        "normalisation": norm.as_dict(), **cuts_of(card), "provenance": provenance,
    }
    tensors = {name: value.detach().contiguous().cpu() for name, value in model.state_dict().items()}
    temporary = folder / (WEIGHTS + ".part")
    save_file(tensors, temporary, metadata={"parnassus": json.dumps(metadata)})
    temporary.replace(folder / WEIGHTS)
    return folder / WEIGHTS


def read_metadata(folder: Path) -> dict:
    from safetensors import safe_open

    with safe_open(folder / WEIGHTS, framework="pt") as file:
        return json.loads(file.metadata()["parnassus"])


def load_model(card: Card, device: str = "cpu") -> tuple[Parnassus, Normalisation, dict]:
    """The model the card's ``generator.checkpoint`` names, checked against the card."""
    folder = card.generator.checkpoint
    if folder is None or not (folder / WEIGHTS).exists():
        raise CardError(f"{card.path}: generator.checkpoint: no trained model at {folder} "
                        f"(train one with: parnassus train --card {card.path})")
    metadata = read_metadata(folder)
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CardError(f"{card.path}: generator.checkpoint: {folder} has format "
                        f"{metadata.get('format_version')}, this version reads {FORMAT_VERSION}")
    expected = cuts_of(card)
    for section in ("truth", "output"):
        for key, value in metadata[section].items():
            if expected[section].get(key) != value:
                raise CardError(f"{card.path}: {section}.{key}: the model in {folder} was trained with {value!r}, "
                                f"the card says {expected[section].get(key)!r}")
    model = Parnassus(Architecture(**metadata["architecture"]))
    model.load_state_dict(load_file(folder / WEIGHTS, device="cpu"))
    model.to(torch.device(device)).eval()
    return model, Normalisation.from_dict(metadata["normalisation"]), metadata
