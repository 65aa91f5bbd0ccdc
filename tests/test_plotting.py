"""The comparison figure is written, in both formats, with the expected content."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnn_cell_bench.plotting import PlotSettings, center_and_band, plot_loss_curves
from rnn_cell_bench.statistics import geometric_mean_interval


def fake_histories(seeds=(0, 1, 2)):
    epochs = np.arange(1, 51)
    histories = {}
    for cell, scale in (("lstm", 1.0), ("gru", 0.8)):
        for seed in seeds:
            loss = scale * (2.0 + 0.1 * seed) * np.exp(-epochs / 20) + 0.1
            histories[(cell, seed)] = pd.DataFrame({"epoch": epochs, "loss": loss})
    metrics = pd.DataFrame(
        {"cell": ["lstm", "gru"], "seed": [0, 0], "params": [1169, 929]},
    )
    return histories, metrics


@pytest.mark.parametrize("band", ["ci95", "range", "none"])
def test_figure_files_are_written(tmp_path, band):
    histories, metrics = fake_histories()
    outputs = [tmp_path / "fig" / "loss_curves.png", tmp_path / "fig" / "loss_curves.svg"]
    plot_loss_curves(histories, metrics, outputs, PlotSettings(band=band, dpi=50))
    assert outputs[0].read_bytes().startswith(b"\x89PNG")
    assert outputs[0].stat().st_size > 1000
    assert "<svg" in outputs[1].read_text()


def test_legend_colors_and_log_axis(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    captured = {}
    monkeypatch.setattr(plt, "close", lambda fig: captured.setdefault("fig", fig))
    histories, metrics = fake_histories()
    plot_loss_curves(histories, metrics, [tmp_path / "f.png"], PlotSettings(dpi=40))
    ax = captured["fig"].axes[0]
    assert ax.get_yscale() == "log"
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == [
        "LSTM (geometric mean, n=3, 1,169 params)",
        "GRU (geometric mean, n=3, 929 params)",
    ]
    colors = {line.get_label(): line.get_color() for line in ax.get_lines()}
    assert colors[labels[0]] == "#1f77b4"  # LSTM blue
    assert colors[labels[1]] == "#ff7f0e"  # GRU orange
    assert len(ax.get_lines()) == 8  # 3 faint seed lines + 1 mean per cell


def test_center_is_geometric_mean_with_band_around_it():
    curves = np.array([[1.0, 10.0], [4.0, 40.0]])
    center, low, high = center_and_band(curves, "range", log_y=True)
    np.testing.assert_allclose(center, [2.0, 20.0])
    np.testing.assert_allclose(low, [1.0, 10.0])
    np.testing.assert_allclose(high, [4.0, 40.0])
    center, low, high = center_and_band(curves, "ci95", log_y=False)
    np.testing.assert_allclose(center, [2.5, 25.0])
    assert np.all(low < center) and np.all(center < high)
    assert center_and_band(curves[:1], "ci95", log_y=True)[1] is None  # one seed: no band


def test_log_band_is_the_summarys_geometric_mean_interval_at_every_epoch():
    rng = np.random.default_rng(0)
    curves = np.exp(rng.normal(size=(5, 7)))
    center, low, high = center_and_band(curves, "ci95", log_y=True)
    for epoch in range(curves.shape[1]):
        assert (center[epoch], low[epoch], high[epoch]) == pytest.approx(
            geometric_mean_interval(curves[:, epoch])
        )
    assert np.all(low > 0)


def test_diverged_runs_are_marked_and_left_out_of_the_mean(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    captured = {}
    monkeypatch.setattr(plt, "close", lambda fig: captured.setdefault("fig", fig))
    histories, _ = fake_histories()
    histories[("gru", 2)].loc[30:, "loss"] = np.nan  # diverged at epoch 31
    metrics = pd.DataFrame(
        {
            "cell": ["lstm"] * 3 + ["gru"] * 3,
            "seed": [0, 1, 2] * 2,
            "status": ["completed"] * 5 + ["diverged"],
            "params": [1169] * 3 + [929] * 3,
        }
    )
    plot_loss_curves(histories, metrics, [tmp_path / "f.png"], PlotSettings(dpi=40))
    ax = captured["fig"].axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels[1] == "GRU (geometric mean, n=3, 1 diverged (x), 929 params)"
    crosses = [line for line in ax.get_lines() if line.get_marker() == "x"]
    assert len(crosses) == 1 and crosses[0].get_xdata()[0] == 30
    gru_mean = next(line for line in ax.get_lines() if line.get_label() == labels[1])
    np.testing.assert_allclose(
        gru_mean.get_ydata(),
        np.sqrt(histories[("gru", 0)].loss * histories[("gru", 1)].loss),
    )


def test_a_panel_per_condition_shares_the_loss_axis(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from rnn_cell_bench.plotting import plot_conditions

    captured = {}
    monkeypatch.setattr(plt, "close", lambda fig: captured.setdefault("fig", fig))
    histories, metrics = fake_histories()
    panels = [(f"task.horizon = {h}", histories, metrics) for h in (1, 25, 200, 400)]
    plot_conditions(panels, [tmp_path / "curves.png"], PlotSettings(dpi=30))
    axes = [ax for ax in captured["fig"].axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == [title for title, _, _ in panels]
    assert len({ax.get_ylim() for ax in axes}) == 1  # shared loss axis
    assert len(captured["fig"].axes) == 4  # a 2 x 2 grid, no empty panel


def study_comparison():
    rows = []
    for horizon in (1, 25, 200):
        for units in ("8", "gru18_lstm16"):
            effect = 0.5 if horizon == 200 else 1.5
            rows.append(
                {"task.horizon": horizon, "model.units": units, "metric": "final_loss",
                 "effect": effect, "ci_low": effect * 0.8, "ci_high": effect * 1.25,
                 "cell": "gru", "reference": "lstm"}
            )  # fmt: skip
            rows.append({**rows[-1], "metric": "tail_loss", "effect": 9.0})
    return pd.DataFrame(rows)


def test_the_study_figure_plots_the_final_loss_ratio_against_each_axis(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from rnn_cell_bench.plotting import plot_study

    captured = {}
    monkeypatch.setattr(plt, "close", lambda fig: captured.setdefault("fig", fig))
    outputs = [tmp_path / "study.png", tmp_path / "study.svg"]
    plot_study(study_comparison(), ["task.horizon", "model.units"], outputs, PlotSettings(dpi=30))
    assert outputs[0].stat().st_size > 1000 and "<svg" in outputs[1].read_text()
    horizon_axis, units_axis = captured["fig"].axes
    assert horizon_axis.get_xlabel() == "task.horizon"
    # One line per value of the other axis, through the final-loss ratios (not the tail's).
    ratios = sorted(
        tuple(line.get_ydata()) for line in horizon_axis.get_lines() if line.get_marker() == "o"
    )
    assert ratios == [(1.5, 1.5, 0.5), (1.5, 1.5, 0.5)]
    assert [t.get_text() for t in units_axis.get_xticklabels()] == ["8", "gru18_lstm16"]
    assert any(tuple(line.get_ydata()) == (1.0, 1.0) for line in horizon_axis.get_lines())


def test_the_study_figure_needs_an_axis(tmp_path):
    from rnn_cell_bench.plotting import plot_study

    with pytest.raises(ValueError, match="at least one study axis"):
        plot_study(study_comparison(), [], [tmp_path / "study.png"])


def three_cell_histories():
    histories, metrics = fake_histories()
    epochs = np.arange(1, 51)
    for cell, scale in (("rnn", 2.0), ("mgu", 0.9)):
        for seed in (0, 1, 2):
            loss = scale * (2.0 + 0.1 * seed) * np.exp(-epochs / 20) + 0.1
            histories[(cell, seed)] = pd.DataFrame({"epoch": epochs, "loss": loss})
    extra = pd.DataFrame({"cell": ["rnn", "mgu"], "seed": [0, 0], "params": [305, 593]})
    return histories, pd.concat([metrics, extra], ignore_index=True)


def test_every_cell_has_its_fixed_colour_and_its_parameters_in_the_legend(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    captured = {}
    monkeypatch.setattr(plt, "close", lambda fig: captured.setdefault("fig", fig))
    histories, metrics = three_cell_histories()
    plot_loss_curves(histories, metrics, [tmp_path / "f.png"], PlotSettings(dpi=30))
    ax = captured["fig"].axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels[2:] == [
        "RNN (geometric mean, n=3, 305 params)",
        "MGU (geometric mean, n=3, 593 params)",
    ]
    colors = {line.get_label(): line.get_color() for line in ax.get_lines()}
    assert [colors[label] for label in labels] == ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    assert ax.get_title() == "LSTM vs GRU vs RNN vs MGU: training and held-out loss"
    captured.clear()
    settings = PlotSettings(dpi=30, title="Mine")
    plot_loss_curves(histories, metrics, [tmp_path / "f.png"], settings)
    assert captured["fig"].axes[0].get_title() == "Mine"  # a title of the user's is kept


def test_the_study_figure_draws_one_line_per_cell_against_the_reference(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from rnn_cell_bench.plotting import plot_study

    captured = {}
    monkeypatch.setattr(plt, "close", lambda fig: captured.setdefault("fig", fig))
    one_axis = study_comparison()
    one_axis = one_axis[one_axis["model.units"] == "8"].drop(columns="model.units")
    rnn = one_axis.assign(cell="rnn", effect=3.0, ci_low=2.5, ci_high=3.5)
    gru_vs_lstm = one_axis.assign(reference="rnn", cell="lstm", effect=0.3)  # not drawn
    table = pd.concat([one_axis, rnn, gru_vs_lstm.assign(reference="zzz")], ignore_index=True)
    plot_study(
        table, ["task.horizon"], [tmp_path / "s.png"], PlotSettings(dpi=30), reference="lstm"
    )
    (ax,) = captured["fig"].axes
    drawn = {
        bars.get_label(): (tuple(bars.lines[0].get_ydata()), bars.lines[0].get_color())
        for bars in ax.containers
    }
    assert drawn == {
        "GRU / LSTM": ((1.5, 1.5, 0.5), "#ff7f0e"),
        "RNN / LSTM": ((3.0, 3.0, 3.0), "#2ca02c"),
    }
    assert "LSTM vs GRU vs RNN: where each cell ends lower than the LSTM" in (
        captured["fig"]._suptitle.get_text()
    )
