"""Figures of the validation report (matplotlib, mplhep CMS style with smaller fonts).

Figures are made with :class:`matplotlib.figure.Figure`, not pyplot, so they render with Agg (PNG) and the
PDF backend whatever backend the caller uses, and nothing is left open. Every histogram is normalised to
the number of entries of its file (fraction per bin); the target is the filled histogram, the candidates
are step lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.style
import mplhep
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from parnassus.validate.observables import CLASS_LABELS, Observable

_STYLE_OVERRIDES = {
    "font.size": 11, "axes.labelsize": 11, "axes.titlesize": 11, "legend.fontsize": 9, "xtick.labelsize": 9,
    "ytick.labelsize": 9, "xtick.major.size": 5, "xtick.minor.size": 2.5, "ytick.major.size": 5,
    "ytick.minor.size": 2.5, "xtick.minor.visible": False, "ytick.minor.visible": False, "figure.dpi": 100,
    "savefig.dpi": 100, "lines.linewidth": 1.5,
}
TARGET_COLOR = "#5790fc"
CANDIDATE_COLORS = ("#e42536", "#964a8b", "#f89c20", "#7a21dd", "#9c9ca1", "#2ca02c")
_BINS = 40
_QUANTILES = (0.005, 0.995)


def style():
    """Context manager: mplhep's CMS style with fonts sized for multi-panel figures."""
    return matplotlib.style.context([mplhep.style.CMS, _STYLE_OVERRIDES])


def candidate_color(index: int) -> str:
    return CANDIDATE_COLORS[index % len(CANDIDATE_COLORS)]


def binning(spec: Observable, arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Bin edges common to all files: the observable's range, or the 0.5-99.5 % quantiles of all values."""
    values = np.concatenate([np.asarray(a, np.float64) for a in arrays]) if arrays else np.zeros(0)
    values = values[np.isfinite(values)]
    if spec.range is not None:
        low, high = spec.range
    elif len(values):
        low, high = (float(q) for q in np.quantile(values, _QUANTILES))
    else:
        low, high = 0.0, 1.0
    if spec.discrete:
        low, high = math.floor(low), math.ceil(high)
        step = max(1, math.ceil((high - low + 1) / 60))
        return np.arange(low - 0.5, high + 0.5 + step, step, dtype=np.float64)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, _BINS + 1)


