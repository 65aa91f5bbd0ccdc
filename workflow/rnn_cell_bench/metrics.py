"""Per-run metrics and per-cell summaries with uncertainty over seeds.

Volatility
----------
``volatility`` is the mean upward move of the log-loss per epoch::

    volatility = sum_t max(0, log L_t - log L_{t-1}) / (T - 1)

A loss curve that only descends scores 0 whatever its shape or speed; every rise (a spike,
or the oscillation of an unstable descent) adds its size in log units, and the rise of a spike
counts the same at loss 2.0 as at loss 0.02. Because the descent itself is left out, it measures
roughness, not progress. ``spikes`` is the count of epoch-to-epoch rises of more than 5%.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

SPIKE_THRESHOLD = 0.05  # a rise of more than 5% from one epoch to the next
SUMMARY_METRICS = ("final_loss", "volatility", "sec_per_epoch")
METRIC_COLUMNS = (
    "cell",
    "seed",
    "status",
    "params",
    "final_loss",
    "best_loss",
    "volatility",
    "spikes",
    "sec_per_epoch",
    "engine",
    "device",
)


def _log_steps(losses: Iterable[float]) -> np.ndarray:
    loss = np.asarray(list(losses), dtype=float)
    if loss.ndim != 1 or len(loss) < 2:
        raise ValueError("a loss curve needs at least two epochs")
    if np.any(loss <= 0) or not np.all(np.isfinite(loss)):
        raise ValueError("losses must be positive and finite")
    return np.diff(np.log(loss))


def volatility(losses: Iterable[float]) -> float:
    """Mean upward log-loss move per epoch (0 for a curve that never rises)."""
    return float(np.clip(_log_steps(losses), 0.0, None).mean())


def spike_count(losses: Iterable[float], threshold: float = SPIKE_THRESHOLD) -> int:
    """Number of epoch-to-epoch rises of more than ``threshold`` (relative)."""
    return int(np.sum(_log_steps(losses) > math.log1p(threshold)))


def run_metrics(run: dict, history: pd.DataFrame) -> dict:
    """One row of ``metrics.csv`` from a run's ``run.json`` record and ``history.csv``.

    A diverged run has no final loss (NaN); its best loss, volatility and spikes describe the
    epochs before the loss became NaN or inf.
    """
    losses = history["loss"].to_numpy(dtype=float)
    finite = losses[: np.argmin(np.isfinite(losses))] if not np.isfinite(losses).all() else losses
    diverged = run.get("status", "completed") == "diverged"
    return {
        "cell": run["cell"],
        "seed": int(run["seed"]),
        "status": "diverged" if diverged else "completed",
        "params": int(run["params"]),
        "final_loss": math.nan if diverged else float(losses[-1]),
        "best_loss": float(finite.min()) if len(finite) else math.nan,
        "volatility": volatility(finite) if len(finite) > 1 else math.nan,
        "spikes": spike_count(finite) if len(finite) > 1 else 0,
        "sec_per_epoch": float(run["sec_per_epoch"]),
        "engine": run.get("engine", "keras"),
        "device": run["device"],
    }


def t_interval(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval of the mean (NaN bounds when n < 2)."""
    from scipy import stats

    x = np.asarray(list(values), dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, df=len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return mean, float(mean - half), float(mean + half)


def summarize(metrics: pd.DataFrame, cell_order: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per cell: n runs, how many diverged, and the mean, std (ddof=1) and 95% CI of
    each summary metric over the runs that completed."""
    rows = []
    cells = list(cell_order) if cell_order is not None else sorted(metrics["cell"].unique())
    for cell in cells:
        group = metrics[metrics["cell"] == cell]
        if group.empty:
            continue
        completed = group[group["status"] != "diverged"]
        row: dict = {
            "cell": cell,
            "n": len(group),
            "n_diverged": len(group) - len(completed),
            "params": int(group["params"].iloc[0]),
        }
        for name in SUMMARY_METRICS:
            values = completed[name]
            mean, low, high = t_interval(values) if len(values) else (math.nan,) * 3
            row[f"{name}_mean"] = mean
            row[f"{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            row[f"{name}_ci95_low"] = low
            row[f"{name}_ci95_high"] = high
        rows.append(row)
    return pd.DataFrame(rows)
