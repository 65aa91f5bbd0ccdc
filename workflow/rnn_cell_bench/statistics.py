"""Cells against a reference over seeds: per-cell summaries, contrasts, exact tests, the claims.

Every choice below is made for 3 to 10 seeds per arm, where normal approximations are weak and
a reviewer asks for exact tests, effect sizes with intervals and a correction for multiplicity.

Metrics and scales
------------------
Lower is better for every metric. The losses (``tail_loss``, ``final_loss``, ``best_loss``, and
on the held-out part ``heldout_loss`` and ``best_heldout_loss``) and ``sec_per_epoch`` are
positive and multiplicative: they are summarised on the log scale and
compared as ratios. ``volatility`` and ``spikes`` can be exactly 0 (a curve that never rises),
so no log is available: they are summarised on the linear scale and compared as differences.

Per-cell summary (``summarize``)
--------------------------------
- Log-scale metrics: the geometric mean with a 95% interval computed on log values (Student-t
  interval of the mean log, exponentiated). It is the centre the loss figure draws, and the
  interval is positive by construction.
- Linear-scale metrics: the arithmetic mean with a 95% percentile bootstrap interval of the mean
  (9,999 resamples, fixed seed). A percentile interval lies within the range of the data, so it
  never extends below zero, unlike a t-interval on a metric that piles up at 0.
- Summaries use the completed runs; ``n``, ``n_completed`` and ``n_diverged`` are reported, and
  the divergence rate with a Wilson 95% interval (good coverage at small n and at 0 or n
  divergences, where the Wald interval collapses to a point).

Cells against the reference (``compare``)
-----------------------------------------
- Pairs (``comparison_pairs``): every other cell against the reference cell
  (``compare.reference``: the LSTM when it runs, else the first cell), and the GRU against the
  LSTM when both run and neither is the reference, so the original's claims are always tested.
  Below, "cell" is the first of a pair and "reference" the second (the GRU and the LSTM in the
  original's pair).
- Effect: cell/reference ratio of geometric means (log-scale metrics) or cell - reference
  difference of means (linear-scale metrics), over completed runs only (a diverged run has no
  loss). The 95% interval is Welch's t-interval, on log values for a ratio (then
  exponentiated): it does not assume equal variances, which the two cells need not have.
- Test: an exact two-sided permutation test of the Wilcoxon-Mann-Whitney rank sum, i.e. the
  difference of mean midranks, with every split of the runs between the arms enumerated
  (252 for 5 against 5; a Monte-Carlo permutation test with 99,999 resamples only beyond
  ``EXACT_SPLITS_MAX`` splits). Ranks rather than mean log values, because a diverged run has no
  value to average but does have a place in the order: it ranks as worst (``+inf``), so
  diverged runs are never dropped from the test (no survivorship bias). Midranks and a
  permutation null make the test exact with ties, where the Mann-Whitney exact table is not.
  On ``sec_per_epoch`` a diverged run enters with its measured time: divergence says nothing
  about speed.
- Effect size: the Vargha-Delaney A12, the probability that a run of the cell beats (is lower
  than) a run of the reference, ties counting one half; A12 = U / (n_cell n_reference) for
  the test's statistic, so p and A12 always agree in direction. Its 95% interval is a
  percentile bootstrap (9,999 resamples within each arm, fixed seed). Percentile, not BCa,
  because BCa is undefined when every resample gives the same value, as under complete
  separation (A12 = 0 or 1). With 5 runs per arm the bootstrap interval is narrow (it is [1, 1]
  under complete separation); read it with the exact p.
- Fewer than ``MIN_COMPLETED`` (3) completed runs in an arm: no test (p is NaN) and ``note``
  says why. With 2 runs in an arm an exact two-sided p cannot go below 0.05 unless the other
  arm has 8 or more.
- Multiplicity: Holm's step-down adjustment within two families fixed in advance, each over
  every test of the experiment, every condition and every pair (NaN p-values are left out of
  the count and stay NaN).
  The *claims* family holds the tests that decide a claim (``CLAIMS``: tail loss, volatility,
  seconds per epoch, held-out loss); the *secondary* family holds the other metrics (final and
  best loss, spikes, best held-out loss), which are reported and adjusted among themselves but
  decide nothing. Each family's error rate is controlled on its own; Holm holds under any
  dependence between the tests (the loss metrics are strongly correlated). The smallest exact
  p with 5 against 5 is 2/252 = 0.0079, so at 5 seeds per arm at most 6 tests of a family can
  reach Holm-adjusted p < 0.05: the 4 claims of one condition can (4 x 0.0079 = 0.032), a
  study of 2 conditions cannot without more seeds, and neither can a third cell (8 tests):
  with 6 seeds per arm the floor is 2/924 = 0.0022, and 8 x 0.0022 = 0.017.

The original's claims (``claims``)
----------------------------------
Each claim is a one-sided statement that the GRU is lower than the LSTM on one metric: the
original post's three (loss, volatility, speed) and a fourth it could not check, on data the
model never saw (``heldout_loss``, the final held-out loss). They are stated whenever both
cells run, whatever the reference (``claim_pairs``; a reference GRU's row is read the other
way round, ``flip``), and every other pair is asked the same four questions, the cell against
the reference. A claim is decided from the two-sided test: **inconclusive** if there is no
test (too few completed runs) or the Holm-adjusted p >= 0.05; otherwise **supported** if
A12 > 0.5 (the cell tends to be lower) and **contradicted** if A12 < 0.5. The speed claim is
specific to the device and engine that were timed, and its statement names them; runs timed
on more than one device or engine leave it inconclusive, since their times do not compare.
``claims.md`` states the family of Holm's adjustment and, from the arm sizes, the smallest
adjusted p the seeds allow (``family_note``): at 5 seeds per arm and 4 claims it is
4 x 2/252 = 0.032, so only a complete separation of the runs decides a claim, and with more
conditions in the family nothing can be decided without more seeds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from rnn_cell_bench.cells import cell_label

CONFIDENCE = 0.95
ALPHA = 0.05
MIN_COMPLETED = 3  # completed runs per arm needed for a test
BOOTSTRAP_RESAMPLES = 9_999
BOOTSTRAP_SEED = 0
EXACT_SPLITS_MAX = 200_000  # C(20, 10) = 184,756: every split up to 10 seeds per arm
MONTE_CARLO_RESAMPLES = 99_999
TAIL_EPOCHS = 50
GRU, LSTM = "gru", "lstm"


FAMILIES = ("claims", "secondary")  # Holm's families, in the order of comparison.csv


@dataclass(frozen=True)
class Metric:
    name: str
    log_scale: bool  # True: geometric mean, GRU/LSTM ratio; False: mean, GRU - LSTM difference
    diverged_worst: bool  # True: a diverged run ranks as worst; False: it enters as measured
    family: str = "secondary"  # "claims": its test decides a claim

    @property
    def effect_kind(self) -> str:
        return "ratio" if self.log_scale else "difference"


METRICS = {
    metric.name: metric
    for metric in (
        Metric("tail_loss", log_scale=True, diverged_worst=True, family="claims"),
        Metric("final_loss", log_scale=True, diverged_worst=True),
        Metric("best_loss", log_scale=True, diverged_worst=True),
        Metric("volatility", log_scale=False, diverged_worst=True, family="claims"),
        Metric("spikes", log_scale=False, diverged_worst=True),
        Metric("sec_per_epoch", log_scale=True, diverged_worst=False, family="claims"),
        Metric("heldout_loss", log_scale=True, diverged_worst=True, family="claims"),
        Metric("best_heldout_loss", log_scale=True, diverged_worst=True),
    )
}

# The columns of a comparison's effect, between its cells and its arm sizes.
_EFFECT_COLUMNS = (
    "metric",
    "effect_kind",
    "effect",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "family",
    "a12",
    "a12_ci_low",
    "a12_ci_high",
)


def arm_columns(cells: Sequence[str], diverged: bool = True) -> list[str]:
    """The arm-size columns of the comparison (and claims) table: ``n_<cell>`` for every cell
    compared, then (``diverged``) ``n_diverged_<cell>``. A row fills those of its two cells."""
    columns = [f"n_{cell}" for cell in cells]
    return columns + [f"n_diverged_{cell}" for cell in cells] if diverged else columns


def comparison_columns(cells: Sequence[str]) -> tuple[str, ...]:
    """``comparison.csv``'s columns after the condition columns, for these compared cells."""
    return ("cell", "reference", *_EFFECT_COLUMNS, *arm_columns(cells), "test", "note")


