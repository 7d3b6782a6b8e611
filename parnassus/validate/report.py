"""``parnassus validate``: compare candidate files with a target file on the same truth events.

The files are read together in chunks (uproot ``iterate``), checked to hold the same events, turned into
observables (:mod:`parnassus.validate.observables`), compared by 1-Wasserstein distance with a split-half
noise floor and bootstrap uncertainties (:mod:`parnassus.validate.metrics`), and written as figures
(``plots/*.png``, ``*.pdf``), ``metrics.json`` and ``index.md`` in the output directory.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
from tqdm import tqdm

from parnassus.errors import InputError, OutputError, one_line
from parnassus.io.delphes import TREE, read_metadata
from parnassus.pdg import CLASS_NAMES
from parnassus.validate import metrics, plots
from parnassus.validate.matching import row_normalised
from parnassus.validate.observables import (
    BRANCHES,
    CATEGORIES,
    CATEGORY_TITLES,
    DPHI_JET_PT_MIN,
    DPHI_JETS,
    FIGURES,
    IN_JET_DR,
    ISOLATED_OBJECTS,
    ISOLATED_PT_MIN,
    JET_MATCH_DR,
    JET_RESPONSE_BINS,
    OBJECT_MATCH_DR,
    OBSERVABLES,
    PARTICLE_ETA_MAX,
    PARTICLE_MATCH_DR,
    TRUTH_ISOLATION_CONE,
    TRUTH_ISOLATION_RATIO,
    TRUTH_PT_MIN,
    FileObservables,
    jet_response_bin_labels,
    jet_response_keys,
)

REFSIM_NOTE = "target: refsim (CMS-2011-like reference simulation), not CMS data"
FLOOR_HALVINGS = 32  # random halvings of the target's events whose mean W1 is the noise floor


@dataclass
class InputFile:
    """One file of the comparison: its path, label, metadata and number of events."""

    path: Path
    label: str
    metadata: dict
    entries: int

    @property
    def generator(self) -> str:
        return str(self.metadata.get("generator", "unknown"))

    @property
    def card(self) -> str:
        card = self.metadata.get("card")
        return str(card.get("name", "unknown")) if isinstance(card, dict) else "unknown"


def default_labels(paths: list[Path]) -> list[str]:
    """File stems; stems that occur twice get their parent directory in front (``refsim/ttbar``)."""
    stems = [path.stem for path in paths]
    repeated = {stem for stem, n in Counter(stems).items() if n > 1}
    return [f"{path.parent.name}/{path.stem}" if path.stem in repeated else path.stem for path in paths]


def _open(path: Path) -> tuple[int, dict]:
    """Check that ``path`` is a Delphes-layout file with every needed branch; return (entries, metadata)."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with uproot.open(path) as file:
            if TREE not in file:
                raise InputError(f"{path}: no '{TREE}' tree (not a Delphes-layout file)")
            tree = file[TREE]
            missing = [name for name in BRANCHES if name not in tree]
            if missing:
                raise InputError(f"{path}: missing branch {missing[0]} ({len(missing)} missing)")
            entries = tree.num_entries
            if "Particle.M1" in tree and ak.any(tree["Particle.M1"].array(entry_stop=min(entries, 10)) >= 0):
                raise InputError(f"{path}: Particle holds the whole generator record (output.truth: full); validate "
                                 f"compares the accepted final-state truth (the default output.truth: final)")
    except InputError:
        raise
    except Exception as error:  # uproot raises many kinds of errors for files that are not ROOT
        raise InputError(f"{path}: cannot be read as a ROOT file ({type(error).__name__})") from None
    try:
        metadata = read_metadata(path)
    except Exception:  # a Delphes file not written by parnassus has no metadata
        metadata = {}
    return entries, metadata


