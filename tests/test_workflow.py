"""The real ``snakemake`` command on the tiny config: outputs, and rerunning only what changed."""

from __future__ import annotations

import json
import os
import time

import pandas as pd
import pytest
from conftest import edit_config, planned_jobs, snakemake

from rnn_cell_bench.runtime import device_name, resolve_engine


def touch_later(path):
    """Edit a file as a user would: its content changes and its mtime moves forward."""
    path.write_text(path.read_text() + "\n# edited\n")
    later = time.time() + 5
    os.utime(path, (later, later))


def test_full_run_writes_every_output(finished_project):
    results = finished_project / "results" / "default"
    metrics = pd.read_csv(results / "metrics.csv")
    assert list(metrics.columns) == [
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
    ]
    assert metrics[["heldout_loss", "best_heldout_loss"]].notna().all().all()
    assert sorted(zip(metrics.cell, metrics.seed, strict=True)) == [
        ("gru", 0),
        ("gru", 1),
        ("lstm", 0),
        ("lstm", 1),
    ]
    assert dict(zip(metrics.cell, metrics.params, strict=False)) == {"lstm": 1169, "gru": 929}
    summary = pd.read_csv(results / "summary.csv")
    assert list(summary.cell) == ["lstm", "gru"]
    assert list(summary.n) == [2, 2]
    losses = ("tail_loss", "final_loss", "best_loss", "heldout_loss", "best_heldout_loss")
    for name in (*losses, "sec_per_epoch"):  # geometric means
        for stat in ("gmean", "ci_low", "ci_high"):
            assert f"{name}_{stat}" in summary.columns
    for name in ("volatility", "spikes"):
        for stat in ("mean", "ci_low", "ci_high"):
            assert f"{name}_{stat}" in summary.columns
    assert "divergence_ci_high" in summary.columns
    for cell in ("lstm", "gru"):
        for seed in (0, 1):
            run_dir = results / "runs" / cell / f"seed_{seed}"
            history = pd.read_csv(run_dir / "history.csv")
            assert list(history.columns) == ["epoch", "loss", "seconds", "heldout_loss"]
            assert list(history.epoch) == [1, 2, 3, 4]
            # eval_every 10 > 4 epochs: measured after the last epoch only
            assert list(history.dropna().epoch) == [4]
            run = json.loads((run_dir / "run.json").read_text())
            assert (run["cell"], run["seed"], run["device"]) == (cell, seed, device_name())
            assert run["engine"] == resolve_engine("auto")  # fused without a GPU
            assert run["settings"]["epochs"] == 4
            assert run["heldout_loss"] == pytest.approx(history["heldout_loss"].iloc[-1], rel=1e-8)
            assert run["best_heldout_epoch"] == 4 and run["input_dim"] == 1
            assert run["versions"]["tensorflow"]
            assert (run_dir / "model.keras").stat().st_size > 0
            log = (results / "logs" / "train" / cell / f"seed_{seed}.log").read_text()
            assert "epoch 2/4" in log and "ETA" in log
            assert (results / "benchmarks" / "train" / cell / f"seed_{seed}.tsv").exists()
    for suffix in ("png", "svg"):
        assert (results / "figures" / f"loss_curves.{suffix}").stat().st_size > 1000
    assert len(list((finished_project / "data").glob("sines_*.h5"))) == 1


def test_complete_run_leaves_nothing_to_do(project_copy):
    assert planned_jobs(project_copy) == {}


def test_plot_setting_reruns_only_plotting(project_copy):
    edit_config(project_copy, plot={"band": "range"})
    assert planned_jobs(project_copy) == {"plot": 1, "all": 1}


def test_progress_and_thread_settings_do_not_retrain(project_copy):
    edit_config(project_copy, train={"log_every": 1, "threads": 1, "tensorboard": True})
    assert planned_jobs(project_copy) == {}


def test_tail_epochs_rerun_only_aggregation_and_plotting(project_copy):
    edit_config(project_copy, metrics={"tail_epochs": 2})
    assert planned_jobs(project_copy) == {"aggregate": 1, "plot": 1, "all": 1}


def test_epochs_rerun_training_and_downstream_not_data(project_copy):
    edit_config(project_copy, train={"epochs": 5})
    assert planned_jobs(project_copy) == {"train": 4, "aggregate": 1, "plot": 1, "all": 1}


def test_data_setting_reruns_everything(project_copy):
    edit_config(project_copy, data={"noise_std": 0.2})
    assert planned_jobs(project_copy) == {
        "generate_data": 1,
        "train": 4,
        "aggregate": 1,
        "plot": 1,
        "all": 1,
    }


def test_horizon_is_a_data_setting(project_copy):
    edit_config(project_copy, task={"horizon": 6})
    assert planned_jobs(project_copy)["generate_data"] == 1


def test_adding_a_seed_trains_only_that_seed(project_copy):
    runs = project_copy / "results" / "default" / "runs"
    before = {path: path.stat().st_mtime_ns for path in runs.rglob("history.csv")}
    edit_config(project_copy, seeds=[0, 1, 2])
    assert planned_jobs(project_copy) == {"train": 2, "aggregate": 1, "plot": 1, "all": 1}
    # Really run it: the old runs stay untouched and the new seed joins the tables.
    snakemake(project_copy, "--resources", "gpu=1")
    assert {path: path.stat().st_mtime_ns for path in before} == before
    assert (runs / "lstm" / "seed_2" / "history.csv").exists()
    summary = pd.read_csv(project_copy / "results" / "default" / "summary.csv")
    assert list(summary.n) == [3, 3]
    assert planned_jobs(project_copy) == {}


def test_removing_a_cell_trains_nothing(project_copy):
    edit_config(project_copy, cells=["gru"])
    assert planned_jobs(project_copy) == {"aggregate": 1, "plot": 1, "all": 1}


def test_editing_plotting_code_reruns_only_plotting(project_copy):
    touch_later(project_copy / "workflow" / "rnn_cell_bench" / "plotting.py")
    assert planned_jobs(project_copy) == {"plot": 1, "all": 1}


def test_editing_model_code_reruns_training(project_copy):
    touch_later(project_copy / "workflow" / "rnn_cell_bench" / "models.py")
    assert planned_jobs(project_copy) == {"train": 4, "aggregate": 1, "plot": 1, "all": 1}


def test_editing_training_code_reruns_training(project_copy):
    touch_later(project_copy / "workflow" / "rnn_cell_bench" / "training.py")
    assert planned_jobs(project_copy) == {"train": 4, "aggregate": 1, "plot": 1, "all": 1}


def test_editing_metrics_code_reruns_aggregation_and_plotting(project_copy):
    touch_later(project_copy / "workflow" / "rnn_cell_bench" / "metrics.py")
    assert planned_jobs(project_copy) == {"aggregate": 1, "plot": 1, "all": 1}