COMPARISON_COLUMNS = comparison_columns((GRU, LSTM))  # the original's pair


@dataclass(frozen=True)
class Claim:
    number: int
    metric: str
    template: str  # with {cell} and {reference}: the cell claimed lower, the one it is against

    def statement(self, cell: str = GRU, reference: str = LSTM) -> str:
        return self.template.format(cell=cell_label(cell), reference=cell_label(reference))


CLAIMS = (
    Claim(1, "tail_loss", "the {cell} reaches a lower loss than the {reference} (tail loss)"),
    Claim(
        2,
        "volatility",
        "the {reference}'s training is more volatile than the {cell}'s (volatility)",
    ),
    Claim(
        3, "sec_per_epoch", "the {cell} trains faster per epoch than the {reference} (sec/epoch)"
    ),
    Claim(
        4,
        "heldout_loss",
        "the {cell} reaches a lower loss than the {reference} on held-out data (final held-out "
        "loss)",
    ),
)
VERDICTS = ("supported", "contradicted", "inconclusive")
_CLAIM_NUMBERS = (
    "effect_kind",
    "effect",
    "ci_low",
    "ci_high",
    "a12",
    "p_value",
    "p_holm",
)


def claim_columns(cells: Sequence[str]) -> tuple[str, ...]:
    """``claims.csv``'s columns after the condition columns, for these compared cells."""
    return (
        "cell",
        "reference",
        "claim",
        "statement",
        "metric",
        "verdict",
        *_CLAIM_NUMBERS,
        *arm_columns(cells, diverged=False),
        "reason",
    )


