"""Per-run metrics: one row of ``metrics.csv`` per training run.

Summaries over seeds and the comparisons between cells are in :mod:`rnn_cell_bench.statistics`.

Losses
------
``final_loss`` is the loss reported for the last epoch: as Keras reports it, the loss of the
weights before that epoch's update. ``best_loss`` is the lowest epoch loss. ``tail_loss`` is the
geometric mean of the last ``metrics.tail_epochs`` epochs (all of them if fewer): one spike at
the end moves it by 1/tail_epochs of its log size, where it can set ``final_loss`` alone.

Volatility
----------
``volatility`` is the mean upward move of the log-loss per epoch::

    volatility = sum_t max(0, log L_t - log L_{t-1}) / (T - 1)

A loss curve that only descends scores 0 whatever its shape or speed; every rise (a spike,
or the oscillation of an unstable descent) adds its size in log units, and the rise of a spike
counts the same at loss 2.0 as at loss 0.02. Because the descent itself is left out, it measures
roughness, not progress. ``spikes`` is the count of epoch-to-epoch rises of more than 5%.

Held-out losses
---------------
The held-out loss is the MSE on the held-out part, measured after the update of every
``train.eval_every``-th epoch and of the last (``history.csv``'s ``heldout_loss``, empty at
other epochs). ``heldout_loss`` is the value after the last epoch: the trained model, judged on
data it never saw. ``best_heldout_loss`` is the lowest measured value and
``best_heldout_epoch`` its epoch: what early stopping on the held-out part would have kept (an
optimistic figure, since the held-out part then chose the epoch).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from rnn_cell_bench.statistics import TAIL_EPOCHS, tail_loss

SPIKE_THRESHOLD = 0.05  # a rise of more than 5% from one epoch to the next
METRIC_COLUMNS = (
    "cell",
    "seed",
    "status",
    "params",
    "tail_loss",
    "final_loss",
    "best_loss",
    "volatility",
    "spikes",
    "heldout_loss",
    "best_heldout_loss",
    "best_heldout_epoch",
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


def condition_columns(metrics: pd.DataFrame) -> list[str]:
    """Columns of a metrics table that name a condition: every column beyond
    ``METRIC_COLUMNS`` (none for a plain config), in table order."""
    return [column for column in metrics.columns if column not in METRIC_COLUMNS]


def run_metrics(run: dict, history: pd.DataFrame, tail_epochs: int = TAIL_EPOCHS) -> dict:
    """One row of ``metrics.csv`` from a run's ``run.json`` record and ``history.csv``.

    A diverged run has no tail or final loss (NaN); its best loss, volatility and spikes
    describe the epochs before the loss became NaN or inf.
    """
    losses = history["loss"].to_numpy(dtype=float)
    finite = losses[: np.argmin(np.isfinite(losses))] if not np.isfinite(losses).all() else losses
    diverged = run.get("status", "completed") == "diverged"
    held = history["heldout_loss"] if "heldout_loss" in history else pd.Series(dtype=float)
    measured = held.to_numpy(dtype=float)
    finite_held = np.flatnonzero(np.isfinite(measured))
    last = measured[-1] if len(finite_held) and len(measured) == len(losses) else math.nan
    best = finite_held[np.argmin(measured[finite_held])] if len(finite_held) else None
    return {
        "cell": run["cell"],
        "seed": int(run["seed"]),
        "status": "diverged" if diverged else "completed",
        "params": int(run["params"]),
        "tail_loss": math.nan if diverged else tail_loss(losses, tail_epochs),
        "final_loss": math.nan if diverged else float(losses[-1]),
        "best_loss": float(finite.min()) if len(finite) else math.nan,
        "volatility": volatility(finite) if len(finite) > 1 else math.nan,
        "spikes": spike_count(finite) if len(finite) > 1 else 0,
        # a completed run whose last held-out loss is not finite ranks worst, as NaN would not
        "heldout_loss": math.nan if diverged else (last if math.isfinite(last) else math.inf),
        "best_heldout_loss": float(measured[best]) if best is not None else math.nan,
        "best_heldout_epoch": int(best) + 1 if best is not None else None,
        "sec_per_epoch": float(run["sec_per_epoch"]),
        "engine": run.get("engine", "keras"),
        "device": run["device"],
    }