def open_inputs(target: str | Path, candidates: list[str | Path], labels: list[str] | None = None) -> list[InputFile]:
    """Check the files and labels (one per file, target first, unique); target first in the result."""
    paths = [Path(target), *(Path(c) for c in candidates)]
    if not candidates:
        raise InputError("validate: give at least one candidate file")
    if labels:
        if len(labels) != len(paths):
            raise InputError(f"--label: give one label per file, target first ({len(labels)} labels for "
                             f"{len(paths)} files)")
    else:
        labels = default_labels(paths)
    if len(set(labels)) != len(labels):
        raise InputError(f"labels must be unique ({', '.join(labels)}): give --label for each file")
    files = []
    for path, label in zip(paths, labels, strict=True):
        entries, metadata = _open(path)
        files.append(InputFile(path, label, metadata, entries))
    return files


def _event_count(files: list[InputFile], max_events: int | None) -> int:
    """Events to compare: all (every file must have as many as the target) or the first ``max_events``."""
    target = files[0]
    n_events = target.entries if max_events is None else min(max_events, target.entries)
    for file in files[1:]:
        if (max_events is None and file.entries != target.entries) or file.entries < n_events:
            raise InputError(f"{file.path}: {file.entries} events, the target {target.path} has {target.entries} "
                             f"(-n N compares the first N)")
    return n_events


def _check_same_events(target, other, file: InputFile, target_path: Path, first: int) -> None:
    """Event numbers and truth particle pT of a chunk must equal the target's."""
    numbers_a = ak.to_numpy(ak.fill_none(ak.firsts(target["Event.Number"]), -1))
    numbers_b = ak.to_numpy(ak.fill_none(ak.firsts(other["Event.Number"]), -1))
    differs = np.flatnonzero(numbers_a != numbers_b)
    if len(differs):
        i = differs[0]
        raise InputError(f"{file.path}: event {first + i} has Event.Number {numbers_b[i]}, the target "
                         f"{target_path} {numbers_a[i]}: the files must hold the same events")
    counts_a, counts_b = ak.to_numpy(ak.num(target["Particle.PT"])), ak.to_numpy(ak.num(other["Particle.PT"]))
    same = counts_a == counts_b
    if same.all():
        flat_a, flat_b = ak.to_numpy(ak.flatten(target["Particle.PT"])), ak.to_numpy(ak.flatten(other["Particle.PT"]))
        equal = flat_a == flat_b
        if not equal.all():
            event_of = np.repeat(np.arange(len(counts_a)), counts_a)
            same[np.unique(event_of[~equal])] = False
    if not same.all():
        i = np.flatnonzero(~same)[0]
        raise InputError(f"{file.path}: event {first + i} (Event.Number {numbers_a[i]}) has other truth particles "
                         f"than the target {target_path}: the files must hold the same events")


def collect(files: list[InputFile], n_events: int, step_size: int = 1000,
            progress: bool = True) -> list[FileObservables]:
    """Read all files chunk by chunk (same events checked) and extract their observables."""
    results = [FileObservables() for _ in files]
    with ExitStack() as stack:
        iterators = [_chunks(stack, file.path, n_events, step_size) for file in files]
        bar = stack.enter_context(tqdm(total=n_events, unit="ev", desc="validate", dynamic_ncols=True,
                                       disable=None if progress else True))
        first = 0
        for chunks in zip(*iterators, strict=True):
            for file, chunk in zip(files[1:], chunks[1:], strict=True):
                _check_same_events(chunks[0], chunk, file, files[0].path, first)
            for result, chunk in zip(results, chunks, strict=True):
                result.process(chunk)
            first += len(chunks[0])
            bar.update(len(chunks[0]))
    return results


def _chunks(stack: ExitStack, path: Path, n_events: int, step_size: int) -> Iterator[ak.Array]:
    """The branches of ``path`` chunk by chunk; a one-line :class:`InputError` naming the file if it cannot be
    read (truncated, corrupt baskets)."""
    try:
        tree = stack.enter_context(uproot.open(path))[TREE]
        yield from tree.iterate(BRANCHES, step_size=step_size, entry_stop=n_events, library="ak")
    except Exception as error:  # uproot raises many kinds of errors for truncated or corrupt files
        raise InputError(f"{path}: cannot be read (truncated or corrupt ROOT file: {one_line(error)})") from None



