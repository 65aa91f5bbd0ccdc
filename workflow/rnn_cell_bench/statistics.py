"""GRU against LSTM over seeds: per-cell summaries, contrasts, exact tests and the claims checked.

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

GRU against LSTM (``compare``)
------------------------------
- Effect: GRU/LSTM ratio of geometric means (log-scale metrics) or GRU - LSTM difference of
  means (linear-scale metrics), over completed runs only (a diverged run has no loss). The 95%
  interval is Welch's t-interval, on log values for a ratio (then exponentiated): it does not
  assume equal variances, which the two cells need not have.
- Test: an exact two-sided permutation test of the Wilcoxon-Mann-Whitney rank sum, i.e. the
  difference of mean midranks, with every split of the runs between the arms enumerated
  (252 for 5 against 5; a Monte-Carlo permutation test with 99,999 resamples only beyond
  ``EXACT_SPLITS_MAX`` splits). Ranks rather than mean log values, because a diverged run has no
  value to average but does have a place in the order: it ranks as worst (``+inf``), so
  diverged runs are never dropped from the test (no survivorship bias). Midranks and a
  permutation null make the test exact with ties, where the Mann-Whitney exact table is not.
  On ``sec_per_epoch`` a diverged run enters with its measured time: divergence says nothing
  about speed.
- Effect size: the Vargha-Delaney A12, the probability that a GRU run beats (is lower than) an
  LSTM run, ties counting one half; A12 = U / (n_gru n_lstm) for the test's statistic, so p and
  A12 always agree in direction. Its 95% interval is a percentile bootstrap (9,999 resamples
  within each arm, fixed seed). Percentile, not BCa, because BCa is undefined when every
  resample gives the same value, as under complete separation (A12 = 0 or 1). With 5 runs per
  arm the bootstrap interval is narrow (it is [1, 1] under complete separation); read it with
  the exact p.
- Fewer than ``MIN_COMPLETED`` (3) completed runs in an arm: no test (p is NaN) and ``note``
  says why. With 2 runs in an arm an exact two-sided p cannot go below 0.05 unless the other
  arm has 8 or more.
- Multiplicity: Holm's step-down adjustment within two families fixed in advance, each over
  every condition of the experiment (NaN p-values are left out of the count and stay NaN).
  The *claims* family holds the tests that decide a claim (``CLAIMS``: tail loss, volatility,
  seconds per epoch, held-out loss); the *secondary* family holds the other metrics (final and
  best loss, spikes, best held-out loss), which are reported and adjusted among themselves but
  decide nothing. Each family's error rate is controlled on its own; Holm holds under any
  dependence between the tests (the loss metrics are strongly correlated). The smallest exact
  p with 5 against 5 is 2/252 = 0.0079, so at 5 seeds per arm at most 6 tests of a family can
  reach Holm-adjusted p < 0.05: the 4 claims of one condition can (4 x 0.0079 = 0.032), a
  study of 2 conditions cannot without more seeds.

The original's claims (``claims``)
----------------------------------
Each claim is a one-sided statement that the GRU is lower on one metric: the original post's
three (loss, volatility, speed) and a fourth it could not check, on data the model never saw
(``heldout_loss``, the final held-out loss). It is decided from the two-sided test:
**inconclusive** if there is no test (too few completed runs) or the Holm-adjusted
p >= 0.05; otherwise **supported** if A12 > 0.5 (the GRU tends to be lower) and
**contradicted** if A12 < 0.5. The speed claim is specific to the device and engine that were
timed, and its statement names them (and says so when the runs mixed devices or engines).
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

COMPARISON_COLUMNS = (
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
    "n_gru",
    "n_lstm",
    "n_diverged_gru",
    "n_diverged_lstm",
    "test",
    "note",
)


@dataclass(frozen=True)
class Claim:
    number: int
    metric: str
    statement: str


CLAIMS = (
    Claim(1, "tail_loss", "the GRU reaches a lower loss than the LSTM (tail loss)"),
    Claim(2, "volatility", "the LSTM's training is more volatile than the GRU's (volatility)"),
    Claim(3, "sec_per_epoch", "the GRU trains faster per epoch than the LSTM (sec/epoch)"),
    Claim(
        4,
        "heldout_loss",
        "the GRU reaches a lower loss than the LSTM on held-out data (final held-out loss)",
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
    "n_gru",
    "n_lstm",
)

CLAIM_COLUMNS = ("claim", "statement", "metric", "verdict", *_CLAIM_NUMBERS, "reason")


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


def a12(gru: Sequence[float], lstm: Sequence[float]) -> float:
    """Vargha-Delaney A12: P(a GRU value is lower than an LSTM value) + 0.5 P(tie)."""
    g, ell = np.asarray(gru, dtype=float), np.asarray(lstm, dtype=float)
    return float(_a12(g, ell, axis=-1))


def _a12(g: np.ndarray, ell: np.ndarray, axis: int = -1) -> np.ndarray:
    g, ell = np.moveaxis(g, axis, -1), np.moveaxis(ell, axis, -1)
    less = (g[..., :, None] < ell[..., None, :]).mean(axis=(-2, -1))
    ties = (g[..., :, None] == ell[..., None, :]).mean(axis=(-2, -1))  # inf == inf: a tie
    return less + 0.5 * ties


def rank_test(gru: Sequence[float], lstm: Sequence[float], seed: int = BOOTSTRAP_SEED):
    """Two-sided permutation test of the rank sum (midranks; +inf ranks last).

    Returns (p, name of the test). Exact (every split enumerated) up to ``EXACT_SPLITS_MAX``
    splits, Monte-Carlo beyond.
    """
    g, ell = np.asarray(gru, dtype=float), np.asarray(lstm, dtype=float)
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
    gru: Sequence[float], lstm: Sequence[float], log_scale: bool, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """GRU/LSTM ratio of geometric means (log_scale) or GRU - LSTM difference of means, with a
    Welch t-interval (on log values for the ratio). NaN bounds unless each arm has 2 values."""
    g, ell = np.asarray(gru, dtype=float), np.asarray(lstm, dtype=float)
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
    gru: pd.DataFrame,
    lstm: pd.DataFrame,
    metric: str,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> dict:
    """One row of the comparison table (without ``p_holm``) from two arms' per-run rows."""
    spec = METRICS[metric]
    n = {GRU: len(gru), LSTM: len(lstm)}
    diverged = {GRU: _diverged(gru), LSTM: _diverged(lstm)}
    completed = {
        GRU: gru.loc[~diverged[GRU], metric].to_numpy(dtype=float),
        LSTM: lstm.loc[~diverged[LSTM], metric].to_numpy(dtype=float),
    }
    row = {
        "metric": metric,
        "effect_kind": spec.effect_kind,
        "family": spec.family,
        "n_gru": n[GRU],
        "n_lstm": n[LSTM],
        "n_diverged_gru": int(diverged[GRU].sum()),
        "n_diverged_lstm": int(diverged[LSTM].sum()),
        "test": "",
    }
    notes = []
    missing = [cell for cell in (GRU, LSTM) if n[cell] == 0]
    if missing:
        notes.append(f"no {' or '.join(c.upper() for c in missing)} runs")
    for cell in (GRU, LSTM):
        if np.isnan(completed[cell]).any():
            raise ValueError(f"{metric} is missing (NaN) for a completed {cell.upper()} run")

    effect, low, high = effect_interval(completed[GRU], completed[LSTM], spec.log_scale, confidence)
    row.update(effect=effect, ci_low=low, ci_high=high)

    ranked = {
        GRU: _rank_values(gru, metric, diverged[GRU], spec),
        LSTM: _rank_values(lstm, metric, diverged[LSTM], spec),
    }
    row["a12"] = a12(ranked[GRU], ranked[LSTM]) if not missing else math.nan
    if min(n.values()) >= 2:
        row["a12_ci_low"], row["a12_ci_high"] = _bootstrap(
            (ranked[GRU], ranked[LSTM]), _a12, confidence, seed
        )
    else:
        row["a12_ci_low"] = row["a12_ci_high"] = math.nan

    n_completed = {cell: len(completed[cell]) for cell in (GRU, LSTM)}
    if missing:
        row["p_value"] = math.nan
    elif min(n_completed.values()) < MIN_COMPLETED:
        row["p_value"] = math.nan
        notes.append(
            f"no test: too few completed runs (GRU {n_completed[GRU]}, LSTM "
            f"{n_completed[LSTM]}), {MIN_COMPLETED} per cell needed"
        )
    else:
        row["p_value"], row["test"] = rank_test(ranked[GRU], ranked[LSTM], seed)

    if (row["n_diverged_gru"] or row["n_diverged_lstm"]) and not missing:
        how = "rank as worst" if spec.diverged_worst else "enter with their measured time"
        notes.append(
            f"effect and interval over completed runs only (GRU {n_completed[GRU]}, LSTM "
            f"{n_completed[LSTM]}), diverged runs {how} in p and A12"
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


def compare(
    metrics: pd.DataFrame,
    condition_columns: Sequence[str] = (),
    metric_names: Sequence[str] = tuple(METRICS),
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """GRU against LSTM: one row per condition x metric (``COMPARISON_COLUMNS`` after the
    condition columns), with Holm's adjustment within each family (``Metric.family``) over
    every condition."""
    condition_columns = list(condition_columns)
    _check_columns(metrics, ["cell", "status", *condition_columns, *metric_names])
    unknown = [name for name in metric_names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {list(METRICS)}")
    cell = metrics["cell"].str.lower()
    rows = []
    for condition, group in _conditions(metrics.assign(cell=cell), condition_columns):
        gru, lstm = group[group["cell"] == GRU], group[group["cell"] == LSTM]
        for name in metric_names:
            rows.append({**condition, **contrast(gru, lstm, name, confidence, seed)})
    table = pd.DataFrame(rows, columns=[*condition_columns, *COMPARISON_COLUMNS])
    for family in FAMILIES:
        members = table["family"] == family
        table.loc[members, "p_holm"] = holm(table.loc[members, "p_value"])
    return table


# --- claims --------------------------------------------------------------------------------


def _distinct(names: str | Iterable[str]) -> list[str]:
    if isinstance(names, str):
        return [names]
    return sorted({str(name) for name in names})


def claim_statement(claim: Claim, device: str | Iterable[str], engine: str | Iterable[str]) -> str:
    """The claim as tested; the speed claim names the device and engine that were timed.

    ``device`` and ``engine`` are a name or every run's name (a metrics column): when the runs
    used more than one, the statement says so, since their times are then not comparable."""
    if claim.metric != "sec_per_epoch":
        return claim.statement
    devices, engines = _distinct(device), _distinct(engine)
    if not devices or not engines:
        raise ValueError("the speed claim needs the device and engine that were timed")
    where = devices[0] if len(devices) == 1 else f"several devices ({', '.join(devices)})"
    if len(engines) == 1:
        how = f"the {engines[0]} engine"
    else:
        how = f"the {' and '.join(engines)} engines"
    text = f"{claim.statement}, on {where} with {how}"
    if len(devices) > 1 or len(engines) > 1:
        text += " (mixed set-ups: the times are not comparable)"
    return text


def decide(row: pd.Series | dict, alpha: float = ALPHA) -> tuple[str, str]:
    """Verdict (supported, contradicted, inconclusive) and its reason for a claim that the GRU
    is lower on the row's metric."""
    p_holm, p, a = row["p_holm"], row["p_value"], row["a12"]
    if pd.isna(p) or pd.isna(p_holm):
        parts = [part for part in str(row.get("note") or "").split("; ") if part.startswith("no ")]
        return "inconclusive", "; ".join(parts) or "no test"
    unadjusted = f"(unadjusted p = {_p(p)}, A12 = {a:.2f})"
    if p_holm >= alpha:
        return "inconclusive", f"not significant: Holm-adjusted p = {_p(p_holm)} {unadjusted}"
    significant = f"Holm-adjusted p = {_p(p_holm)} < {alpha:g} {unadjusted}"
    if a > 0.5:
        return "supported", f"GRU lower, {significant}"
    return "contradicted", f"GRU higher, the opposite of the claim, {significant}"


def claims(
    comparison: pd.DataFrame,
    device: str | Iterable[str],
    engine: str | Iterable[str],
    condition_columns: Sequence[str] = (),
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """One row per condition x claim of the original post, decided by ``decide``."""
    condition_columns = list(condition_columns)
    rows = []
    for condition, group in _conditions(comparison, condition_columns):
        for claim in CLAIMS:
            match = group[group["metric"] == claim.metric]
            if len(match) != 1:
                raise ValueError(f"the comparison needs one {claim.metric} row per condition")
            found = match.iloc[0]
            verdict, reason = decide(found, alpha)
            rows.append(
                {
                    **condition,
                    "claim": claim.number,
                    "statement": claim_statement(claim, device, engine),
                    "metric": claim.metric,
                    "verdict": verdict,
                    **{key: found[key] for key in _CLAIM_NUMBERS},
                    "reason": reason,
                }
            )
    return pd.DataFrame(rows, columns=[*condition_columns, *CLAIM_COLUMNS])


def _p(p: float) -> str:
    return f"{p:.2g}" if p < 0.01 else f"{p:.3f}"


def _effect_text(row: pd.Series) -> str:
    if pd.isna(row["effect"]):
        return "no effect (a cell has no completed run)"
    interval = "" if pd.isna(row["ci_low"]) else f" [{row['ci_low']:.3g}, {row['ci_high']:.3g}]"
    if row["effect_kind"] == "ratio":
        return f"GRU/LSTM ratio of geometric means {row['effect']:.3g}{interval}"
    return f"GRU - LSTM difference of means {row['effect']:.3g}{interval}"


def smallest_p(n_gru: int, n_lstm: int) -> float:
    """The smallest two-sided p an exact rank test can give for these arm sizes (no ties)."""
    return min(1.0, 2 / math.comb(n_gru + n_lstm, n_gru))


def family_note(comparison: pd.DataFrame, alpha: float = ALPHA) -> str:
    """What Holm's families are, and whether these seeds can decide a claim at all.

    With few seeds the smallest exact p times the number of tests can exceed ``alpha``: then
    no claim can be anything but inconclusive, and the note says so rather than leave the
    reader to find out."""
    claims_rows = comparison[comparison["family"] == "claims"]
    secondary = comparison[comparison["family"] == "secondary"]
    tested = claims_rows[claims_rows["p_value"].notna()]
    metrics = claims_rows["metric"].nunique()
    conditions = len(claims_rows) // metrics if metrics else 0
    m = len(tested)
    family = (
        f"Holm's adjustment runs within two families fixed in advance. The claims' family "
        f"decides the claims: {m} test(s) ({conditions} condition(s) x {metrics} claims, less "
        f"those without a test). The other {secondary['metric'].nunique()} metrics "
        f"({', '.join(dict.fromkeys(secondary['metric']))}) form a secondary family of "
        f"{int(secondary['p_value'].notna().sum())} test(s), adjusted among themselves in "
        f"comparison.csv; they describe, they decide no claim."
    )
    if m == 0:
        return (
            f"{family} No test was run: every comparison has an arm with fewer than "
            f"{MIN_COMPLETED} completed runs, so every claim is inconclusive."
        )
    sizes = tested[["n_gru", "n_lstm"]].astype(int).drop_duplicates()
    best = min(smallest_p(int(g), int(lstm)) for g, lstm in sizes.itertuples(index=False))
    g, lstm = max(sizes.itertuples(index=False), key=lambda s: math.comb(s[0] + s[1], s[0]))
    floor = f"With {g} GRU and {lstm} LSTM runs the smallest exact two-sided p is {_p(best)}"
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
    """``claims.md``: each condition's claims with the verdict and the numbers behind it,
    and, given the ``comparison`` table, what Holm's family is (:func:`family_note`)."""
    condition_columns = list(condition_columns)
    lines = [
        "# The original's claims, checked",
        "",
        f"Claims 1 to 3 are the original post's; claim 4 asks the same of data the model never "
        f"trained on (the held-out part). Each claim is **supported** or **contradicted** when "
        f"the permutation test is significant after Holm's adjustment over the claims' tests "
        f"of the experiment (p < {alpha:g}), "
        f"in the claimed or the opposite direction; otherwise it is **inconclusive**: these "
        f"seeds do not decide it. Effects are GRU against LSTM with 95% intervals; A12 is the "
        f"probability that a GRU run beats an LSTM run.",
    ]
    if comparison is not None:
        lines += ["", family_note(comparison, alpha)]
    for condition, group in _conditions(claims_table, condition_columns):
        lines.append("")
        if condition:
            label = ", ".join(f"{key} = {value}" for key, value in condition.items())
            lines += [f"## {label}", ""]
        for _, row in group.sort_values("claim").iterrows():
            seeds = f"{int(row['n_gru'])} GRU and {int(row['n_lstm'])} LSTM runs"
            lines.append(
                f"{int(row['claim'])}. {row['statement'][0].upper()}{row['statement'][1:]}: "
                f"**{row['verdict']}**. {_effect_text(row)}; {row['reason']}; {seeds}."
            )
    return "\n".join(lines) + "\n"
