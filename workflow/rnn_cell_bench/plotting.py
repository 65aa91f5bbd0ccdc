"""The comparison figure: loss against epoch, mean over seeds with a band, per-seed lines, and
the held-out loss (dashed, with markers) at the epochs it was measured."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rnn_cell_bench.cells import cell_colors, cell_label
from rnn_cell_bench.statistics import t_band

BANDS = ("ci95", "range", "none")


@dataclass(frozen=True)
class PlotSettings:
    band: str = "ci95"
    seed_lines: bool = True
    log_y: bool = True
    title: str | None = None  # None: the cells compared (:func:`default_title`)
    width: float = 8.0
    height: float = 5.0
    dpi: int = 150

    @classmethod
    def from_config(cls, plot: Mapping) -> PlotSettings:
        return cls(**plot)


def center_and_band(curves: np.ndarray, band: str, log_y: bool):
    """Center line and band over seeds (rows) per epoch (columns).

    On a log axis the center is the geometric mean and the 95% CI is taken in log space: at
    every epoch the interval ``summary.csv`` gives a loss (``statistics.geometric_mean_interval``).
    """
    if band not in BANDS:
        raise ValueError(f"plot.band must be one of {BANDS}, got {band!r}")
    values = np.log(curves) if log_y else curves
    center, low, high = t_band(values)
    if band == "range":
        low, high = values.min(axis=0), values.max(axis=0)
    elif band == "none":
        low = high = None
    back = np.exp if log_y else (lambda v: v)
    return (
        back(center),
        (None if low is None else back(low)),
        (None if high is None else back(high)),
    )


def default_title(cells) -> str:
    """The figure's title when plot.title is null: the cells compared."""
    return f"{' vs '.join(cell_label(cell) for cell in cells)}: training and held-out loss"


def _draw_cells(ax, histories, metrics: pd.DataFrame, settings: PlotSettings, colors) -> None:
    """One condition's runs on ``ax``: per cell its seeds, centre line and band; ``colors``:
    each cell's colour (LSTM blue and GRU orange as in the original, then a fixed order)."""
    cells = list(dict.fromkeys(cell for cell, _ in histories))
    diverged_runs = set()
    if "status" in metrics:
        rows = metrics[metrics["status"] == "diverged"]
        diverged_runs = set(zip(rows["cell"], rows["seed"].astype(int), strict=True))
    for cell in cells:
        color = colors.get(cell)
        seeds = sorted(seed for c, seed in histories if c == cell)
        completed = [seed for seed in seeds if (cell, seed) not in diverged_runs]
        diverged = [seed for seed in seeds if (cell, seed) in diverged_runs]
        for seed in diverged:
            # Up to the last finite loss, ending in a cross where the run stopped.
            history = histories[(cell, seed)]
            finite = history[np.isfinite(history["loss"])]
            ax.plot(finite["epoch"], finite["loss"], color=color, alpha=0.4, linewidth=0.6)
            if len(finite):
                ax.plot(finite["epoch"].iloc[-1], finite["loss"].iloc[-1], "x", color=color, ms=7)
        rows = metrics[metrics["cell"] == cell]
        params = int(rows["params"].iloc[0]) if len(rows) else 0
        note = f", {len(diverged)} diverged (x)" if diverged else ""
        name = cell_label(cell)
        if not completed:
            ax.plot([], [], "x", color=color, label=f"{name} (n={len(seeds)}{note})")
            continue
        length = min(len(histories[(cell, seed)]) for seed in completed)
        epochs = histories[(cell, completed[0])]["epoch"].to_numpy()[:length]
        curves = np.stack(
            [histories[(cell, seed)]["loss"].to_numpy()[:length] for seed in completed]
        )
        if settings.seed_lines:
            for curve in curves:
                ax.plot(epochs, curve, color=color, alpha=0.25, linewidth=0.6)
        center, low, high = center_and_band(curves, settings.band, settings.log_y)
        kind = "geometric mean" if settings.log_y else "mean"
        label = f"{name} ({kind}, n={len(seeds)}{note}, {params:,} params)"
        ax.plot(epochs, center, color=color, linewidth=1.8, label=label)
        if low is not None:
            ax.fill_between(epochs, low, high, color=color, alpha=0.2, linewidth=0)
        _draw_heldout(ax, [histories[(cell, seed)] for seed in completed], color, name, settings)
    if settings.log_y:
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)