def _check_out(out: Path) -> None:
    """Before the (long) computation: a one-line :class:`OutputError` naming ``out`` if it cannot be a folder
    (it, or its nearest existing ancestor, is not a directory)."""
    existing = out
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        what = "is not a folder" if existing == out else f"cannot be created: {existing} is not a folder"
        raise OutputError(f"{out}: {what}")


def _prepare_out(out: Path) -> None:
    """Create the report folder; a one-line :class:`OutputError` naming it if that is not possible."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{out}: cannot create the report folder ({error.strerror or one_line(error)})") from None


def _clean(value):
    """JSON-safe: NaN/inf → None, numpy scalars → Python numbers."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def compute_metrics(files: list[InputFile], observables: list[FileObservables], n_events: int, replicas: int,
                    seed: int, progress: bool = True) -> dict:
    """W1 of every candidate to the target on every observable, noise floor, bootstrap, confusion, matching."""
    counts = metrics.bootstrap_counts(n_events, replicas, seed)
    halvings = metrics.random_halves(n_events, FLOOR_HALVINGS, seed + 1)
    target, candidates = files[0], files[1:]
    per_observable = {}
    for spec in tqdm(OBSERVABLES, desc="W1", unit="obs", dynamic_ncols=True, disable=None if progress else True):
        samples = [obs.sample(spec.key) for obs in observables]
        distances = {file.label: metrics.compare(samples[0], sample, counts)
                     for file, sample in zip(candidates, samples[1:], strict=True)}
        per_observable[spec.key] = {
            "label": spec.label,
            "entries": {file.label: len(sample) for file, sample in zip(files, samples, strict=True)},
            "w1": distances,
            "noise_floor": metrics.noise_floor(samples[0], halvings),
            "closest": metrics.closest({label: d["value"] for label, d in distances.items()}),
        }
    confusion = {}
    for category in CATEGORIES:
        matrices = {file.label: obs.confusion[category] for file, obs in zip(files, observables, strict=True)}
        confusion[category] = {
            "counts": matrices,
            "normalised": {label: row_normalised(m) for label, m in matrices.items()},
            "distance_to_target": {file.label: metrics.confusion_distance(matrices[target.label], matrices[file.label])
                                   for file in candidates},
        }
    matching = {}
    for file, obs in zip(files, observables, strict=True):
        c = obs.counters
        matching[file.label] = {
            "jets_matched_fraction": c.get("jets_matched", 0) / max(c.get("jets", 0), 1),
            "gen_jets_matched_fraction": c.get("jets_matched", 0) / max(c.get("gen_jets", 0), 1),
            **{f"pfcs_matched_fraction_{cat}": c.get(f"{cat}.matched", 0) / max(c.get(f"{cat}.pfcs", 0), 1)
               for cat in CATEGORIES},
            "unmatched_pfcs_per_event": (c.get("all.pfcs", 0) - c.get("all.matched", 0)) / max(n_events, 1),
            **{f"{name}_efficiency": c.get(f"{name}.found", 0) / c[f"{name}.truth"] if c.get(f"{name}.truth")
               else math.nan for name in ISOLATED_OBJECTS},
            **{f"{name}_truth": c.get(f"{name}.truth", 0) for name in ISOLATED_OBJECTS},
        }
    closest_counts = Counter(entry["closest"] for entry in per_observable.values() if entry["closest"])
    return {
        "events": n_events,
        "files": [{"role": "target" if i == 0 else "candidate", "label": f.label, "path": str(f.path),
                   "generator": f.generator, "card": f.card, "entries": f.entries} for i, f in enumerate(files)],
        "definitions": {"truth_pt_min": TRUTH_PT_MIN, "particle_eta_max": PARTICLE_ETA_MAX,
                        "in_jet_dr": IN_JET_DR, "jet_match_dr": JET_MATCH_DR,
                        "particle_match_dr": PARTICLE_MATCH_DR, "classes": list(CLASS_NAMES),
                        "isolated_pt_min": ISOLATED_PT_MIN,
                        "isolated_eta_max": {name: spec[2] for name, spec in ISOLATED_OBJECTS.items()},
                        "truth_isolation_cone": TRUTH_ISOLATION_CONE,
                        "truth_isolation_ratio": TRUTH_ISOLATION_RATIO, "object_match_dr": OBJECT_MATCH_DR,
                        "dphi_jet_pt_min": DPHI_JET_PT_MIN, "dphi_jets": DPHI_JETS,
                        "jet_response_bins": {q: [list(b) for b in bins] for q, bins in JET_RESPONSE_BINS.items()}},
        "bootstrap": {"replicas": replicas, "seed": seed, "resampled": "events, with replacement, paired"},
        "noise_floor": {"halvings": FLOOR_HALVINGS, "seed": seed + 1, "statistic": "mean W1 between two halves"},
        "observables": per_observable,
        "confusion": confusion,
        "matching": matching,
        "jet_response": {file.label: jet_response(obs) for file, obs in zip(files, observables, strict=True)},
        "summary": {"closest_count": {f.label: closest_counts.get(f.label, 0) for f in candidates}},
    }


