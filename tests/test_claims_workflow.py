"""The comparison and the claims as the workflow writes them, on the finished tiny project
(2 seeds per cell: every test is missing, and the tables say why)."""

from __future__ import annotations

import pandas as pd

from rnn_cell_bench.runtime import device_name
from rnn_cell_bench.statistics import CLAIM_COLUMNS, COMPARISON_COLUMNS, METRICS

TOO_FEW = "no test: too few completed runs (GRU 2, LSTM 2), 3 per cell needed"


def test_comparison_has_a_row_per_metric_and_no_test_with_two_seeds(finished_project):
    comparison = pd.read_csv(finished_project / "results" / "default" / "comparison.csv")
    assert list(comparison.columns) == list(COMPARISON_COLUMNS)
    assert list(comparison.metric) == list(METRICS)
    assert comparison.p_value.isna().all() and comparison.p_holm.isna().all()
    assert (comparison.note == TOO_FEW).all()
    assert list(comparison.n_gru) == [2] * 8 and list(comparison.n_lstm) == [2] * 8
    losses = comparison[comparison.effect_kind == "ratio"]
    assert (losses.effect > 0).all() and (losses.ci_low < losses.effect).all()
    assert comparison.a12.between(0, 1).all()


def test_every_claim_is_inconclusive_for_too_few_seeds(finished_project):
    results = finished_project / "results" / "default"
    claims = pd.read_csv(results / "claims.csv")
    assert list(claims.columns) == list(CLAIM_COLUMNS)
    assert list(claims.claim) == [1, 2, 3, 4]
    assert list(claims.metric) == ["tail_loss", "volatility", "sec_per_epoch", "heldout_loss"]
    assert list(claims.verdict) == ["inconclusive"] * 4
    assert (claims.reason == TOO_FEW).all()
    metrics = pd.read_csv(results / "metrics.csv")
    (engine,) = set(metrics.engine)
    assert claims.statement[2].endswith(f"on {device_name()} with the {engine} engine")
    text = (results / "claims.md").read_text()
    assert text.count("**inconclusive**.") == 4
    assert "No test was run" in text and "every claim is inconclusive" in text
    assert "3. The GRU trains faster per epoch than the LSTM (sec/epoch), on " in text


def test_summary_intervals_are_positive_and_around_the_geometric_mean(finished_project):
    summary = pd.read_csv(finished_project / "results" / "default" / "summary.csv")
    for name in ("tail_loss", "final_loss", "best_loss", "sec_per_epoch", "heldout_loss"):
        assert (summary[f"{name}_ci_low"] > 0).all()
        assert (summary[f"{name}_ci_low"] < summary[f"{name}_gmean"]).all()
        assert (summary[f"{name}_gmean"] < summary[f"{name}_ci_high"]).all()
    for name in ("volatility", "spikes"):
        assert (summary[f"{name}_ci_low"] >= 0).all()
    assert list(summary.n_completed) == [2, 2] and list(summary.divergence_rate) == [0, 0]