def _draw_heldout(ax, histories: list[pd.DataFrame], color, name: str, settings) -> None:
    """The held-out loss of completed runs: its centre over seeds (the same kind as the
    training curve's), dashed with markers at the epochs every run measured it."""
    if not histories or any("heldout_loss" not in history for history in histories):
        return
    measured = [history.dropna(subset=["heldout_loss"]) for history in histories]
    epochs = sorted(set.intersection(*(set(m["epoch"]) for m in measured)))
    if not epochs:
        return
    curves = np.stack(
        [m.set_index("epoch").loc[epochs, "heldout_loss"].to_numpy(dtype=float) for m in measured]
    )
    if not np.isfinite(curves).all() or (settings.log_y and (curves <= 0).any()):
        return
    center, _, _ = center_and_band(curves, "none", settings.log_y)
    marker = "o" if len(epochs) <= 30 else None
    ax.plot(
        epochs,
        center,
        color=color,
        linestyle="--",
        linewidth=1.2,
        marker=marker,
        ms=3,
        label=f"{name} held-out loss",
    )


def _save(fig, outputs: Sequence[str | Path], dpi: int) -> None:
    import matplotlib.pyplot as plt

    for path in outputs:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # No timestamps in the files, so the same inputs give the same bytes.
        metadata = {"Date": None} if path.suffix == ".svg" else {}
        fig.savefig(path, dpi=dpi, metadata=metadata)
    plt.close(fig)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curves(
    histories: Mapping[tuple[str, int], pd.DataFrame],
    metrics: pd.DataFrame,
    outputs: Sequence[str | Path],
    settings: PlotSettings = PlotSettings(),
) -> None:
    """Draw every cell's runs and save the figure to each of ``outputs`` (format by suffix)."""
    plot_conditions([("", histories, metrics)], outputs, settings)


def plot_conditions(
    panels: Sequence[tuple[str, Mapping[tuple[str, int], pd.DataFrame], pd.DataFrame]],
    outputs: Sequence[str | Path],
    settings: PlotSettings = PlotSettings(),
) -> None:
    """One panel per condition (``(title, histories, metrics)``; small multiples with a shared
    loss axis), saved to each of ``outputs``. A single condition gives today's single figure,
    titled ``settings.title``."""
    plt = _pyplot()
    count = len(panels)
    columns = count if count <= 3 else math.ceil(math.sqrt(count))
    rows = -(-count // columns)
    # A panel of a study keeps the configured size, up to a readable total.
    scale = 1.0 if count == 1 else 0.75
    cells = list(dict.fromkeys(cell for _, histories, _ in panels for cell, _ in histories))
    beside = count == 1 and len(cells) > 2  # the legend beside the axes: room for it
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(
            settings.width * columns * scale * (1.45 if beside else 1.0),
            settings.height * rows * scale,
        ),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    band_note = {"ci95": "band: 95% CI over seeds", "range": "band: min-max over seeds"}
    colors = cell_colors(cells)
    figure_title = settings.title if settings.title is not None else default_title(cells)
    for ax, (title, histories, metrics) in zip(axes.flat, panels, strict=False):
        _draw_cells(ax, histories, metrics, settings, colors)
        ax.set_title(title if count > 1 else figure_title, fontsize="small" if count > 1 else None)
        # Two cells leave the upper right free, as in the original figure; more cells fill
        # the axes, so a single panel's legend goes beside it, a study panel's where it fits.
        if len(cells) <= 2:
            place = {"loc": "upper right"}
        elif beside:
            place = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)}
        else:
            place = {"loc": "best"}
        legend = ax.legend(
            **place,
            title=band_note.get(settings.band),
            fontsize="small" if count > 1 or len(cells) > 2 else None,
        )
        legend.get_title().set_fontsize("small")
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("loss (MSE, standardized)\ntraining solid, held-out dashed")
    if count > 1:
        fig.suptitle(figure_title)
    fig.tight_layout()
    _save(fig, outputs, settings.dpi)