def jet_response(obs: FileObservables) -> dict[str, list[dict[str, float]]]:
    """Per binned quantity ("pt", "eta"): entries, mean and std of the matched-jet pT residual in each bin."""
    return {quantity: [metrics.mean_and_spread(obs.sample(key).values) for key in jet_response_keys(quantity)]
            for quantity in JET_RESPONSE_BINS}


def _class_fractions(obs: FileObservables, category: str, kind: str) -> np.ndarray:
    counts = np.array([obs.counters.get(f"{category}.{kind}.{name}", 0) for name in CLASS_NAMES], np.float64)
    return counts / max(counts.sum(), 1.0)


def make_plots(directory: Path, files: list[InputFile], observables: list[FileObservables], results: dict,
               formats: tuple[str, ...]) -> dict[str, str]:
    """Write every figure into ``directory``; returns figure stem → title, in report order."""
    directory.mkdir(parents=True, exist_ok=True)
    labels = [file.label for file in files]
    note = REFSIM_NOTE if files[0].generator == "refsim" else None
    written = {}
    with plots.style():
        for stem, title in FIGURES.items():
            specs = [spec for spec in OBSERVABLES if spec.figure == stem]
            data = [{spec.key: obs.sample(spec.key).values for spec in specs} for obs in observables]
            plots.save(plots.spectra_figure(title, specs, data, labels, note), directory, stem, formats)
            written[stem] = title
        for category in CATEGORIES:
            matrices = [row_normalised(obs.confusion[category]) for obs in observables]
            class_fractions = [_class_fractions(obs, category, "pfcs") for obs in observables]
            title = f"Class confusion of matched particles: {CATEGORY_TITLES[category]}"
            figure = plots.confusion_figure(title, matrices, class_fractions,
                                            _class_fractions(observables[0], category, "truth"), labels, note)
            plots.save(figure, directory, f"confusion_{category}", formats)
            written[f"confusion_{category}"] = title
        title = "Jet response and resolution vs GenJet pT and |eta| (matched jets)"
        figure = plots.response_figure(title, [results["jet_response"][label] for label in labels],
                                       {q: jet_response_bin_labels(q) for q in JET_RESPONSE_BINS},
                                       {"pt": "GenJet $p_T$ [GeV]", "eta": r"GenJet $|\eta|$"}, labels, note)
        plots.save(figure, directory, "jet_response", formats)
        written["jet_response"] = title
        keys = list(results["observables"])
        ratios = {}
        for file in files[1:]:
            ratios[file.label] = [_ratio(results["observables"][key], file.label) for key in keys]
        plots.save(plots.summary_figure(keys, ratios, note), directory, "summary", formats)
        written["summary"] = "W1 / noise floor per observable"
    return written


