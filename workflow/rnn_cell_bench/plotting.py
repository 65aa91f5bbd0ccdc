"""The comparison figure: loss against epoch, mean over seeds with a band, per-seed lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rnn_cell_bench.statistics import t_band

# As in the original figure: LSTM blue, GRU orange.
CELL_COLORS = {"lstm": "#1f77b4", "gru": "#ff7f0e"}
CELL_LABELS = {"lstm": "LSTM", "gru": "GRU"}
BANDS = ("ci95", "range", "none")


@dataclass(frozen=True)
class PlotSettings:
    band: str = "ci95"
    seed_lines: bool = True
    log_y: bool = True
    title: str = "LSTM vs GRU: training loss"
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


def plot_loss_curves(
    histories: Mapping[tuple[str, int], pd.DataFrame],
    metrics: pd.DataFrame,
    outputs: Sequence[str | Path],
    settings: PlotSettings = PlotSettings(),
) -> None:
    """Draw every cell's runs and save the figure to each of ``outputs`` (format by suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = list(dict.fromkeys(cell for cell, _ in histories))
    diverged_runs = set()
    if "status" in metrics:
        rows = metrics[metrics["status"] == "diverged"]
        diverged_runs = set(zip(rows["cell"], rows["seed"].astype(int), strict=True))
    fig, ax = plt.subplots(figsize=(settings.width, settings.height))
    for cell in cells:
        color = CELL_COLORS.get(cell)
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
        name = CELL_LABELS.get(cell, cell)
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
    if settings.log_y:
        ax.set_yscale("log")
    band_note = {"ci95": "band: 95% CI over seeds", "range": "band: min-max over seeds"}
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (MSE, standardized)")
    ax.set_title(settings.title)
    ax.grid(True, which="both", alpha=0.3)
    legend = ax.legend(loc="upper right", title=band_note.get(settings.band))
    legend.get_title().set_fontsize("small")
    fig.tight_layout()
    for path in outputs:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # No timestamps in the files, so the same inputs give the same bytes.
        metadata = {"Date": None} if path.suffix == ".svg" else {}
        fig.savefig(path, dpi=settings.dpi, metadata=metadata)
    plt.close(fig)
