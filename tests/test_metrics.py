"""Per-run metrics: volatility on synthetic curves, tail loss, the rows of metrics.csv."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rnn_cell_bench.metrics import (
    METRIC_COLUMNS,
    condition_columns,
    run_metrics,
    spike_count,
    volatility,
)

EPOCHS = np.arange(1000)


def smooth_curve():
    """Exponential descent with plateaus and a sharp drop, never rising (like the GRU)."""
    return 2.0 * np.exp(-EPOCHS / 300) + 0.5 - 0.3 / (1 + np.exp(-(EPOCHS - 400) / 5))


def spiky_curve(seed=0):
    """The same descent with frequent short spikes after epoch 250 (like the original LSTM)."""
    rng = np.random.default_rng(seed)
    curve = smooth_curve().copy()
    spikes = rng.choice(np.arange(250, 1000), size=60, replace=False)
    curve[spikes] *= 1 + rng.uniform(0.1, 0.6, size=60)
    return curve


def test_monotone_descent_has_zero_volatility():
    assert volatility(smooth_curve()) == 0.0
    assert spike_count(smooth_curve()) == 0


def test_spiky_curve_ranks_above_smooth_curve():
    assert volatility(spiky_curve()) > volatility(smooth_curve())
    assert spike_count(spiky_curve()) >= 55  # adjacent spikes can merge


def test_more_and_bigger_spikes_rank_higher():
    base = smooth_curve()
    few, many, bigger = base.copy(), base.copy(), base.copy()
    few[[300, 600]] *= 1.3
    many[[300, 400, 500, 600, 700, 800]] *= 1.3
    bigger[[300, 600]] *= 2.0
    assert 0 < volatility(few) < volatility(many)
    assert volatility(few) < volatility(bigger)


def test_volatility_is_scale_free_and_ignores_descent_speed():
    curve = spiky_curve()
    assert volatility(curve * 1000) == pytest.approx(volatility(curve))
    fast = 3.0 * np.exp(-EPOCHS / 50) + 0.1  # steep but smooth: not volatile
    assert volatility(fast) == 0.0


def test_slow_wobble_ranks_below_sharp_spikes_of_same_count():
    # Small oscillation (0.5% rises) versus sharp spikes (30% rises), same number of rises.
    base = smooth_curve()
    wobble, sharp = base.copy(), base.copy()
    wobble[300:900:20] *= 1.005 * np.exp(30 / 300)  # undo 30 epochs of descent, then +0.5%
    sharp[300:900:20] *= 1.3 * np.exp(30 / 300)
    assert volatility(wobble) < volatility(sharp)


def test_volatility_rejects_bad_curves():
    with pytest.raises(ValueError, match="at least two"):
        volatility([1.0])
    with pytest.raises(ValueError, match="positive and finite"):
        volatility([1.0, math.nan, 0.5])


def test_run_metrics_row():
    history = pd.DataFrame({"epoch": [1, 2, 3, 4], "loss": [4.0, 2.0, 2.2, 1.0]})
    run = {"cell": "lstm", "seed": 3, "params": 1169, "sec_per_epoch": 0.5, "device": "CPU"}
    row = run_metrics(run, history)
    assert list(row) == list(METRIC_COLUMNS)
    assert row["final_loss"] == 1.0 and row["best_loss"] == 1.0
    # Fewer epochs than metrics.tail_epochs: the geometric mean of all of them.
    assert row["tail_loss"] == pytest.approx((4.0 * 2.0 * 2.2 * 1.0) ** 0.25)
    assert run_metrics(run, history, tail_epochs=2)["tail_loss"] == pytest.approx(math.sqrt(2.2))
    assert row["volatility"] == pytest.approx(math.log(1.1) / 3)
    assert row["spikes"] == 1
    assert (row["cell"], row["seed"], row["params"], row["device"]) == ("lstm", 3, 1169, "CPU")


def test_heldout_metrics_are_the_last_and_the_best_measured_value():
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3, 4, 5],
            "loss": [4.0, 3.0, 2.0, 1.5, 1.0],
            "heldout_loss": [math.nan, 2.5, math.nan, 2.0, 2.2],
        }
    )
    run = {"cell": "gru", "seed": 0, "params": 929, "sec_per_epoch": 0.5, "device": "CPU"}
    row = run_metrics(run, history)
    assert row["heldout_loss"] == 2.2  # after the last epoch: the trained model
    assert row["best_heldout_loss"] == 2.0 and row["best_heldout_epoch"] == 4
    diverged = history.assign(loss=[4.0, 3.0, 2.0, 1.5, math.nan])
    diverged.loc[4, "heldout_loss"] = math.nan
    row = run_metrics({**run, "status": "diverged"}, diverged)
    assert math.isnan(row["heldout_loss"])  # ranks worst, as a diverged run does
    assert row["best_heldout_loss"] == 2.0 and row["best_heldout_epoch"] == 4


def test_diverged_run_metrics_describe_the_epochs_before_divergence():
    history = pd.DataFrame({"epoch": [1, 2, 3, 4], "loss": [4.0, 2.0, 2.2, math.inf]})
    run = {"cell": "gru", "seed": 1, "status": "diverged", "params": 929}
    row = run_metrics({**run, "sec_per_epoch": 0.5, "device": "CPU"}, history)
    assert row["status"] == "diverged"
    assert math.isnan(row["final_loss"]) and math.isnan(row["tail_loss"])
    assert row["best_loss"] == 2.0
    assert row["volatility"] == pytest.approx(math.log(1.1) / 2)


def test_a_spike_in_the_last_epoch_sets_the_final_loss_not_the_tail_loss():
    losses = np.full(100, 0.1)
    losses[-1] = 1.0  # one spike, ten times the loss, in the last epoch
    row = run_metrics(
        {"cell": "lstm", "seed": 0, "params": 1, "sec_per_epoch": 0.1, "device": "CPU"},
        pd.DataFrame({"epoch": np.arange(1, 101), "loss": losses}),
        tail_epochs=50,
    )
    assert row["final_loss"] == 1.0
    assert row["tail_loss"] == pytest.approx(0.1 * 10 ** (1 / 50))


def test_condition_columns_are_the_columns_beyond_the_metrics():
    plain = pd.DataFrame(columns=METRIC_COLUMNS)
    assert condition_columns(plain) == []
    study = plain.assign(**{"task.horizon": [], "model.units": []})
    assert condition_columns(study) == ["task.horizon", "model.units"]
