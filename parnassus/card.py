"""The card: one YAML file that describes a detector emulation, validated on load.

Every section is a dataclass; :func:`load_card` builds them from the YAML and turns any mistake (unknown
key, wrong type, bad value, missing file) into a one-line :class:`CardError` naming the file and key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from parnassus.builtin import resolve_card
from parnassus.errors import CardError
from parnassus.formula import Formula
from parnassus.refsim.config import RefSimParameters

JET_ALGORITHMS = ("antikt", "kt", "cambridge")


def _choice(*options: str) -> dict:
    return {"choices": options}


def _positive() -> dict:
    return {"positive": True}


def _non_negative() -> dict:
    return {"non_negative": True}


@dataclass
class TruthCuts:
    """Which truth particles of an input event enter the simulation (the ``Particle`` collection)."""

    status: list[int] = field(default_factory=lambda: [1])
    pt_min: float = field(default=0.25, metadata=_positive())
    eta_max: float = field(default=2.7, metadata=_positive())
    drop_pids: list[int] = field(default_factory=lambda: [12, 14, 16])
    max_particles: int = field(default=400, metadata=_positive())
    # mm: a decayed (status 2) particle with a longer PDG c*tau is final instead of its decay products, the
    # outermost one of a chain (K0S, Lambda, Sigma, Xi, Omega at 10 mm); none: the record as it is (Delphes)
    stable_ctau_mm: float | None = field(default=None, metadata=_positive())


@dataclass
class OutputCuts:
    """Acceptance of the particle-flow candidates written out, and which truth particles are written."""

    pt_min: float = field(default=1.0, metadata=_positive())
    eta_max: float = field(default=2.7, metadata=_positive())
    # Particle: "final" the accepted final-state truth (what the generator sees), "full" the whole generator
    # record with its mother and daughter indices, as Delphes writes it
    truth: str = field(default="final", metadata={"choices": ("final", "full")})


@dataclass
class JetDefinition:
    algorithm: str = field(default="antikt", metadata=_choice(*JET_ALGORITHMS))
    radius: float = field(default=0.5, metadata=_positive())
    pt_min: float = 20.0
    eta_max: float = field(default=5.0, metadata=_positive())


@dataclass
class Isolation:
    """Delphes ``Isolation`` module: sum pT of PFCs above ``pt_min`` within ``cone``, relative to the candidate."""

    cone: float = field(default=0.5, metadata=_positive())
    pt_min: float = 0.5
    ratio_max: float = field(default=0.12, metadata=_positive())
    # mm: charged particles further than this from the candidate along z are pileup (Delphes' IsRecoPU: not in the
    # sum, counted in SumPtChargedPU); none: every charged particle counts (no pileup in the event)
    pileup_dz: float | None = None
    # Delphes' UseRhoCorrection: the ratio cut is on IsolationVarRhoCorr (true) or on the Delta-beta corrected
    # IsolationVar (false)
    use_rho_correction: bool = True


@dataclass
class IsolatedObject:
    pt_min: float = 10.0
    eta_max: float = field(default=2.5, metadata=_positive())
    isolation: Isolation = field(default_factory=Isolation)


@dataclass
class JetFlavor:
    """Delphes ``JetFlavorAssociation`` (``Jet.Flavor``) from the generator history.

    ``partons`` (Delphes' method): the highest |PDG id| among the quarks within ``delta_r`` of the jet axis
    (b 5 > c 4 > s 3 > u 2 > d 1), 21 if there are only gluons, 0 if nothing; partons with pT > ``pt_min``
    and |eta| <= ``eta_max``, of any status but final. ``hadrons``: 5 if a weakly decaying b hadron is within
    ``delta_r``, else 4 for a c hadron, else 0 (the hadron-flavour convention of CMS analyses), with the same
    cuts on the hadrons.
    """

    definition: str = field(default="partons", metadata=_choice("partons", "hadrons"))
    delta_r: float = field(default=0.5, metadata=_positive())
    pt_min: float = field(default=1.0, metadata=_non_negative())
    eta_max: float = field(default=2.5, metadata=_positive())


@dataclass
class BTagEfficiency:
    """Tagging probability of a jet by its ``Flavor`` (Delphes' ``EfficiencyFormula`` keys 5, 4 and 0)."""

    b: Formula
    c: Formula
    other: Formula  # light quarks, gluons and jets without flavour (the mis-tag rate)


@dataclass
class BTagging:
    """Delphes ``BTagging``: bit ``bit`` of ``Jet.BTag`` set with the efficiency of the jet's flavour,
    evaluated at the (energy-scaled) jet pT, eta and energy."""

    efficiency: BTagEfficiency
    bit: int = field(default=0, metadata={"non_negative": True, "at_most": 31})


@dataclass
class TauTagEfficiency:
    """Tagging probability of a jet matched to a decayed tau (Delphes' key 15) and of any other (key 0)."""

    tau: Formula
    other: Formula


@dataclass
class TauTagging:
    """Delphes ``TauTagging``: a jet within ``delta_r`` of the decay products (but the tau neutrino) of a decayed
    tau with pT > ``tau_pt_min`` and |eta| <= ``tau_eta_max`` is a tau jet (``Jet.TauFlavor`` 15, its ``Charge``
    the tau's; other jets get a random charge of +-1, as in Delphes). Like Delphes 3.5.1, leptonic tau decays
    count too. Bit ``bit`` of ``Jet.TauTag`` is set with the efficiency of its kind (also written as
    ``Jet.TauWeight``)."""

    efficiency: TauTagEfficiency
    delta_r: float = field(default=0.5, metadata=_positive())
    tau_pt_min: float = field(default=1.0, metadata=_non_negative())
    tau_eta_max: float = field(default=2.5, metadata=_positive())
    bit: int = field(default=0, metadata={"non_negative": True, "at_most": 31})


@dataclass
class Rho:
    """Delphes' ``Rho`` module (``FastJetFinder`` with ``ComputeRho``): per event and per range of |rapidity|, the
    median of pT / area of the jets of all particle-flow candidates (``JetMedianBackgroundEstimator``), for the
    ``Rho`` collection and the isolation's ``IsolationVarRhoCorr``. Defaults: Delphes' CMS pileup card (kt,
    R = 0.6, active areas with ghosts up to |eta| 5, ranges 0-2.5 and 2.5-5)."""

    algorithm: str = field(default="kt", metadata=_choice(*JET_ALGORITHMS))
    radius: float = field(default=0.6, metadata=_positive())
    eta_ranges: list[list[float]] = field(default_factory=lambda: [[0.0, 2.5], [2.5, 5.0]],
                                          metadata={"ranges": True})  # RhoEtaRange [min, max]: jets by
    # |rapidity| for the estimate, objects by |eta| for the isolation's lookup, as Delphes does
    # Delphes' AreaAlgorithm 5, 1, 2, 3 (Voronoi areas are not offered)
    area: str = field(default="active",
                      metadata=_choice("active", "active_explicit_ghosts", "one_ghost_passive", "passive"))
    ghost_eta_max: float = field(default=5.0, metadata=_positive())  # GhostEtaMax
    ghost_area: float = field(default=0.01, metadata=_positive())  # GhostArea
    repeat: int = field(default=1, metadata=_positive())  # Repeat
    grid_scatter: float = field(default=1.0, metadata=_non_negative())  # GridScatter
    pt_scatter: float = field(default=0.1, metadata=_non_negative())  # PtScatter
    mean_ghost_pt: float = field(default=1.0e-100, metadata=_positive())  # MeanGhostPt, GeV


@dataclass
class Objects:
    jets: JetDefinition = field(default_factory=JetDefinition)
    electrons: IsolatedObject = field(default_factory=IsolatedObject)
    muons: IsolatedObject = field(default_factory=IsolatedObject)
    photons: IsolatedObject = field(default_factory=IsolatedObject)
    # Delphes ``JetEnergyScale``: the reconstructed jets' four-momenta are multiplied by this formula of the jet's
    # pt, eta, energy (GenJets are not); none: no correction
    jet_energy_scale: Formula | None = None
    jet_flavor: JetFlavor = field(default_factory=JetFlavor)
    b_tagging: BTagging | None = None  # none: Jet.BTag is 0
    tau_tagging: TauTagging | None = None  # none: Jet.TauTag is 0 and Jet.Charge the constituents' sum
    rho: Rho | None = None  # none: no Rho collection and rho = 0 in the isolation (the Delphes CMS card)


@dataclass
class TrackFormulas:
    charged_hadron: Formula
    electron: Formula
    muon: Formula


@dataclass
class LeptonFormulas:
    electron: Formula
    muon: Formula


@dataclass
class ParametricParameters:
    """Per-particle Delphes-CMS-style response; formulas use pt, eta, energy (see parnassus.formula)."""

    tracking_efficiency: TrackFormulas
    track_pt_resolution: TrackFormulas  # relative sigma(pT)/pT, smeared log-normally as Delphes does
    identification_efficiency: LeptonFormulas  # tracked lepton keeps its class, else it is a charged hadron
    ecal_resolution: Formula  # absolute sigma(E) in GeV
    hcal_resolution: Formula  # absolute sigma(E) in GeV
    ecal_eta_max: float = field(metadata=_positive())
    hcal_eta_max: float = field(metadata=_positive())
    ecal_cell: float = field(metadata=_positive())  # tower size in eta and phi; neutral directions are
    hcal_cell: float = field(metadata=_positive())  # moved to a random point of their tower (SmearTowerCenter)


@dataclass
class GeneratorConfig:
    kind: str = field(metadata=_choice("parametric", "refsim", "neural"))
    parametric: ParametricParameters | None = None
    refsim: RefSimParameters | None = None
    # model folder (neural), relative to the card; may not exist yet when the card is used to train it
    checkpoint: Path | None = field(default=None, metadata={"may_not_exist": True})


@dataclass
class ModelConfig:
    """Architecture of a learned generator (stored in its checkpoint)."""

    kind: str = field(default="flow", metadata=_choice("flow", "diffusion"))
    dim: int = field(default=64, metadata=_positive())
    blocks: int = field(default=2, metadata=_positive())
    heads: int = field(default=4, metadata=_positive())
    truth_blocks: int = field(default=1, metadata=_positive())
    event_dim: int = field(default=128, metadata=_positive())
    event_blocks: int = field(default=3, metadata=_positive())
    max_truth: int = field(default=400, metadata=_positive())
    max_pfc: int = field(default=400, metadata=_positive())
    # where each candidate's flow starts: Gaussian noise (the paper), or near its truth partner for candidates that
    # have one (flow models only; parnassus.nn.anchors), with anchor_noise standardised units of Gaussian spread;
    # seeded: also those without a partner start near a seed truth particle: its eta and phi plus Gaussian noise of
    # seed_noise standard deviation in each (Delta R units: the spread of refsim's candidates around their seeds)
    source: str = field(default="gaussian", metadata=_choice("gaussian", "anchored", "seeded"))
    anchor_noise: float = field(default=0.1, metadata=_positive())
    seed_noise: float = field(default=0.2, metadata=_positive())


@dataclass
class TrainingConfig:
    """``parnassus train``: data, optimisation and checkpointing."""

    files: list[str]  # glob patterns, relative to the card
    steps: int = field(metadata=_positive())
    validation_fraction: float = field(default=0.05, metadata=_positive())
    batch_size: int = field(default=64, metadata=_positive())
    optimizer: str = field(default="adamw", metadata=_choice("adamw", "lion"))
    learning_rate: float = field(default=1e-3, metadata=_positive())
    min_learning_rate: float = 1e-5
    warmup_steps: int = 100
    weight_decay: float = 0.01
    gradient_clip: float = 1.0
    ema_decay: float = 0.999
    time_power: float = field(default=1.0, metadata=_positive())
    checkpoint_every: int = field(default=500, metadata=_positive())
    validate_every: int = field(default=250, metadata=_positive())
    seed: int = field(default=0, metadata=_non_negative())


@dataclass
class DistillationConfig:
    """``parnassus distill``: the few-step student of the card's checkpoint (see :mod:`parnassus.distill`)."""

    checkpoint: Path = field(metadata={"may_not_exist": True})  # the student's folder, relative to the card
    student_steps: int = field(default=2, metadata={"choices": (1, 2)})
    events: int = field(default=16384, metadata=_positive())  # teacher trajectories to learn from
    validation_events: int = field(default=512, metadata=_positive())
    steps: int = field(default=2000, metadata=_positive())
    batch_size: int = field(default=64, metadata=_positive())
    learning_rate: float = field(default=3e-4, metadata=_positive())
    # anchored teachers: the loss weight of a candidate without a truth partner (1: as a partnered one); their
    # flows start from noise, and a 2-step student places them worst
    free_slot_weight: float = field(default=1.0, metadata=_positive())
    validate_every: int = field(default=250, metadata=_positive())
    checkpoint_every: int = field(default=250, metadata=_positive())
    seed: int = field(default=0, metadata=_non_negative())


@dataclass
class Sampling:
    batch_size: int = field(default=100, metadata=_positive())
    device: str = "cpu"
    seed: int = field(default=0, metadata=_non_negative())
    solver: str = field(default="dpmpp2m", metadata=_choice("euler", "midpoint", "heun", "pndm", "dpmpp2m"))
    steps: int = field(default=8, metadata=_positive())
    # the learned networks' arithmetic: bfloat16 runs them under bf16 autocast (the solver stays float32); auto:
    # bfloat16 where the device does bf16 arithmetic natively (a CUDA GPU that supports it, a CPU with AVX512-BF16
    # or AMX), float32 elsewhere (emulated bf16 is several times slower than float32)
    precision: str = field(default="float32", metadata=_choice("float32", "bfloat16", "auto"))


@dataclass
class Card:
    name: str
    generator: GeneratorConfig
    description: str = ""
    emulates: str = ""  # one line: the detector or simulation the card emulates (listed by parnassus cards)
    truth: TruthCuts = field(default_factory=TruthCuts)
    output: OutputCuts = field(default_factory=OutputCuts)
    objects: Objects = field(default_factory=Objects)
    sampling: Sampling = field(default_factory=Sampling)
    model: ModelConfig | None = None
    training: TrainingConfig | None = None
    distillation: DistillationConfig | None = None
    path: Path = field(default=Path("."), metadata={"internal": True})
    text: str = field(default="", metadata={"internal": True})


def load_yaml(cls: type, path: str | Path) -> tuple[Any, str]:
    """Read a YAML file into dataclass ``cls`` (keys, types and constraints checked); also return its text.

    Any problem is a :class:`CardError` with a one-line message naming the file and the key.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise CardError(f"{path}: cannot read card ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise CardError(f"{path}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise CardError(f"{path}: a card must be a mapping of sections")
    return _build(cls, data, "", path), text


def load_card(path: str | Path) -> Card:
    """Read and validate a card: a YAML file, or a built-in card by name (``cms2011``; see
    :mod:`parnassus.builtin`); raise :class:`CardError` with a one-line message on any problem."""
    path = resolve_card(path)
    card, text = load_yaml(Card, path)
    card.path = path
    card.text = text
    _check_generator(card)
    return card


def _check_generator(card: Card) -> None:
    gen = card.generator
    for kind in ("parametric", "refsim"):
        if gen.kind == kind and getattr(gen, kind) is None:
            raise CardError(f"{card.path}: generator.{kind}: required when generator.kind is '{kind}'")
    if gen.kind == "neural" and gen.checkpoint is None:
        raise CardError(f"{card.path}: generator.checkpoint: required when generator.kind is 'neural'")
    if card.model is not None and card.model.source != "gaussian" and card.model.kind != "flow":
        raise CardError(f"{card.path}: model.source: '{card.model.source}' needs model.kind 'flow' (a Gaussian-noise "
                        f"path cannot start from a truth particle), the card says '{card.model.kind}'")


def _build(cls: type, data: Any, where: str, card_path: Path) -> Any:
    """Build dataclass ``cls`` from a YAML mapping, checking keys, types and field constraints."""
    if not isinstance(data, dict):
        raise CardError(f"{card_path}: {where or 'card'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise CardError(f"{card_path}: {_join(where, str(unknown[0]))}: unknown key "
                        f"(allowed: {', '.join(fields)})")
    values = {}
    for name, spec in fields.items():
        key = _join(where, name)
        if name not in data:
            no_default = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
            if no_default:
                raise CardError(f"{card_path}: {key}: missing required key")
            continue
        value = _convert(hints[name], data[name], key, card_path, spec.metadata.get("may_not_exist", False))
        _check_constraints(spec, value, key, card_path)
        values[name] = value
    return cls(**values)


def _convert(hint: Any, value: Any, key: str, card_path: Path, may_not_exist: bool = False) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        return _convert(hint, value, key, card_path, may_not_exist)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key, card_path)
    if origin is list:
        if not isinstance(value, list):
            raise CardError(f"{card_path}: {key}: expected a list, got {_kind(value)}")
        return [_convert(args[0], item, f"{key}[{i}]", card_path) for i, item in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise CardError(f"{card_path}: {key}: expected true or false, got {_kind(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CardError(f"{card_path}: {key}: expected a number, got {_kind(value)}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CardError(f"{card_path}: {key}: expected an integer, got {_kind(value)}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise CardError(f"{card_path}: {key}: expected a string, got {_kind(value)}")
        return value
    if hint is Formula:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise CardError(f"{card_path}: {key}: expected a formula string, got {_kind(value)}")
        try:
            formula = Formula(str(value))
        except (SyntaxError, ValueError) as error:
            message = error.msg if isinstance(error, SyntaxError) else str(error)
            raise CardError(f"{card_path}: {key}: invalid formula: {message}") from None
        _check_formula_range(formula, key, card_path)
        return formula
    if hint is Path:
        if not isinstance(value, str):
            raise CardError(f"{card_path}: {key}: expected a path string, got {_kind(value)}")
        resolved = (card_path.parent / value).resolve()
        if not resolved.exists() and not may_not_exist:
            raise CardError(f"{card_path}: {key}: file not found: {resolved}")
        return resolved
    raise TypeError(f"unsupported card type {hint!r} for {key}")  # a bug in a dataclass, not user input


def _check_constraints(spec: dataclasses.Field, value: Any, key: str, card_path: Path) -> None:
    choices = spec.metadata.get("choices")
    if choices and value not in choices:
        raise CardError(f"{card_path}: {key}: expected one of {', '.join(map(str, choices))}, got {value!r}")
    if spec.metadata.get("positive") and value is not None and not value > 0:
        raise CardError(f"{card_path}: {key}: must be > 0, got {value!r}")
    if spec.metadata.get("non_negative") and value is not None and not value >= 0:
        raise CardError(f"{card_path}: {key}: must be >= 0, got {value!r}")
    at_most = spec.metadata.get("at_most")
    if at_most is not None and value is not None and not value <= at_most:
        raise CardError(f"{card_path}: {key}: must be <= {at_most}, got {value!r}")
    if spec.metadata.get("ranges"):
        if not value:
            raise CardError(f"{card_path}: {key}: needs at least one [min, max] range")
        for i, pair in enumerate(value):
            if len(pair) != 2 or not 0.0 <= pair[0] < pair[1]:
                raise CardError(f"{card_path}: {key}[{i}]: expected [min, max] with 0 <= min < max, got {pair!r}")


def _check_formula_range(formula: Formula, key: str, card_path: Path) -> None:
    """A formula whose key (field or group) names an efficiency must give values in [0, 1], a resolution finite
    values >= 0, a scale finite values > 0, for pT 0.1 GeV-10 TeV and |eta| <= 5: a one-line CardError with the
    first point that does not."""
    name = ".".join(key.split(".")[-2:])  # the field, or its group (tracking_efficiency.muon)
    if "efficiency" in name:
        allowed, within = "in [0, 1]", lambda v: (v >= 0.0) & (v <= 1.0)
    elif "resolution" in name:
        allowed, within = "finite and >= 0", lambda v: v >= 0.0
    elif "scale" in name:
        allowed, within = "finite and > 0", lambda v: v > 0.0
    else:
        return
    pt, eta = (grid.ravel() for grid in np.meshgrid(np.logspace(-1, 4, 51), np.linspace(-5, 5, 101)))
    values = formula(pt, eta, pt * np.cosh(eta))
    bad = ~(np.isfinite(values) & within(values))
    if bad.any():
        i = int(np.argmax(bad))
        raise CardError(f"{card_path}: {key}: gives {values[i]:.4g} at pt = {pt[i]:.3g} GeV, eta = {eta[i]:.3g} "
                        f"(must be {allowed} for pt 0.1-10000 GeV, |eta| <= 5)")


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"
