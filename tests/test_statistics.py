"""Statistics on constructed data with known answers: summaries, contrasts, Holm, claims."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rnn_cell_bench.statistics import (
    CLAIMS,
    COMPARISON_COLUMNS,
    METRICS,
    a12,
    claim_columns,
    claim_statement,
    claims,
    claims_markdown,
    compare,
    comparison_columns,
    decide,
    family_note,
    flip,
    geometric_mean_interval,
    holm,
    mean_interval,
    rank_test,
    smallest_p,
    summarize,
    t_band,
    tail_loss,
    wilson_interval,
)


def linear_t_low(values) -> float:
    """Lower bound of the linear Student-t interval that the summary no longer uses."""
    x = np.asarray(values, dtype=float)
    return x.mean() - stats.t.ppf(0.975, df=len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))


LSTM_VALUES = [1.0, 1.1, 1.2, 1.3, 1.4]
GRU_VALUES = [0.5 * v for v in LSTM_VALUES]  # every GRU run below every LSTM run
SEPARATED_P = 2 / 252  # two of the C(10, 5) = 252 splits are as extreme as complete separation
DIVERGED = None


def runs(gru, lstm, time_gru=0.1, time_lstm=0.1, **condition) -> pd.DataFrame:
    """A metrics table with every metric of a run set to its value; None marks a diverged run,
    whose losses are NaN and whose best loss, volatility and spikes (from the epochs before it
    diverged) are deliberately the best of all, so that only its status can rank it worst."""
    rows = []
    for cell, values, seconds in (("gru", gru, time_gru), ("lstm", lstm, time_lstm)):
        for seed, value in enumerate(values):
            diverged = value is DIVERGED
            rows.append(
                {
                    **condition,
                    "cell": cell,
                    "seed": seed,
                    "status": "diverged" if diverged else "completed",
                    "params": 1169 if cell == "lstm" else 897,
                    "tail_loss": math.nan if diverged else value,
                    "final_loss": math.nan if diverged else value,
                    "best_loss": 1e-6 if diverged else value,
                    "volatility": 0.0 if diverged else value,
                    "spikes": 0 if diverged else value,
                    "heldout_loss": math.nan if diverged else value,
                    "best_heldout_loss": 1e-6 if diverged else value,
                    "sec_per_epoch": seconds * (1 + 0.01 * seed),
                }
            )
    return pd.DataFrame(rows)


def row(table: pd.DataFrame, metric: str) -> pd.Series:
    found = table[table["metric"] == metric]
    assert len(found) == 1
    return found.iloc[0]


# --- summaries -----------------------------------------------------------------------------


def test_geometric_mean_interval_is_computed_on_logs_and_stays_positive():
    values = [1e-4, 1e-2, 1.0]  # skewed: a linear t-interval goes far below zero
    assert linear_t_low(values) < 0
    centre, low, high = geometric_mean_interval(values)
    half = stats.t.ppf(0.975, df=2) * 2 * math.log(10) / math.sqrt(3)  # sd of ln values: 2 ln 10
    assert centre == pytest.approx(1e-2)
    assert low == pytest.approx(1e-2 * math.exp(-half))
    assert high == pytest.approx(1e-2 * math.exp(half))
    assert 0 < low < centre < high


def test_mean_interval_of_a_non_negative_metric_never_goes_below_zero():
    volatility = [0.0, 0.0, 0.0, 0.0, 1e-4]  # like the quick preset's GRU volatility
    assert linear_t_low(volatility) < 0
    centre, low, high = mean_interval(volatility)
    assert centre == pytest.approx(2e-5)
    assert 0.0 <= low <= centre <= high <= 1e-4
    assert mean_interval(volatility) == (centre, low, high)  # seeded: reproducible


def test_wilson_interval_matches_hand_values():
    # 1 of 5: centre (p + z^2/2n) / (1 + z^2/n), half-width z sqrt(p(1-p)/n + z^2/4n^2) / (...)
    rate, low, high = wilson_interval(1, 5)
    assert rate == 0.2
    assert low == pytest.approx(0.036224, abs=1e-6)
    assert high == pytest.approx(0.624465, abs=1e-6)
    assert wilson_interval(0, 5)[1:] == pytest.approx((0.0, 0.434482), abs=1e-6)


def test_summary_reports_divergence_and_summarises_completed_runs():
    table = runs(GRU_VALUES, [*LSTM_VALUES[:4], DIVERGED])
    summary = summarize(table, cells=["lstm", "gru"])
    assert list(summary["cell"]) == ["lstm", "gru"]
    lstm = summary.iloc[0]
    assert (lstm["n"], lstm["n_completed"], lstm["n_diverged"]) == (5, 4, 1)
    assert lstm["divergence_rate"] == 0.2
    assert lstm["divergence_ci_low"] == pytest.approx(0.036224, abs=1e-6)
    assert lstm["divergence_ci_high"] == pytest.approx(0.624465, abs=1e-6)
    gmean = math.exp(np.log(LSTM_VALUES[:4]).mean())
    assert lstm["tail_loss_gmean"] == pytest.approx(gmean)
    assert lstm["best_loss_gmean"] == pytest.approx(gmean)  # the diverged run's 1e-6 left out
    assert lstm["volatility_mean"] == pytest.approx(np.mean(LSTM_VALUES[:4]))
    assert "volatility_gmean" not in summary.columns
    for name in METRICS:
        assert (summary[f"{name}_ci_low"] >= 0).all()


def test_summary_has_one_row_per_condition_and_cell():
    table = pd.concat([runs(GRU_VALUES, LSTM_VALUES, **{"task.horizon": h}) for h in (1, 200)])
    summary = summarize(table, ["task.horizon"])
    assert list(zip(summary["task.horizon"], summary["cell"], strict=True)) == [
        (1, "gru"),
        (1, "lstm"),
        (200, "gru"),
        (200, "lstm"),
    ]


def test_tail_loss_is_the_geometric_mean_of_the_last_epochs():
    history = [5.0] * 100 + [1.0] * 49 + [100.0]  # a spike on the last epoch
    assert tail_loss(history) == pytest.approx(100 ** (1 / 50))
    assert tail_loss(history, tail_epochs=1) == pytest.approx(100.0)
    assert tail_loss([1.0, 2.0, 4.0]) == pytest.approx(2.0)  # shorter than the tail: all epochs
    assert math.isnan(tail_loss([1.0, 0.5, math.nan]))
    assert math.isnan(tail_loss([1.0, math.inf, 0.5]))


# --- contrasts -----------------------------------------------------------------------------


def test_clear_difference_gives_the_exact_p_and_a12_of_complete_separation():
    table = compare(runs(GRU_VALUES, LSTM_VALUES))
    assert list(table.columns) == list(COMPARISON_COLUMNS)
    assert list(table["metric"]) == list(METRICS)
    loss = row(table, "tail_loss")
    assert loss["p_value"] == pytest.approx(SEPARATED_P, rel=1e-12)
    assert loss["test"] == "exact permutation, rank sum (252 splits)"
    assert loss["a12"] == 1.0
    assert (loss["a12_ci_low"], loss["a12_ci_high"]) == (1.0, 1.0)
    assert loss["effect_kind"] == "ratio"
    assert loss["effect"] == pytest.approx(0.5)
    assert loss["ci_low"] < 0.5 < loss["ci_high"]
    volatility = row(table, "volatility")
    assert volatility["effect_kind"] == "difference"
    assert volatility["effect"] == pytest.approx(-0.5 * np.mean(LSTM_VALUES))
    assert (loss["n_gru"], loss["n_lstm"], loss["note"]) == (5, 5, "")

    reverse = row(compare(runs(LSTM_VALUES, GRU_VALUES)), "tail_loss")
    assert reverse["a12"] == 0.0
    assert reverse["p_value"] == pytest.approx(SEPARATED_P, rel=1e-12)
    assert reverse["effect"] == pytest.approx(2.0)


def test_rank_test_agrees_with_exact_mann_whitney_without_ties():
    rng = np.random.default_rng(3)
    for _ in range(3):
        gru, lstm = rng.normal(0, 1, 5), rng.normal(0.8, 1, 6)
        expected = stats.mannwhitneyu(gru, lstm, method="exact").pvalue
        assert rank_test(gru, lstm)[0] == pytest.approx(expected)


def test_no_difference_gives_a_large_p_and_a12_of_one_half():
    table = compare(runs(LSTM_VALUES, LSTM_VALUES, time_gru=0.1, time_lstm=0.1))
    loss = row(table, "tail_loss")
    assert loss["a12"] == 0.5
    assert loss["p_value"] == pytest.approx(1.0)
    assert loss["effect"] == pytest.approx(1.0)
    assert loss["a12_ci_low"] < 0.5 < loss["a12_ci_high"]
    interleaved = row(compare(runs([1, 3, 5, 7, 9], [2, 4, 6, 8, 10])), "tail_loss")
    assert interleaved["a12"] == pytest.approx(0.6)
    assert interleaved["p_value"] > 0.5


def test_a_diverged_run_ranks_as_worst_and_is_not_dropped():
    # The GRU would win every pair, but one GRU run diverged: it loses its 5 pairs.
    table = compare(runs([*GRU_VALUES[:4], DIVERGED], LSTM_VALUES))
    for metric in ("tail_loss", "final_loss", "best_loss", "volatility", "spikes"):
        found = row(table, metric)
        assert found["a12"] == pytest.approx(20 / 25), metric
        assert (found["n_gru"], found["n_diverged_gru"], found["n_diverged_lstm"]) == (5, 1, 0)
        assert "completed runs only (GRU 4, LSTM 5)" in found["note"]
        assert "rank as worst" in found["note"]
    loss = row(table, "tail_loss")
    ratio = math.exp(np.log(GRU_VALUES[:4]).mean() - np.log(LSTM_VALUES).mean())
    assert loss["effect"] == pytest.approx(ratio)  # effect: completed runs
    # In the test the diverged run keeps its place: 5 against 5, not 4 against 5.
    assert loss["test"] == "exact permutation, rank sum (252 splits)"
    expected = stats.mannwhitneyu([*GRU_VALUES[:4], math.inf], LSTM_VALUES, method="exact")
    assert loss["p_value"] == pytest.approx(expected.pvalue)

    # An LSTM run that diverged stays the worst: complete separation, 5 against 5.
    lstm_diverged = row(compare(runs(GRU_VALUES, [*LSTM_VALUES[:4], DIVERGED])), "tail_loss")
    assert lstm_diverged["a12"] == 1.0
    assert lstm_diverged["p_value"] == pytest.approx(SEPARATED_P)  # 2/126 if it were dropped


def test_two_diverged_runs_tie_and_time_is_ranked_as_measured():
    table = compare(runs([*GRU_VALUES[:4], DIVERGED], [*LSTM_VALUES[:4], DIVERGED]))
    assert row(table, "tail_loss")["a12"] == pytest.approx((20 + 0.5) / 25)
    # sec/epoch: GRU 0.1 * (1 + 0.01 seed) against LSTM 0.2 * (...): every GRU run faster,
    # the diverged one included (divergence says nothing about speed).
    timed = compare(runs([*GRU_VALUES[:4], DIVERGED], LSTM_VALUES, time_lstm=0.2))
    speed = row(timed, "sec_per_epoch")
    assert speed["a12"] == 1.0
    assert "measured time" in speed["note"]
    assert speed["effect"] == pytest.approx(
        0.5
        * math.exp(np.log(1 + 0.01 * np.arange(4)).mean())
        / math.exp(np.log(1 + 0.01 * np.arange(5)).mean())
    )


def test_fewer_than_three_completed_runs_means_no_test():
    table = compare(runs([0.5, 0.6, DIVERGED, DIVERGED, DIVERGED], LSTM_VALUES))
    loss = row(table, "tail_loss")
    assert math.isnan(loss["p_value"]) and math.isnan(loss["p_holm"])
    assert loss["test"] == ""
    assert "no test: too few completed runs (GRU 2, LSTM 5), 3 per cell needed" in loss["note"]
    assert loss["a12"] == pytest.approx(10 / 25)  # still described: 2 wins of 5 each
    two_seeds = row(compare(runs(GRU_VALUES[:2], LSTM_VALUES[:2])), "volatility")
    assert math.isnan(two_seeds["p_value"])
    assert "(GRU 2, LSTM 2), 3" in two_seeds["note"]
    three_seeds = row(compare(runs(GRU_VALUES[:3], LSTM_VALUES[:3])), "volatility")
    assert three_seeds["p_value"] == pytest.approx(2 / 20)  # C(6, 3) = 20 splits


def test_a_missing_cell_gives_rows_without_statistics():
    table = runs(GRU_VALUES, LSTM_VALUES)
    loss = row(compare(table[table["cell"] == "lstm"], cells=["gru", "lstm"]), "tail_loss")
    assert math.isnan(loss["p_value"]) and math.isnan(loss["a12"]) and math.isnan(loss["effect"])
    assert loss["note"] == "no GRU runs"


def test_missing_metric_column_is_an_error_naming_it():
    with pytest.raises(KeyError, match="tail_loss"):
        compare(runs(GRU_VALUES, LSTM_VALUES).drop(columns="tail_loss"))


def test_holm_on_a_known_vector():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    with_nan = holm([0.01, math.nan, 0.04, 0.03, 0.005])
    assert math.isnan(with_nan[1])
    assert np.delete(with_nan, 1) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([]).shape == (0,)


def test_holm_runs_within_each_family_over_every_condition():
    one = compare(runs(GRU_VALUES, LSTM_VALUES, 0.05, 0.1))  # separated on all 8 metrics
    claims_family = ["tail_loss", "volatility", "sec_per_epoch", "heldout_loss"]
    assert list(one.loc[one.family == "claims", "metric"]) == claims_family
    assert set(one.family) == {"claims", "secondary"} and len(one) == 8
    assert list(one["p_holm"]) == pytest.approx([4 * SEPARATED_P] * 8)  # 0.032: 4 per family
    conditions = pd.concat(
        [runs(GRU_VALUES, LSTM_VALUES, 0.05, 0.1, **{"task.horizon": h}) for h in (1, 25)]
    )
    two = compare(conditions, ["task.horizon"])
    assert list(two.columns) == ["task.horizon", *COMPARISON_COLUMNS]
    assert list(two["task.horizon"]) == [1] * 8 + [25] * 8
    assert list(two["p_holm"]) == pytest.approx([8 * SEPARATED_P] * 16)  # 0.063: 8 per family
    # each family is adjusted on its own: Holm over its p-values alone, not over all 8
    mixed = runs(GRU_VALUES, LSTM_VALUES, 0.05, 0.1)
    rng = np.random.default_rng(3)
    for metric in METRICS:
        if metric != "sec_per_epoch":
            mixed[metric] = rng.uniform(0.5, 1.5, len(mixed)) + (mixed.cell == "lstm") * 0.2
    adjusted = compare(mixed)
    for family in ("claims", "secondary"):
        members = adjusted[adjusted.family == family]
        np.testing.assert_allclose(members["p_holm"], holm(members["p_value"]))
    assert not np.allclose(adjusted["p_holm"], holm(adjusted["p_value"]))


def test_a12_and_its_bootstrap_interval_are_reproducible():
    assert a12([1, 2], [2, 3]) == pytest.approx((3 + 0.5) / 4)
    table = runs([1.0, 2.5, 3.0, 4.5, 5.0], [2.0, 3.5, 4.0, 5.5, 6.0])
    first, second = compare(table), compare(table)
    pd.testing.assert_frame_equal(first, second)
    loss = row(first, "tail_loss")
    assert loss["a12_ci_low"] < loss["a12"] < loss["a12_ci_high"]


# --- claims --------------------------------------------------------------------------------


def test_claims_supported_when_the_gru_is_significantly_lower():
    table = claims(compare(runs(GRU_VALUES, LSTM_VALUES, 0.05, 0.1)), "an NVIDIA H200", "keras")
    assert list(table["claim"]) == [1, 2, 3, 4]
    assert list(table["metric"]) == ["tail_loss", "volatility", "sec_per_epoch", "heldout_loss"]
    assert list(table["verdict"]) == ["supported"] * 4
    assert table.iloc[2]["statement"].endswith("on an NVIDIA H200 with the keras engine")
    assert "held-out" in table.iloc[3]["statement"]
    assert "Holm-adjusted p = 0.032 < 0.05" in table.iloc[0]["reason"]


def test_claims_contradicted_when_the_gru_is_significantly_higher():
    table = claims(compare(runs(LSTM_VALUES, GRU_VALUES, 0.1, 0.05)), "CPU", "fused")
    assert list(table["verdict"]) == ["contradicted"] * 4
    assert table.iloc[1]["reason"].startswith("GRU higher, the opposite of the claim")


def test_claims_inconclusive_without_significance_or_seeds():
    same = claims(compare(runs(LSTM_VALUES, LSTM_VALUES)), "CPU", "fused")
    assert list(same["verdict"]) == ["inconclusive"] * 4
    assert same.iloc[0]["reason"].startswith("not significant: Holm-adjusted p = 1.000")
    # Separated, but in 2 conditions: 8 claims' tests, Holm-adjusted p = 0.063.
    conditions = pd.concat([runs(GRU_VALUES, LSTM_VALUES, **{"task.horizon": h}) for h in (1, 25)])
    two = claims(compare(conditions, ["task.horizon"]), "CPU", "fused", ["task.horizon"])
    assert list(two["verdict"]) == ["inconclusive"] * 8
    few = claims(compare(runs(GRU_VALUES[:2], LSTM_VALUES)), "CPU", "fused")
    assert list(few["verdict"]) == ["inconclusive"] * 4
    assert few.iloc[0]["reason"].startswith(
        "no test: too few completed runs (GRU 2, LSTM 5), 3 per"
    )


def test_decide_covers_each_verdict():
    base = {"p_value": 0.001, "a12": 0.9, "note": ""}
    assert decide({**base, "p_holm": 0.01})[0] == "supported"
    assert decide({**base, "p_holm": 0.05})[0] == "inconclusive"  # p >= 0.05: not significant
    assert decide({**base, "a12": 0.1, "p_holm": 0.01})[0] == "contradicted"
    note = "no test: too few completed runs; effect and interval over completed runs only"
    verdict, reason = decide({**base, "p_value": math.nan, "p_holm": math.nan, "note": note})
    assert (verdict, reason) == ("inconclusive", "no test: too few completed runs")


def test_claims_markdown_is_generated_from_the_table():
    conditions = pd.concat(
        [
            runs(GRU_VALUES, LSTM_VALUES, 0.05, 0.1, **{"task.horizon": 1}),
            runs(LSTM_VALUES, LSTM_VALUES, **{"task.horizon": 200}),
        ]
    )
    table = claims(compare(conditions, ["task.horizon"]), "CPU", "fused", ["task.horizon"])
    text = claims_markdown(table, ["task.horizon"])
    assert text.startswith("# The original's claims, checked\n")
    assert "## task.horizon = 1" in text and "## task.horizon = 200" in text
    horizon_1 = text.split("## task.horizon = 200")[0]
    assert horizon_1.count("**inconclusive**.") == 4  # 8 tests: 0.063 after Holm
    assert "1. The GRU reaches a lower loss than the LSTM (tail loss): **inconclusive**." in text
    assert "GRU/LSTM ratio of geometric means 0.5 [" in horizon_1
    assert (
        "3. The GRU trains faster per epoch than the LSTM (sec/epoch), on CPU with the fused"
        in text
    )
    single = claims(compare(runs(GRU_VALUES, LSTM_VALUES, 0.05, 0.1)), "CPU", "fused")
    single_text = claims_markdown(single)
    assert single_text.count("**supported**.") == 4 and "##" not in single_text
    assert "GRU - LSTM difference of means -0.6 [" in single_text


def test_speed_claim_names_every_device_and_engine_and_flags_a_mix():
    speed = CLAIMS[2]
    assert claim_statement(speed, ["CPU", "CPU"], ["fused", "fused"]).endswith(
        "on CPU with the fused engine"
    )
    mixed = claim_statement(speed, ["CPU", "NVIDIA H200"], ["fused", "keras"])
    assert "on several devices (CPU, NVIDIA H200) with the fused and keras engines" in mixed
    assert "not comparable" in mixed
    assert claim_statement(CLAIMS[0], ["a", "b"], ["c"]) == CLAIMS[0].statement()
    separated = compare(runs(GRU_VALUES, LSTM_VALUES, 0.05, 0.1))
    table = claims(separated, ["CPU", "GPU"], pd.Series(["keras"] * 10), ())
    assert "several devices (CPU, GPU) with the keras engine" in table.iloc[2]["statement"]
    # Times from mixed set-ups decide nothing, however separated; the other claims stand.
    assert list(table["verdict"]) == ["supported", "supported", "inconclusive", "supported"]
    assert table.iloc[2]["reason"].startswith("not comparable: the runs were timed on more")
    assert "GRU lower, Holm-adjusted p = 0.032" in table.iloc[2]["reason"]


def test_family_note_states_the_family_and_the_smallest_adjusted_p():
    assert smallest_p(5, 5) == pytest.approx(2 / 252)
    five = family_note(compare(runs(GRU_VALUES, LSTM_VALUES)))
    assert "4 test(s) (1 condition(s) x 1 comparison(s) x 4 claims" in five
    assert "compared: GRU against LSTM" in five
    assert "secondary family of 4 test(s)" in five
    assert "With 5 and 5 runs per arm the smallest exact two-sided p is 0.0079" in five
    assert "4 x 0.0079 = 0.032" in five and "complete separation" in five
    two_conditions = pd.concat(
        [runs(GRU_VALUES, LSTM_VALUES, **{"task.horizon": h}) for h in (1, 25)]
    )
    eight = family_note(compare(two_conditions, ["task.horizon"]))
    assert "8 x 0.0079 = 0.063 >= 0.05" in eight
    assert "add seeds: with 6 per cell, 8 x 0.0022 = 0.017" in eight
    none = family_note(compare(runs(GRU_VALUES[:2], LSTM_VALUES[:2])))
    assert "0 test(s)" in none and "every claim is inconclusive" in none
    table = claims(compare(runs(GRU_VALUES, LSTM_VALUES)), "CPU", "fused")
    assert five in claims_markdown(table, comparison=compare(runs(GRU_VALUES, LSTM_VALUES)))
    assert "family" not in claims_markdown(table)


def test_t_band_is_the_per_column_student_t_interval():
    values = np.array([[1.0, 10.0], [2.0, 10.0], [3.0, 13.0], [4.0, 11.0], [5.0, 12.0]])
    centre, low, high = t_band(values)
    # t(0.975, 4) = 2.776445; std = 1.581139; half-width = 2.776445 * 1.581139 / sqrt(5)
    assert centre[0] == 3.0 and high[0] - 3.0 == pytest.approx(1.963243, rel=1e-5)
    assert 3.0 - low[0] == pytest.approx(high[0] - 3.0)
    assert t_band(values[:1])[1] is None


# --- more cells ----------------------------------------------------------------------------

SEVEN = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6]
SEVEN_P = 2 / 3432  # complete separation of 7 against 7: two of the C(14, 7) splits


def cell_runs(values: dict[str, list], seconds: dict[str, float] | None = None) -> pd.DataFrame:
    """:func:`runs` for any cells: ``values`` per cell, its time per epoch in ``seconds``."""
    seconds = seconds or {}
    tables = []
    for cell, cell_values in values.items():
        table = runs(cell_values, [], time_gru=seconds.get(cell, 0.1))
        tables.append(table.assign(cell=cell))
    return pd.concat(tables, ignore_index=True)


THREE = {"lstm": SEVEN, "gru": [0.5 * v for v in SEVEN], "rnn": [3 * v for v in SEVEN]}
THREE_TIMES = {"lstm": 0.1, "gru": 0.08, "rnn": 0.03}


def test_three_cells_are_each_compared_against_the_reference_with_holm_over_all_tests():
    table = compare(cell_runs(THREE, THREE_TIMES), cells=["lstm", "gru", "rnn"])
    assert list(table.columns) == list(comparison_columns(["gru", "lstm", "rnn"]))
    assert (
        list(zip(table.cell, table.reference, strict=True))
        == [("gru", "lstm")] * 8 + [("rnn", "lstm")] * 8
    )
    # Two comparisons, separated on every metric: 8 tests per family, each 8 x 2/3432.
    assert list(table.p_value) == pytest.approx([SEVEN_P] * 16)
    assert list(table.p_holm) == pytest.approx([8 * SEVEN_P] * 16)
    rnn = table[table.cell == "rnn"]
    assert (rnn.n_rnn == 7).all() and (rnn.n_lstm == 7).all() and rnn.n_gru.isna().all()
    assert row(rnn, "tail_loss")["effect"] == pytest.approx(3.0)  # RNN/LSTM
    assert row(rnn, "tail_loss")["a12"] == 0.0  # every RNN run above every LSTM run
    assert row(rnn, "sec_per_epoch")["a12"] == 1.0  # and faster
    note = family_note(table)
    assert "8 test(s) (1 condition(s) x 2 comparison(s) x 4 claims" in note
    assert "compared: GRU against LSTM; RNN against LSTM" in note
    assert "8 x 0.00058 = 0.0047" in note
    # The same runs with the RNN left out: half the tests, and Holm's factor halves.
    two = compare(cell_runs({k: THREE[k] for k in ("lstm", "gru")}, THREE_TIMES))
    assert list(two.p_holm) == pytest.approx([4 * SEVEN_P] * 8)


def test_three_cells_claims_keep_the_original_and_ask_the_rnn_the_same_questions():
    metrics = cell_runs(THREE, THREE_TIMES).assign(device="CPU", engine="fused")
    table = claims(compare(metrics, cells=["lstm", "gru", "rnn"]), runs=metrics)
    assert list(table.columns) == list(claim_columns(["gru", "lstm", "rnn"]))
    assert (
        list(zip(table.cell, table.reference, strict=True))
        == [("gru", "lstm")] * 4 + [("rnn", "lstm")] * 4
    )
    assert list(table.claim) == [1, 2, 3, 4] * 2
    assert list(table.verdict[:4]) == ["supported"] * 4
    # The RNN: higher loss, more volatile (so the LSTM is not), but faster.
    assert list(table.verdict[4:]) == ["contradicted", "contradicted", "supported", "contradicted"]
    assert table.statement[4] == "the RNN reaches a lower loss than the LSTM (tail loss)"
    assert table.statement[5] == "the LSTM's training is more volatile than the RNN's (volatility)"
    assert table.statement[6].startswith(
        "the RNN trains faster per epoch than the LSTM (sec/epoch), on"
    )
    assert table.reason[4].startswith("RNN higher, the opposite of the claim")
    text = claims_markdown(table, comparison=compare(metrics, cells=["lstm", "gru", "rnn"]))
    assert "## GRU against LSTM (the original's claims)" in text and "## RNN against LSTM" in text
    assert "RNN/LSTM ratio of geometric means 3 [" in text
    assert "7 RNN and 7 LSTM runs" in text


def test_a_gru_reference_still_states_the_original_claims_from_the_same_test():
    metrics = cell_runs(THREE, THREE_TIMES).assign(device="CPU", engine="fused")
    by_lstm = claims(compare(metrics), runs=metrics)
    comparison = compare(metrics, reference="gru")
    assert list(dict.fromkeys(zip(comparison.cell, comparison.reference, strict=True))) == [
        ("lstm", "gru"),
        ("rnn", "gru"),
    ]
    by_gru = claims(comparison, runs=metrics)
    assert list(dict.fromkeys(zip(by_gru.cell, by_gru.reference, strict=True))) == [
        ("gru", "lstm"),
        ("rnn", "gru"),
    ]
    original = by_gru[by_gru.reference == "lstm"].reset_index(drop=True)
    expected = by_lstm[by_lstm.cell == "gru"].reset_index(drop=True)
    assert list(original.statement) == list(expected.statement)
    assert list(original.verdict) == list(expected.verdict) == ["supported"] * 4
    for column in ("effect", "ci_low", "ci_high", "a12", "p_value", "p_holm"):
        np.testing.assert_allclose(original[column], expected[column], rtol=1e-12)
    flipped = flip(row(comparison[comparison.cell == "lstm"], "volatility"))
    assert flipped["cell"] == "gru" and flipped["effect"] < 0  # GRU - LSTM, not LSTM - GRU


def test_a_third_reference_adds_gru_against_lstm_to_the_family():
    comparison = compare(cell_runs(THREE, THREE_TIMES), reference="rnn")
    assert list(dict.fromkeys(zip(comparison.cell, comparison.reference, strict=True))) == [
        ("lstm", "rnn"),
        ("gru", "rnn"),
        ("gru", "lstm"),
    ]
    assert list(comparison.p_holm) == pytest.approx([12 * SEVEN_P] * 24)
    with pytest.raises(ValueError, match="reference cell 'mgu' is not one of the cells"):
        compare(cell_runs(THREE), reference="mgu")
    assert compare(cell_runs({"gru": SEVEN, "rnn": SEVEN})).reference.unique().tolist() == ["gru"]
    assert compare(cell_runs({"lstm": SEVEN})).empty  # one cell: nothing to compare
