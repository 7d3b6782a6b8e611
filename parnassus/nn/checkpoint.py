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
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from parnassus.card import Card
from parnassus.errors import CardError, one_line
from parnassus.io.atomic import atomic_path
from parnassus.nn.features import EVENT_FEATURES, PARTICLE_FEATURES, Normalisation
from parnassus.nn.model import Architecture, Parnassus

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
FEATURES = {"particle": list(PARTICLE_FEATURES), "event": list(EVENT_FEATURES)}  # stored, and checked on loading


def cuts_of(card: Card) -> dict:
    return {"truth": dataclasses.asdict(card.truth), "output": dataclasses.asdict(card.output)}


def save_model(model: Parnassus, norm: Normalisation, card: Card, provenance: dict, folder: Path) -> Path:
    """Write the weights and metadata of ``model`` to ``folder/model.safetensors`` (atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format_version": FORMAT_VERSION, "architecture": dataclasses.asdict(model.arch),
        "features": FEATURES,
        "normalisation": norm.as_dict(), **cuts_of(card), "provenance": provenance,
    }
    tensors = {name: value.detach().contiguous().cpu() for name, value in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS) as temporary:
        save_file(tensors, temporary, metadata={"parnassus": json.dumps(metadata)})
    return folder / WEIGHTS


def read_metadata(folder: Path) -> dict:
    """The Parnassus metadata of ``folder/model.safetensors``; a one-line :class:`CardError` naming the file if
    it is no safetensors file (corrupt, truncated) or holds no Parnassus metadata."""
    path = folder / WEIGHTS
    try:
        with safe_open(path, framework="pt") as file:
            text = (file.metadata() or {}).get("parnassus")
    except (SafetensorError, OSError) as error:
        raise CardError(f"{path}: not a readable safetensors file ({one_line(error)})") from None
    if text is None:
        raise CardError(f"{path}: no Parnassus metadata (not a model folder written by parnassus train)")
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as error:
        raise CardError(f"{path}: its Parnassus metadata is not valid JSON ({error.msg})") from None
    if not isinstance(metadata, dict):
        raise CardError(f"{path}: its Parnassus metadata is not a JSON object")
    return metadata


def load_model(card: Card, device: str = "cpu") -> tuple[Parnassus, Normalisation, dict]:
    """The model the card's ``generator.checkpoint`` names, checked against the card.

    Any problem with the model file (unreadable, no or incomplete metadata, weights that do not fit the
    architecture its metadata describes) is a one-line :class:`CardError` naming the file.
    """
    folder = card.generator.checkpoint
    if folder is None or not (folder / WEIGHTS).exists():
        raise CardError(f"{card.path}: generator.checkpoint: no trained model at {folder} "
                        f"(train one with: parnassus train --card {card.path})")
    path = folder / WEIGHTS
    metadata = read_metadata(folder)
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CardError(f"{card.path}: generator.checkpoint: {folder} has format "
                        f"{metadata.get('format_version')}, this version reads {FORMAT_VERSION}")
    for key in ("architecture", "normalisation", "features", "truth", "output", "provenance"):
        if not isinstance(metadata.get(key), dict):
            raise CardError(f"{path}: its Parnassus metadata has no '{key}' section")
    expected = cuts_of(card)
    for section in ("truth", "output"):
        for key, value in metadata[section].items():
            if expected[section].get(key) != value:
                raise CardError(f"{card.path}: {section}.{key}: the model in {folder} was trained with {value!r}, "
                                f"the card says {expected[section].get(key)!r}")
    if metadata["features"] != FEATURES:
        raise CardError(f"{path}: trained with features {metadata['features']}, this version computes {FEATURES}")
    try:
        model = Parnassus(Architecture(**metadata["architecture"]))
        norm = Normalisation.from_dict(metadata["normalisation"])
    except (TypeError, ValueError, KeyError, RuntimeError) as error:
        raise CardError(f"{path}: invalid architecture or normalisation in its metadata ({one_line(error)})"
                        ) from None
    sizes = {"truth": len(PARTICLE_FEATURES), "pfc": len(PARTICLE_FEATURES), "event": len(EVENT_FEATURES),
             "truth_event": len(EVENT_FEATURES)}
    for name, size in sizes.items():
        for value in (getattr(norm, f"{name}_mean"), getattr(norm, f"{name}_std")):
            if value.shape != (size,):
                raise CardError(f"{path}: normalisation of the {name} features has shape {value.shape}, "
                                f"expected ({size},)")
    try:
        tensors = load_file(path, device="cpu")
    except (SafetensorError, OSError) as error:
        raise CardError(f"{path}: not a readable safetensors file ({one_line(error)})") from None
    _check_weights(path, tensors, model.state_dict())
    _check_model_section(card, metadata)  # after the file is known to be consistent in itself
    _check_sampling(card, metadata)
    model.load_state_dict(tensors)
    model.to(torch.device(device)).eval()
    return model, norm, metadata


def _check_model_section(card: Card, metadata: dict) -> None:
    """A one-line CardError naming ``model.<field>`` if the card's ``model:`` section disagrees with the model
    the checkpoint was trained as (its architecture, and the maxima recorded in its provenance)."""
    if card.model is None:
        return
    provenance = metadata["provenance"]
    trained = dict(provenance["model"]) if isinstance(provenance.get("model"), dict) else {}
    if "max_pfc" in provenance:
        trained.setdefault("max_pfc", provenance["max_pfc"])
    trained.update(metadata["architecture"])
    # checkpoints from before the anchored source have a Gaussian one
    trained.setdefault("source", "gaussian")
    trained.setdefault("anchor_noise", Architecture.anchor_noise)
    for key, value in dataclasses.asdict(card.model).items():
        if key in trained and trained[key] != value:
            raise CardError(f"{card.path}: model.{key}: the model in {card.generator.checkpoint} was trained with "
                            f"{trained[key]!r}, the card says {value!r}")


def _check_sampling(card: Card, metadata: dict) -> None:
    """A distilled student samples well only with the solver and steps it was distilled for: a one-line
    CardError naming ``sampling`` if the card asks for others."""
    wanted = metadata["provenance"].get("sampling")
    if not isinstance(wanted, dict):
        return
    have = {"solver": card.sampling.solver, "steps": card.sampling.steps}
    if have != wanted:
        raise CardError(f"{card.path}: sampling: the model in {card.generator.checkpoint} was distilled for "
                        f"{wanted.get('solver')} with {wanted.get('steps')} steps, the card says "
                        f"{have['solver']} with {have['steps']}")


def _check_weights(path: Path, tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """A one-line CardError if the stored tensors are not those (names and shapes) of the architecture."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [f"{name} {tuple(tensors[name].shape)} instead of {tuple(expected[name].shape)}"
             for name in sorted(set(expected) & set(tensors)) if tensors[name].shape != expected[name].shape]
    problems = [f"{len(names)} {what} (first: {names[0]})"
                for what, names in (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong))
                if names]
    if problems:
        raise CardError(f"{path}: the weights do not fit the architecture in its metadata: {'; '.join(problems)}")