def _axis_positions(values: Sequence) -> tuple[np.ndarray, list[str] | None]:
    """x positions of an axis' values: the numbers themselves, or categories in order."""
    numeric = all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        for v in values
    )
    if numeric:
        return np.asarray(values, dtype=float), None
    labels = [str(v) for v in values]
    return np.arange(len(values), dtype=float), labels


def plot_study(
    comparison: pd.DataFrame,
    axes: Sequence[str],
    outputs: Sequence[str | Path],
    settings: PlotSettings = PlotSettings(),
    metric: str = "final_loss",
    reference: str | None = None,
) -> None:
    """Per study axis, a panel of each cell's ratio to the reference on ``metric`` (geometric
    means over seeds, 95% interval, from ``comparison``) against the axis value: one line per
    cell in its colour (and, with more axes, per combination of the others, told apart by line
    style), with a dashed line at 1 (no difference). ``reference`` defaults to the one most of
    the comparison's rows have."""
    if not axes:
        raise ValueError("a study figure needs at least one study axis")
    plt = _pyplot()
    rows = comparison[comparison["metric"] == metric]
    if reference is None and len(rows):
        reference = rows["reference"].mode().iloc[0]
    rows = rows[rows["reference"] == reference]
    cells = list(dict.fromkeys(rows["cell"]))
    colors = cell_colors([*cells, reference])
    styles = ("-", "--", ":", "-.")
    fig, panels = plt.subplots(
        1,
        len(axes),
        figsize=(settings.width * 0.75 * len(axes), settings.height * 0.8),
        sharey=True,
        squeeze=False,
    )
    for ax, axis in zip(panels[0], axes, strict=True):
        others = [other for other in axes if other != axis]
        values = list(dict.fromkeys(rows[axis]))
        positions, labels = _axis_positions(values)
        where = dict(zip(map(str, values), positions, strict=True))
        for cell in cells:
            of_cell = rows[rows["cell"] == cell]
            groups = of_cell.groupby(others, sort=False) if others else [((), of_cell)]
            for index, (key, group) in enumerate(groups):
                key = key if isinstance(key, tuple) else (key,)
                x = np.array([where[str(v)] for v in group[axis]])
                order = np.argsort(x)
                effect = group["effect"].to_numpy(dtype=float)[order]
                low = group["ci_low"].to_numpy(dtype=float)[order]
                high = group["ci_high"].to_numpy(dtype=float)[order]
                setting = ", ".join(f"{o} = {v}" for o, v in zip(others, key, strict=True))
                label = " / ".join(map(cell_label, (cell, reference)))
                label = f"{label}, {setting}" if setting else label
                # Where an arm has too few runs the interval is NaN: the point stands alone.
                yerr = np.vstack([effect - low, high - effect])
                ax.errorbar(
                    x[order],
                    effect,
                    yerr=np.nan_to_num(yerr),
                    marker="o",
                    capsize=3,
                    color=colors[cell],
                    linestyle=styles[index % len(styles)],
                    label=label,
                )
        ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
        ax.set_yscale("log")
        ax.set_xlabel(axis)
        if labels is not None:
            ax.set_xticks(positions, labels)
        elif len(values) > 2 and min(values) > 0 and max(values) / min(values) >= 20:
            ax.set_xscale("log")
            ax.set_xticks(positions, [str(v) for v in values])
        ax.grid(True, which="both", alpha=0.3)
        if others or len(cells) > 1:
            ax.legend(fontsize="small")
    against = cell_label(reference) if reference else "reference"
    panels[0][0].set_ylabel(
        f"cell / {against} {metric.replace('_', ' ')}\n(< 1: the cell lower; 95% CI)"
    )
    compared = [reference, *cells] if reference else cells
    title = settings.title or " vs ".join(cell_label(cell) for cell in compared)
    fig.suptitle(f"{title}: where each cell ends lower than the {against}")
    fig.tight_layout()
    _save(fig, outputs, settings.dpi)