CLAIM_COLUMNS = claim_columns((GRU, LSTM))


# --- single-sample summaries ---------------------------------------------------------------


def _finite(values: Iterable[float]) -> np.ndarray:
    x = np.asarray(list(values), dtype=float)
    return x[np.isfinite(x)]


def _t_half_width(x: np.ndarray, confidence: float) -> float:
    return float(
        stats.t.ppf(0.5 + confidence / 2, df=len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    )


def geometric_mean_interval(
    values: Iterable[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """Geometric mean and the exponentiated t-interval of the mean log (NaN bounds if n < 2).

    Non-finite values are ignored; a value <= 0 is an error (it has no log).
    """
    x = _finite(values)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    if np.any(x <= 0):
        raise ValueError("a geometric mean needs positive values")
    logs = np.log(x)
    centre = float(logs.mean())
    if len(x) < 2:
        return math.exp(centre), math.nan, math.nan
    half = _t_half_width(logs, confidence)
    return math.exp(centre), math.exp(centre - half), math.exp(centre + half)


def _bootstrap(samples: tuple[np.ndarray, ...], statistic, confidence: float, seed: int):
    result = stats.bootstrap(
        samples,
        statistic,
        vectorized=True,
        paired=False,
        confidence_level=confidence,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def mean_interval(
    values: Iterable[float], confidence: float = CONFIDENCE, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float, float]:
    """Mean and percentile bootstrap interval of the mean (NaN bounds if n < 2).

    The interval lies within the range of the values, so it never leaves [0, inf) for a
    non-negative metric. Non-finite values are ignored.
    """
    x = _finite(values)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    if len(x) < 2:
        return float(x.mean()), math.nan, math.nan
    if np.all(x == x[0]):  # every resample is the same
        return float(x[0]), float(x[0]), float(x[0])
    low, high = _bootstrap((x,), lambda s, axis: s.mean(axis=axis), confidence, seed)
    return float(x.mean()), low, high


def wilson_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Proportion k/n and its Wilson score interval (NaN for n = 0)."""
    if n == 0:
        return math.nan, math.nan, math.nan
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return k / n, float(ci.low), float(ci.high)


def tail_loss(losses: Iterable[float], tail_epochs: int = TAIL_EPOCHS) -> float:
    """Geometric mean of the last ``tail_epochs`` epochs' losses (all of them if fewer).

    One spike moves it by a fraction 1/tail_epochs of the spike's log size, where it can set
    ``final_loss`` alone. NaN for a history holding a NaN or inf loss (a diverged run).
    """
    if tail_epochs < 1:
        raise ValueError("tail_epochs must be at least 1")
    loss = np.asarray(list(losses), dtype=float)
    if loss.ndim != 1 or len(loss) == 0:
        raise ValueError("a loss history needs at least one epoch")
    if not np.all(np.isfinite(loss)):
        return math.nan
    tail = loss[-tail_epochs:]
    if np.any(tail <= 0):
        raise ValueError("losses must be positive")
    return float(np.exp(np.log(tail).mean()))


def t_band(values: np.ndarray, confidence: float = CONFIDENCE):
    """Per column (axis 1 of a runs x epochs array): the mean and its Student-t interval, as
    arrays (bounds None for a single run). On log values this is, exponentiated,
    :func:`geometric_mean_interval` at every epoch: the figure's band around the geometric mean.
    """
    x = np.asarray(values, dtype=float)
    centre = x.mean(axis=0)
    if len(x) < 2:
        return centre, None, None
    t = stats.t.ppf(0.5 + confidence / 2, df=len(x) - 1)
    half = t * x.std(axis=0, ddof=1) / math.sqrt(len(x))
    return centre, centre - half, centre + half


# --- two-sample contrast -------------------------------------------------------------------


def holm(p_values: Iterable[float]) -> np.ndarray:
    """Holm step-down adjusted p-values, in the input's order; NaN stays NaN and is not counted."""
    p = np.asarray(list(p_values), dtype=float)
    adjusted = np.full(p.shape, math.nan)
    present = np.flatnonzero(~np.isnan(p))
    m = len(present)
    order = present[np.argsort(p[present], kind="stable")]
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[index]))  # monotone step-down
        adjusted[index] = running
    return adjusted


def a12(cell: Sequence[float], reference: Sequence[float]) -> float:
    """Vargha-Delaney A12: P(a ``cell`` value is below a ``reference`` value) + 0.5 P(tie)."""
    g, ell = np.asarray(cell, dtype=float), np.asarray(reference, dtype=float)
    return float(_a12(g, ell, axis=-1))


def _a12(g: np.ndarray, ell: np.ndarray, axis: int = -1) -> np.ndarray:
    g, ell = np.moveaxis(g, axis, -1), np.moveaxis(ell, axis, -1)
    less = (g[..., :, None] < ell[..., None, :]).mean(axis=(-2, -1))
    ties = (g[..., :, None] == ell[..., None, :]).mean(axis=(-2, -1))  # inf == inf: a tie
    return less + 0.5 * ties


def rank_test(cell: Sequence[float], reference: Sequence[float], seed: int = BOOTSTRAP_SEED):
    """Two-sided permutation test of the rank sum (midranks; +inf ranks last).

    Returns (p, name of the test). Exact (every split enumerated) up to ``EXACT_SPLITS_MAX``
    splits, Monte-Carlo beyond.
    """
    g, ell = np.asarray(cell, dtype=float), np.asarray(reference, dtype=float)
    if np.isnan(g).any() or np.isnan(ell).any():
        raise ValueError("rank_test needs values or +inf (a diverged run), not NaN")
    ranks = stats.rankdata(np.concatenate([g, ell]))
    splits = math.comb(len(g) + len(ell), len(g))
    exact = splits <= EXACT_SPLITS_MAX
    result = stats.permutation_test(
        (ranks[: len(g)], ranks[len(g) :]),
        lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis),
        permutation_type="independent",
        vectorized=True,
        n_resamples=np.inf if exact else MONTE_CARLO_RESAMPLES,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    if exact:
        name = f"exact permutation, rank sum ({splits} splits)"
    else:
        name = f"Monte-Carlo permutation, rank sum ({MONTE_CARLO_RESAMPLES} resamples)"
    return float(min(1.0, result.pvalue)), name


def effect_interval(
    cell: Sequence[float],
    reference: Sequence[float],
    log_scale: bool,
    confidence: float = CONFIDENCE,
) -> tuple[float, float, float]:
    """cell/reference ratio of geometric means (log_scale) or cell - reference difference of
    means, with a Welch t-interval (on log values for the ratio). NaN bounds unless each arm
    has 2 values."""
    g, ell = np.asarray(cell, dtype=float), np.asarray(reference, dtype=float)
    if len(g) == 0 or len(ell) == 0:
        return math.nan, math.nan, math.nan
    if log_scale:
        if np.any(g <= 0) or np.any(ell <= 0):
            raise ValueError("a ratio of geometric means needs positive values")
        g, ell = np.log(g), np.log(ell)
    diff = float(g.mean() - ell.mean())
    back = math.exp if log_scale else float
    if len(g) < 2 or len(ell) < 2:
        return back(diff), math.nan, math.nan
    vg, vl = g.var(ddof=1) / len(g), ell.var(ddof=1) / len(ell)
    se = math.sqrt(vg + vl)
    if se == 0:  # both arms constant: nothing to widen
        return back(diff), back(diff), back(diff)
    df = (vg + vl) ** 2 / (vg**2 / (len(g) - 1) + vl**2 / (len(ell) - 1))  # Welch-Satterthwaite
    half = float(stats.t.ppf(0.5 + confidence / 2, df=df)) * se
    return back(diff), back(diff - half), back(diff + half)


def contrast(
    cell_runs: pd.DataFrame,
    reference_runs: pd.DataFrame,
    metric: str,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
    names: tuple[str, str] = (GRU, LSTM),
) -> dict:
    """One row of the comparison table (without ``p_holm``) from two arms' per-run rows: the
    cell ``names[0]`` against the reference ``names[1]``. Arm sizes are ``n_<cell>`` and
    ``n_diverged_<cell>``; effects are cell/reference (ratio) or cell - reference."""
    spec = METRICS[metric]
    arms = {"cell": cell_runs, "reference": reference_runs}
    labels = dict(zip(arms, map(cell_label, names), strict=True))
    n = {arm: len(runs) for arm, runs in arms.items()}
    diverged = {arm: _diverged(runs) for arm, runs in arms.items()}
    completed = {
        arm: runs.loc[~diverged[arm], metric].to_numpy(dtype=float) for arm, runs in arms.items()
    }
    row = {
        "cell": names[0],
        "reference": names[1],
        "metric": metric,
        "effect_kind": spec.effect_kind,
        "family": spec.family,
        **{f"n_{name}": n[arm] for arm, name in zip(arms, names, strict=True)},
        **{
            f"n_diverged_{name}": int(diverged[arm].sum())
            for arm, name in zip(arms, names, strict=True)
        },
        "test": "",
    }
    notes = []
    missing = [arm for arm in arms if n[arm] == 0]
    if missing:
        notes.append(f"no {' or '.join(labels[arm] for arm in missing)} runs")
    for arm in arms:
        if np.isnan(completed[arm]).any():
            raise ValueError(f"{metric} is missing (NaN) for a completed {labels[arm]} run")

    effect, low, high = effect_interval(
        completed["cell"], completed["reference"], spec.log_scale, confidence
    )
    row.update(effect=effect, ci_low=low, ci_high=high)

    ranked = {arm: _rank_values(runs, metric, diverged[arm], spec) for arm, runs in arms.items()}
    row["a12"] = a12(ranked["cell"], ranked["reference"]) if not missing else math.nan
    if min(n.values()) >= 2:
        row["a12_ci_low"], row["a12_ci_high"] = _bootstrap(
            (ranked["cell"], ranked["reference"]), _a12, confidence, seed
        )
    else:
        row["a12_ci_low"] = row["a12_ci_high"] = math.nan

    n_completed = {arm: len(values) for arm, values in completed.items()}
    counts = ", ".join(f"{labels[arm]} {n_completed[arm]}" for arm in arms)
    if missing:
        row["p_value"] = math.nan
    elif min(n_completed.values()) < MIN_COMPLETED:
        row["p_value"] = math.nan
        notes.append(f"no test: too few completed runs ({counts}), {MIN_COMPLETED} per cell needed")
    else:
        row["p_value"], row["test"] = rank_test(ranked["cell"], ranked["reference"], seed)

    if any(diverged[arm].any() for arm in arms) and not missing:
        how = "rank as worst" if spec.diverged_worst else "enter with their measured time"
        notes.append(
            f"effect and interval over completed runs only ({counts}), diverged runs {how} in "
            f"p and A12"
        )
    row["note"] = "; ".join(notes)  # no "; " inside a note: decide() splits on it
    return row


def _diverged(runs: pd.DataFrame) -> np.ndarray:
    return (runs["status"] == "diverged").to_numpy()


def _rank_values(runs: pd.DataFrame, metric: str, diverged: np.ndarray, spec: Metric):
    values = runs[metric].to_numpy(dtype=float).copy()
    if spec.diverged_worst:
        values[diverged] = math.inf
    elif np.isnan(values).any():
        raise ValueError(f"{metric} is missing (NaN) for a run")
    return values


# --- tables --------------------------------------------------------------------------------


def _conditions(metrics: pd.DataFrame, condition_columns: Sequence[str]):
    if not condition_columns:
        yield {}, metrics
        return
    for key, group in metrics.groupby(list(condition_columns), sort=True, dropna=False):
        yield dict(zip(condition_columns, key, strict=True)), group


def _check_columns(metrics: pd.DataFrame, names: Iterable[str]) -> None:
    missing = [name for name in names if name not in metrics.columns]
    if missing:
        raise KeyError(f"the metrics table lacks the columns {missing}")


def summarize(
    metrics: pd.DataFrame,
    condition_columns: Sequence[str] = (),
    metric_names: Sequence[str] = tuple(METRICS),
    cells: Sequence[str] | None = None,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """One row per condition x cell: n, n_completed, n_diverged, the divergence rate with its
    Wilson interval, ``params`` if present, and per metric ``<m>_gmean`` (log-scale metrics) or
    ``<m>_mean`` with ``<m>_ci_low`` and ``<m>_ci_high``, over completed runs."""
    condition_columns = list(condition_columns)
    _check_columns(metrics, ["cell", "status", *condition_columns, *metric_names])
    order = list(cells) if cells is not None else sorted(metrics["cell"].unique())
    rows = []
    for condition, group in _conditions(metrics, condition_columns):
        for cell in order:
            runs = group[group["cell"] == cell]
            if runs.empty:
                continue
            n_diverged = int(_diverged(runs).sum())
            rate, rate_low, rate_high = wilson_interval(n_diverged, len(runs), confidence)
            row = {
                **condition,
                "cell": cell,
                "n": len(runs),
                "n_completed": len(runs) - n_diverged,
                "n_diverged": n_diverged,
                "divergence_rate": rate,
                "divergence_ci_low": rate_low,
                "divergence_ci_high": rate_high,
            }
            if "params" in runs.columns:
                row["params"] = int(runs["params"].iloc[0])
            completed = runs[~_diverged(runs)]
            for name in metric_names:
                values = completed[name].to_numpy(dtype=float)
                if METRICS[name].log_scale:
                    centre, low, high = geometric_mean_interval(values, confidence)
                    row[f"{name}_gmean"] = centre
                else:
                    centre, low, high = mean_interval(values, confidence)
                    row[f"{name}_mean"] = centre
                row[f"{name}_ci_low"], row[f"{name}_ci_high"] = low, high
            rows.append(row)
    return pd.DataFrame(rows)


def default_reference(cells: Sequence[str]) -> str:
    """``compare.reference`` when the config leaves it out: the LSTM when it is run (the
    original's baseline), else the first cell."""
    cells = list(cells)
    if not cells:
        raise ValueError("no cells to compare")
    return LSTM if LSTM in cells else cells[0]


def comparison_pairs(cells: Sequence[str], reference: str | None = None) -> list[tuple[str, str]]:
    """The (cell, reference) pairs an experiment tests: every other cell against the
    reference, and GRU against LSTM when both run and neither is the reference (the
    original's claims are always checked)."""
    cells = list(cells)
    reference = default_reference(cells) if reference is None else reference
    if reference not in cells:
        raise ValueError(f"the reference cell {reference!r} is not one of the cells {cells}")
    pairs = [(cell, reference) for cell in cells if cell != reference]
    if GRU in cells and LSTM in cells and reference not in (GRU, LSTM):
        pairs.append((GRU, LSTM))
    return pairs


def compared_cells(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """The cells of ``pairs`` in the order their arm-size columns take: each pair's cell, then
    its reference."""
    return list(dict.fromkeys(name for pair in pairs for name in pair))


def compare(
    metrics: pd.DataFrame,
    condition_columns: Sequence[str] = (),
    metric_names: Sequence[str] = tuple(METRICS),
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
    cells: Sequence[str] | None = None,
    reference: str | None = None,
) -> pd.DataFrame:
    """Every other cell against the reference (:func:`comparison_pairs`; ``cells`` defaults
    to those in ``metrics`` in order of appearance, ``reference`` to
    :func:`default_reference`): one row per condition x pair x metric
    (:func:`comparison_columns` after the condition columns), with Holm's adjustment within
    each family (``Metric.family``) over every test of the experiment: every condition and
    every pair."""
    condition_columns = list(condition_columns)
    _check_columns(metrics, ["cell", "status", *condition_columns, *metric_names])
    unknown = [name for name in metric_names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {list(METRICS)}")
    metrics = metrics.assign(cell=metrics["cell"].str.lower())
    cells = list(dict.fromkeys(metrics["cell"])) if cells is None else list(cells)
    pairs = comparison_pairs(cells, reference) if len(cells) > 1 else []
    rows = []
    for condition, group in _conditions(metrics, condition_columns):
        for cell, against in pairs:
            cell_runs, reference_runs = (
                group[group["cell"] == cell],
                group[group["cell"] == against],
            )
            for name in metric_names:
                row = contrast(cell_runs, reference_runs, name, confidence, seed, (cell, against))
                rows.append({**condition, **row})
    columns = [*condition_columns, *comparison_columns(compared_cells(pairs))]
    table = pd.DataFrame(rows, columns=columns)
    for family in FAMILIES:
        members = table["family"] == family
        table.loc[members, "p_holm"] = holm(table.loc[members, "p_value"])
    return table


# --- claims --------------------------------------------------------------------------------


def _distinct(names: str | Iterable[str]) -> list[str]:
    if isinstance(names, str):
        return [names]
    return sorted({str(name) for name in names})


def mixed_setups(device: str | Iterable[str], engine: str | Iterable[str]) -> bool:
    """Whether runs timed on these devices and engines used more than one of either."""
    return len(_distinct(device)) > 1 or len(_distinct(engine)) > 1


def claim_statement(
    claim: Claim,
    device: str | Iterable[str],
    engine: str | Iterable[str],
    cell: str = GRU,
    reference: str = LSTM,
) -> str:
    """The claim as tested, that ``cell`` is lower than ``reference``; the speed claim names
    the device and engine that were timed.

    ``device`` and ``engine`` are a name or every run's name (a metrics column): when the runs
    used more than one, the statement says so, since their times are then not comparable."""
    statement = claim.statement(cell, reference)
    if claim.metric != "sec_per_epoch":
        return statement
    devices, engines = _distinct(device), _distinct(engine)
    if not devices or not engines:
        raise ValueError("the speed claim needs the device and engine that were timed")
    where = devices[0] if len(devices) == 1 else f"several devices ({', '.join(devices)})"
    if len(engines) == 1:
        how = f"the {engines[0]} engine"
    else:
        how = f"the {' and '.join(engines)} engines"
    text = f"{statement}, on {where} with {how}"
    if mixed_setups(devices, engines):
        text += " (mixed set-ups: the times are not comparable)"
    return text


def decide(row: pd.Series | dict, alpha: float = ALPHA, cell: str = GRU) -> tuple[str, str]:
    """Verdict (supported, contradicted, inconclusive) and its reason for a claim that
    ``cell`` is lower on the row's metric (the row compares it against its reference)."""
    p_holm, p, a = row["p_holm"], row["p_value"], row["a12"]
    if pd.isna(p) or pd.isna(p_holm):
        parts = [part for part in str(row.get("note") or "").split("; ") if part.startswith("no ")]
        return "inconclusive", "; ".join(parts) or "no test"
    unadjusted = f"(unadjusted p = {_p(p)}, A12 = {a:.2f})"
    if p_holm >= alpha:
        return "inconclusive", f"not significant: Holm-adjusted p = {_p(p_holm)} {unadjusted}"
    significant = f"Holm-adjusted p = {_p(p_holm)} < {alpha:g} {unadjusted}"
    label = cell_label(cell)
    if a > 0.5:
        return "supported", f"{label} lower, {significant}"
    return "contradicted", f"{label} higher, the opposite of the claim, {significant}"


def flip(row: pd.Series) -> pd.Series:
    """A comparison row read the other way round: reference against cell. The same test (p,
    p_holm); the effect inverted (ratio) or negated (difference), its interval with it; A12
    becomes 1 - A12."""
    flipped = row.copy()
    flipped["cell"], flipped["reference"] = row["reference"], row["cell"]
    if row["effect_kind"] == "ratio":
        flipped["effect"] = 1 / row["effect"]
        flipped["ci_low"], flipped["ci_high"] = 1 / row["ci_high"], 1 / row["ci_low"]
    else:
        flipped["effect"] = -row["effect"]
        flipped["ci_low"], flipped["ci_high"] = -row["ci_high"], -row["ci_low"]
    flipped["a12"] = 1 - row["a12"]
    flipped["a12_ci_low"], flipped["a12_ci_high"] = 1 - row["a12_ci_high"], 1 - row["a12_ci_low"]
    return flipped


def claim_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (cell, reference) pairs whose claims are stated, from a comparison's pairs: GRU
    against LSTM first when both were compared (whichever is the reference: the original's
    claims), then every other pair as compared."""
    pairs = list(dict.fromkeys(pairs))
    original = {GRU, LSTM}
    stated = [(GRU, LSTM)] if any(set(pair) == original for pair in pairs) else []
    return stated + [pair for pair in pairs if set(pair) != original]


def _pair_row(group: pd.DataFrame, cell: str, reference: str, metric: str) -> pd.Series:
    for names, flipped in (((cell, reference), False), ((reference, cell), True)):
        match = group[
            (group["cell"] == names[0])
            & (group["reference"] == names[1])
            & (group["metric"] == metric)
        ]
        if len(match) > 1:
            raise ValueError(f"the comparison has several {metric} rows for {names} per condition")
        if len(match) == 1:
            return flip(match.iloc[0]) if flipped else match.iloc[0]
    raise ValueError(f"the comparison needs one {metric} row for {cell} against {reference}")


def _setups(runs: pd.DataFrame | None, condition: dict, cells, device, engine):
    """The devices and engines that timed ``cells`` in ``condition``."""
    if runs is None:
        return device, engine
    timed = runs
    for key, value in condition.items():
        timed = timed[timed[key] == value] if not pd.isna(value) else timed[timed[key].isna()]
    timed = timed[timed["cell"].str.lower().isin(cells)]
    return timed["device"], timed["engine"]


def claims(
    comparison: pd.DataFrame,
    device: str | Iterable[str] | None = None,
    engine: str | Iterable[str] | None = None,
    condition_columns: Sequence[str] = (),
    alpha: float = ALPHA,
    runs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per condition x stated pair (:func:`claim_pairs`) x claim, decided by
    ``decide``. The speed claim's devices and engines are ``device`` and ``engine`` (a name
    or every run's), or with ``runs`` (the metrics table: ``cell``, ``device``, ``engine`` and
    the condition columns) those of the pair's own runs. Runs timed on mixed devices or
    engines leave it inconclusive: their times are not comparable."""
    if runs is None and (device is None or engine is None):
        raise ValueError("claims need the device and engine that were timed, or the runs")
    condition_columns = list(condition_columns)
    pairs = claim_pairs(zip(comparison["cell"], comparison["reference"], strict=True))
    rows = []
    for condition, group in _conditions(comparison, condition_columns):
        for cell, reference in pairs:
            timed = _setups(runs, condition, (cell, reference), device, engine)
            for claim in CLAIMS:
                found = _pair_row(group, cell, reference, claim.metric)
                verdict, reason = decide(found, alpha, cell)
                if claim.metric == "sec_per_epoch" and mixed_setups(*timed):
                    verdict = "inconclusive"
                    reason = (
                        "not comparable: the runs were timed on more than one device or engine "
                        f"(the test alone: {reason})"
                    )
                rows.append(
                    {
                        **condition,
                        "cell": cell,
                        "reference": reference,
                        "claim": claim.number,
                        "statement": claim_statement(claim, *timed, cell, reference),
                        "metric": claim.metric,
                        "verdict": verdict,
                        **{key: found[key] for key in _CLAIM_NUMBERS},
                        f"n_{cell}": found[f"n_{cell}"],
                        f"n_{reference}": found[f"n_{reference}"],
                        "reason": reason,
                    }
                )
    columns = [*condition_columns, *claim_columns(compared_cells(pairs))]
    return pd.DataFrame(rows, columns=columns)


def _p(p: float) -> str:
    return f"{p:.2g}" if p < 0.01 else f"{p:.3f}"


def _effect_text(row: pd.Series) -> str:
    if pd.isna(row["effect"]):
        return "no effect (a cell has no completed run)"
    interval = "" if pd.isna(row["ci_low"]) else f" [{row['ci_low']:.3g}, {row['ci_high']:.3g}]"
    cell, reference = cell_label(row["cell"]), cell_label(row["reference"])
    if row["effect_kind"] == "ratio":
        return f"{cell}/{reference} ratio of geometric means {row['effect']:.3g}{interval}"
    return f"{cell} - {reference} difference of means {row['effect']:.3g}{interval}"


def arm_sizes(row: pd.Series | dict) -> tuple[int, int]:
    """The runs of a comparison (or claims) row's cell and of its reference."""
    return int(row[f"n_{row['cell']}"]), int(row[f"n_{row['reference']}"])


def smallest_p(n_cell: int, n_reference: int) -> float:
    """The smallest two-sided p an exact rank test can give for these arm sizes (no ties)."""
    return min(1.0, 2 / math.comb(n_cell + n_reference, n_cell))


def family_note(comparison: pd.DataFrame, alpha: float = ALPHA) -> str:
    """What Holm's families are, how the claims' family grows with cells, and whether these
    seeds can decide a claim at all.

    With few seeds the smallest exact p times the number of tests can exceed ``alpha``: then
    no claim can be anything but inconclusive, and the note says so rather than leave the
    reader to find out."""
    claims_rows = comparison[comparison["family"] == "claims"]
    secondary = comparison[comparison["family"] == "secondary"]
    tested = claims_rows[claims_rows["p_value"].notna()]
    metrics = claims_rows["metric"].nunique()
    pairs = list(dict.fromkeys(zip(claims_rows["cell"], claims_rows["reference"], strict=True)))
    conditions = len(claims_rows) // (metrics * len(pairs)) if metrics and pairs else 0
    m = len(tested)
    compared = "; ".join(f"{cell_label(c)} against {cell_label(r)}" for c, r in pairs)
    family = (
        f"Holm's adjustment runs within two families fixed in advance, each over every test "
        f"of the experiment. The claims' family decides the claims: {m} test(s) "
        f"({conditions} condition(s) x {len(pairs)} comparison(s) x {metrics} claims, less "
        f"those without a test; compared: {compared or 'nothing'}). Every cell beyond the "
        f"reference adds one comparison, so {metrics} tests per condition. The other "
        f"{secondary['metric'].nunique()} metrics "
        f"({', '.join(dict.fromkeys(secondary['metric']))}) form a secondary family of "
        f"{int(secondary['p_value'].notna().sum())} test(s), adjusted among themselves in "
        f"comparison.csv; they describe, they decide no claim."
    )
    if m == 0:
        return (
            f"{family} No test was run: every comparison has an arm with fewer than "
            f"{MIN_COMPLETED} completed runs, so every claim is inconclusive."
        )
    sizes = list(dict.fromkeys(arm_sizes(row) for _, row in tested.iterrows()))
    best = min(smallest_p(*size) for size in sizes)
    n_cell, n_reference = max(sizes, key=lambda size: math.comb(size[0] + size[1], size[0]))
    floor = (
        f"With {n_cell} and {n_reference} runs per arm the smallest exact two-sided p is {_p(best)}"
    )
    if m * best >= alpha:
        needed = seeds_needed(m, alpha)
        return (
            f"{family} {floor}, and {m} x {_p(best)} = {_p(m * best)} >= {alpha:g}: at this "
            f"number of seeds no claim can be anything but inconclusive (add seeds: with "
            f"{needed} per cell, {m} x {_p(smallest_p(needed, needed))} = "
            f"{_p(m * smallest_p(needed, needed))})."
        )
    return (
        f"{family} {floor}, so the smallest possible Holm-adjusted p is {m} x {_p(best)} = "
        f"{_p(m * best)}: a claim is decided only by a (near-)complete separation of the runs."
    )


def seeds_needed(tests: int, alpha: float = ALPHA) -> int:
    """The fewest seeds per cell at which ``tests`` exact tests can all reach Holm p < alpha."""
    n = 2
    while tests * smallest_p(n, n) >= alpha:
        n += 1
    return n


def claims_markdown(
    claims_table: pd.DataFrame,
    condition_columns: Sequence[str] = (),
    alpha: float = ALPHA,
    comparison: pd.DataFrame | None = None,
) -> str:
    """``claims.md``: each condition's claims, pair by pair, with the verdict and the numbers
    behind it, and, given the ``comparison`` table, what Holm's family is
    (:func:`family_note`)."""
    condition_columns = list(condition_columns)
    pairs = claim_pairs(zip(claims_table["cell"], claims_table["reference"], strict=True))
    lines = [
        "# The original's claims, checked",
        "",
        f"Claims 1 to 3 are the original post's, GRU against LSTM; claim 4 asks the same of "
        f"data the model never trained on (the held-out part). Every other cell is asked the "
        f"same four questions against the reference cell (compare.reference). Each claim is "
        f"**supported** or **contradicted** when the permutation test is significant after "
        f"Holm's adjustment over the claims' tests of the experiment (p < {alpha:g}), in the "
        f"claimed or the opposite direction; otherwise it is **inconclusive**: these seeds do "
        f"not decide it. Effects are the claimed-lower cell against the other, with 95% "
        f"intervals; A12 is the probability that a run of the first beats a run of the second.",
    ]
    if comparison is not None:
        lines += ["", family_note(comparison, alpha)]
    for condition, group in _conditions(claims_table, condition_columns):
        if condition:
            label = ", ".join(f"{key} = {value}" for key, value in condition.items())
            lines += ["", f"## {label}"]
        for cell, reference in pairs:
            rows = group[(group["cell"] == cell) & (group["reference"] == reference)]
            if len(pairs) > 1:
                heading = "###" if condition else "##"
                title = f"{cell_label(cell)} against {cell_label(reference)}"
                if {cell, reference} == {GRU, LSTM}:
                    title += " (the original's claims)"
                lines += ["", f"{heading} {title}"]
            lines.append("")
            for _, row in rows.sort_values("claim").iterrows():
                n_cell, n_reference = arm_sizes(row)
                seeds = (
                    f"{n_cell} {cell_label(cell)} and {n_reference} {cell_label(reference)} runs"
                )
                statement = row["statement"]
                lines.append(
                    f"{int(row['claim'])}. {statement[0].upper()}{statement[1:]}: "
                    f"**{row['verdict']}**. {_effect_text(row)}; {row['reason']}; {seeds}."
                )
    return "\n".join(lines) + "\n"