def _ratio(entry: dict, label: str) -> float:
    value, floor = entry["w1"][label]["value"], entry["noise_floor"]["value"]
    if not (math.isfinite(value) and math.isfinite(floor)) or floor <= 0:
        return math.nan
    return value / floor


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _number(entry: dict) -> str:
    value, std = entry["value"], entry["std"]
    if not _finite(value):
        return "–"
    return f"{value:.3g} ± {std:.2g}" if _finite(std) else f"{value:.3g}"


def index_markdown(results: dict, figures: dict[str, str], note: str | None) -> str:
    """The report's index.md: files, definitions, summary table, matching, confusion, figures."""
    files = results["files"]
    candidates = [f["label"] for f in files if f["role"] == "candidate"]
    d = results["definitions"]
    lines = ["# Parnassus validation report", ""]
    if note:
        lines += [f"**Note: {note}.**", ""]
    lines += [f"{results['events']} events, the same truth events in every file.", "",
              "| role | label | file | generator | card | events in file |", "|---|---|---|---|---|---|"]
    lines += [f"| {f['role']} | {f['label']} | `{f['path']}` | {f['generator']} | {f['card']} | {f['entries']} |"
              for f in files]
    lines += ["", "## Definitions", "",
              f"- Truth references: particles with pT > {d['truth_pt_min']} GeV (N, HT), GenJets, GenMissingET. "
              "Residuals are reco − truth for counts, MET x/y and jet mass (GeV), (reco − truth) / truth for HT, "
              "pT, C2, D2 (where truth > 0), differences for eta, phi and vertices (mm).",
              f"- Jets: the files' Jet collection, matched to GenJets by Hungarian assignment on ΔR "
              f"(ΔR ≤ {d['jet_match_dr']}); C2, D2 of the leading jet.",
              f"- Particles: |eta| < {d['particle_eta_max']}; in jets = ΔR < {d['in_jet_dr']} from a Jet axis "
              f"(truth: a GenJet axis); matched to truth particles within each category by Hungarian assignment "
              f"on ΔR (ΔR ≤ {d['particle_match_dr']}); unmatched candidates of the inclusive matching are 'fakes'.",
              f"- Isolated electrons, muons, photons: truth objects are status-1 |PID| 11 / 13 / 22 with pT > "
              f"{d['isolated_pt_min']} GeV, |eta| < {d['isolated_eta_max']['electron']} (muons "
              f"{d['isolated_eta_max']['muon']}), and a scalar pT sum of the other status-1 truth particles "
              f"(neutrinos excluded) within ΔR < {d['truth_isolation_cone']} below {d['truth_isolation_ratio']} × "
              f"pT; found = matched to the file's Electron / Muon / Photon by Hungarian assignment on ΔR "
              f"(ΔR ≤ {d['object_match_dr']}); `*.found` is 0/1 per truth object (W1 = efficiency difference), "
              f"`*.response` is pT / pT(truth) of the found ones, `*.n` the collection's size per event.",
              f"- MET is the file's MissingET (for parnassus files: from all particle-flow candidates); Δφ to the "
              f"up to {d['dphi_jets']} leading jets with pT > {d['dphi_jet_pt_min']} GeV (minimum) and to the "
              f"leading one, in events with such a jet. Jet response bins: the matched-jet pT residual in bins "
              f"of GenJet pT and (GenJet pT ≥ {d['jet_response_bins']['pt'][0][0]} GeV) |eta|.",
              "- Observables without entries in a file have no distance and count for no candidate.",
              f"- W1: `scipy.stats.wasserstein_distance` between candidate and target, in the units of the "
              f"observable. Uncertainty: std over {results['bootstrap']['replicas']} bootstrap replicas "
              f"(events resampled with replacement, the same events for every file). Noise floor: W1 between two "
              f"random halves of the target's events (half the statistics each), mean over {FLOOR_HALVINGS} "
              f"halvings; its ± is the spread of one halving.", "",
              "## Summary", ""]
    counts = results["summary"]["closest_count"]
    lines += ["Closest to the target on: " + ", ".join(f"**{label}** {counts[label]}" for label in candidates)
              + f" of {len(results['observables'])} observables.", ""]
    header = "| observable | " + " | ".join(f"W1 {label}" for label in candidates) + " | noise floor | closest |"
    lines += [header, "|---" * (len(candidates) + 3) + "|"]
    for key, entry in results["observables"].items():
        best = entry["closest"] or "–"
        if entry["closest"]:
            value, floor = entry["w1"][best]["value"], entry["noise_floor"]["value"]
            if _finite(floor) and value <= floor:
                best += " (≤ floor)"
        cells = " | ".join(_number(entry["w1"][label]) for label in candidates)
        lines.append(f"| `{key}` | {cells} | {_number(entry['noise_floor'])} | {best} |")
    lines += ["", "## Matching", "", "| file | jets matched | GenJets matched | PFCs matched (all / in jets / out "
              "of jets) | unmatched PFCs per event |", "|---|---|---|---|---|"]
    for label, m in results["matching"].items():
        lines.append(f"| {label} | {m['jets_matched_fraction']:.3f} | {m['gen_jets_matched_fraction']:.3f} | "
                     f"{m['pfcs_matched_fraction_all']:.3f} / {m['pfcs_matched_fraction_in_jet']:.3f} / "
                     f"{m['pfcs_matched_fraction_out_jet']:.3f} | {m['unmatched_pfcs_per_event']:.1f} |")
    names = list(ISOLATED_OBJECTS)
    lines += ["", "Efficiency for isolated truth objects (found / truth objects):", "",
              "| file | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, m in results["matching"].items():
        cells = " | ".join(f"{m[f'{name}_efficiency']:.3f} ({m[f'{name}_truth']})"
                           if _finite(m[f"{name}_efficiency"]) else f"– ({m[f'{name}_truth']})" for name in names)
        lines.append(f"| {label} | {cells} |")
    lines += ["", "Class confusion, distance to the target (mean over truth classes of the total-variation distance "
              "of P(reco class | truth class)):", "",
              "| category | " + " | ".join(candidates) + " |", "|---" * (len(candidates) + 1) + "|"]
    for category, entry in results["confusion"].items():
        cells = " | ".join(f"{entry['distance_to_target'][label]:.3f}"
                           if _finite(entry["distance_to_target"][label]) else "–" for label in candidates)
        lines.append(f"| {category} | {cells} |")
    lines += ["", "## Figures", ""]
    for stem, title in figures.items():
        lines += [f"### {title}", "", f"![{title}](plots/{stem}.png)", "", f"[PDF](plots/{stem}.pdf)", ""]
    return "\n".join(lines)


def validate(target: str | Path, candidates: list[str | Path], out_dir: str | Path, *,
             labels: list[str] | None = None, max_events: int | None = None, step_size: int = 1000,
             replicas: int = 20, seed: int = 1, formats: tuple[str, ...] = ("png", "pdf"),
             progress: bool = True) -> dict:
    """Write the fidelity report of ``candidates`` against ``target`` into ``out_dir``; returns the metrics."""
    start = time.perf_counter()
    out = Path(out_dir)
    files = open_inputs(target, list(candidates), labels)
    _check_out(out)
    n_events = _event_count(files, max_events)
    if n_events < 2:
        raise InputError(f"{files[0].path}: {n_events} events; the report needs at least 2")
    observables = collect(files, n_events, step_size=step_size, progress=progress)
    results = compute_metrics(files, observables, n_events, replicas, seed, progress=progress)
    _prepare_out(out)
    try:
        figures = make_plots(out / "plots", files, observables, results, formats)
        results["seconds"] = round(time.perf_counter() - start, 2)
        results = _clean(results)
        (out / "metrics.json").write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")
        note = REFSIM_NOTE if files[0].generator == "refsim" else None
        (out / "index.md").write_text(index_markdown(results, figures, note))
    except OSError as error:
        raise OutputError(f"{error.filename or out}: cannot write the report "
                          f"({error.strerror or one_line(error)})") from None
    return results