def fractions(values: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Fraction of all entries in each bin (entries outside the bins count in the total)."""
    counts, _ = np.histogram(values, bins=bins)
    return counts / max(len(values), 1)


def _draw(ax: Axes, spec: Observable, arrays: Sequence[np.ndarray], labels: Sequence[str]) -> None:
    bins = binning(spec, arrays)
    for index, (values, label) in enumerate(zip(arrays, labels, strict=True)):
        height = fractions(values, bins)
        if index == 0:
            mplhep.histplot(height, bins, ax=ax, histtype="fill", color=TARGET_COLOR, alpha=0.45, label=label)
        else:
            mplhep.histplot(height, bins, ax=ax, histtype="step", color=candidate_color(index - 1), label=label)
    if not any(len(values) for values in arrays):
        ax.text(0.5, 0.5, "no entries", transform=ax.transAxes, ha="center", va="center", color="gray")
    ax.set_xlabel(spec.label)
    ax.set_ylabel("fraction")
    ax.set_xlim(bins[0], bins[-1])
    if spec.logy:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)


def _grid(n_panels: int, columns: int = 3, panel: tuple[float, float] = (4.3, 3.6)) -> tuple[Figure, list]:
    columns = min(columns, n_panels)
    rows = math.ceil(n_panels / columns)
    figure = Figure(figsize=(panel[0] * columns, panel[1] * rows + 0.6), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    axes = list(axes.flat)
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return figure, axes[:n_panels]


def _title(figure: Figure, title: str, note: str | None) -> None:
    figure.suptitle(title if not note else f"{title}\n{note}", fontsize=12)


def spectra_figure(title: str, specs: Sequence[Observable], data: Sequence[dict[str, np.ndarray]],
                   labels: Sequence[str], note: str | None = None) -> Figure:
    """One panel per observable; ``data[i][key]`` are the values of file i (target first)."""
    figure, axes = _grid(len(specs))
    for ax, spec in zip(axes, specs, strict=True):
        _draw(ax, spec, [values[spec.key] for values in data], labels)
    axes[0].legend(loc="best", frameon=False)
    _title(figure, title, note)
    return figure


def confusion_figure(title: str, matrices: Sequence[np.ndarray], class_fractions: Sequence[np.ndarray],
                     truth_fractions: np.ndarray, labels: Sequence[str], note: str | None = None) -> Figure:
    """Row-normalised confusion matrices (truth class vertical, reconstructed horizontal), one per file, and
    the class frequencies of the candidates."""
    figure, axes = _grid(len(matrices) + 1, columns=4, panel=(3.9, 3.6))
    ticks = np.arange(len(CLASS_LABELS))
    for ax, matrix, label in zip(axes, matrices, labels, strict=False):
        ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0, origin="upper")
        for (row, column), value in np.ndenumerate(matrix):
            ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value > 0.6 else "black")
        ax.set_xticks(ticks, CLASS_LABELS, rotation=45, ha="right")
        ax.set_yticks(ticks, CLASS_LABELS)
        ax.minorticks_off()
        ax.set_title(label)
        ax.set_xlabel("reconstructed class")
        ax.set_ylabel("truth class")
    ax = axes[-1]
    edges = np.arange(len(CLASS_LABELS) + 1) - 0.5
    for index, (values, label) in enumerate(zip(class_fractions, labels, strict=True)):
        if index == 0:
            mplhep.histplot(values, edges, ax=ax, histtype="fill", color=TARGET_COLOR, alpha=0.45, label=label)
        else:
            mplhep.histplot(values, edges, ax=ax, histtype="step", color=candidate_color(index - 1), label=label)
    mplhep.histplot(truth_fractions, edges, ax=ax, histtype="step", color="black", linestyle="--", label="truth")
    ax.set_xticks(ticks, CLASS_LABELS, rotation=45, ha="right")
    ax.minorticks_off()
    ax.set_ylabel("fraction of particles")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
    _title(figure, title, note)
    return figure


def response_figure(title: str, summaries: Sequence[dict[str, list[dict[str, float]]]],
                    bin_labels: dict[str, Sequence[str]], axis_labels: dict[str, str], labels: Sequence[str],
                    note: str | None = None) -> Figure:
    """Mean jet response (1 + mean residual) and resolution (std of the residual) per bin, with statistical
    errors: one column per binned quantity; ``summaries[i][quantity]`` holds file i's
    :func:`~parnassus.validate.metrics.mean_and_spread` per bin (target first)."""
    quantities = list(bin_labels)
    figure = Figure(figsize=(4.6 * len(quantities), 7.4), layout="constrained")
    axes = figure.subplots(2, len(quantities), squeeze=False)
    width = 0.5 / max(len(labels), 1)
    for column, quantity in enumerate(quantities):
        positions = np.arange(len(bin_labels[quantity]))
        for index, (summary, label) in enumerate(zip(summaries, labels, strict=True)):
            color = TARGET_COLOR if index == 0 else candidate_color(index - 1)
            x = positions + (index - (len(labels) - 1) / 2) * width
            rows = summary[quantity]
            mean = [1.0 + r["mean"] for r in rows], [r["mean_error"] for r in rows]
            spread = [r["std"] for r in rows], [r["std_error"] for r in rows]
            for ax, (value, error) in ((axes[0, column], mean), (axes[1, column], spread)):
                ax.errorbar(x, value, yerr=np.nan_to_num(error), color=color, marker="o" if index == 0 else "s",
                            markersize=5, linestyle="none", capsize=2, label=label)
        for row, ylabel in enumerate((r"mean $p_T / p_T^{gen}$", r"resolution: std of $\Delta p_T / p_T^{gen}$")):
            ax = axes[row, column]
            ax.set_xticks(positions, bin_labels[quantity])
            ax.minorticks_off()
            ax.set_xlim(-0.5, len(positions) - 0.5)
            ax.set_xlabel(axis_labels[quantity])
            ax.set_ylabel(ylabel)
        axes[0, column].axhline(1.0, color="black", linestyle="--", linewidth=1)
        axes[1, column].set_ylim(bottom=0)
    axes[0, 0].legend(loc="best", frameon=False)
    _title(figure, title, note)
    return figure


def summary_figure(keys: Sequence[str], ratios: dict[str, Sequence[float]], note: str | None = None) -> Figure:
    """W1 / noise floor for every observable and candidate (log scale; 1 = statistical agreement)."""
    figure = Figure(figsize=(8.5, 0.19 * len(keys) * max(1, len(ratios)) ** 0.5 + 1.5), layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(keys))
    height = 0.8 / max(len(ratios), 1)
    for index, (label, values) in enumerate(ratios.items()):
        values = np.array([v if v is not None and np.isfinite(v) and v > 0 else np.nan for v in values])
        ax.barh(positions + (index - (len(ratios) - 1) / 2) * height, values, height=height,
                color=candidate_color(index), label=label)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(positions, keys, fontsize=7)
    ax.minorticks_off()
    ax.set_ylim(len(keys) - 0.5, -0.5)
    ax.set_xlabel("W1(candidate, target) / noise floor")
    ax.legend(frameon=False, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(ratios))
    _title(figure, "Distance to the target in units of the target's split-half noise floor", note)
    return figure


def save(figure: Figure, directory: Path, stem: str, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Write the figure in each format; returns the paths (the layout is computed once)."""
    paths = []
    for extension in formats:
        path = directory / f"{stem}.{extension}"
        figure.savefig(path)
        figure.set_layout_engine("none")  # keep the positions found for the first format
        paths.append(path)
    return paths
