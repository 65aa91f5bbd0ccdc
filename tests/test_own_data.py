"""A user's own series through the real ``snakemake`` command: a CSV with two sequences and
three features on both engines, held-out numbers in every table, bad input stopped before any
training with the file and the place named, and an edited file rerunning only what it feeds."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import copy_project, edit_config, planned_jobs, snakemake

STEPS = 60
OWN = {
    "file": "series.csv",
    "sequence_column": "site",
    "target": "load",
    "inputs": ["load", "temp", "sun"],
    "split": "time",
    "heldout_fraction": 0.25,
}
RESULTS = Path("results/own")


def series(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(STEPS)
    parts = []
    for site, phase in (("north", 0.0), ("south", 1.0)):
        temp = np.sin(2 * np.pi * t / 12 + phase) + rng.normal(0, 0.1, STEPS)
        sun = np.clip(np.sin(2 * np.pi * t / 12), 0, None)
        load = 10 + 2 * np.sin(2 * np.pi * t / 12 + 0.5 + phase) - temp + rng.normal(0, 0.2, STEPS)
        parts.append(pd.DataFrame({"site": site, "load": load, "temp": temp, "sun": sun}))
    return pd.concat(parts, ignore_index=True).round(5)


def own_project(path: Path, engine: str = "fused", name: str = "own") -> Path:
    project = copy_project(path)
    series().to_csv(project / "series.csv", index=False)
    edit_config(
        project,
        name=name,
        data=OWN,
        seeds=[0, 1, 2],
        train={"epochs": 6, "eval_every": 2, "engine": engine},
    )
    return project


@pytest.fixture(scope="module")
def finished_own(tmp_path_factory) -> Path:
    project = own_project(tmp_path_factory.mktemp("own") / "project")
    snakemake(project, "--resources", "gpu=1")
    return project


def test_a_csv_of_two_sequences_and_three_features_runs_end_to_end(finished_own):
    results = finished_own / RESULTS
    (converted,) = (finished_own / "data").glob("series_*.h5")
    run = json.loads((results / "runs/gru/seed_0/run.json").read_text())
    assert run["input_dim"] == 3 and run["data"]["file"] == f"data/{converted.name}"
    assert run["data"]["attrs"]["settings"]["target"] == "load"
    assert run["params"] == 3 * (16 * 3 + 16 * 16 + 2 * 16) + 17  # GRU with 3 inputs
    log = (results / "logs/train/lstm/seed_0.log").read_text()
    # T0 = 45 of 60 steps; 40 training steps; held-out read from step 0, counted from 40
    assert "(2, 40, 3), held out (2, 55, 3) from step 40" in log
    history = pd.read_csv(results / "runs/lstm/seed_0/history.csv")
    assert list(history.columns) == ["epoch", "loss", "seconds", "heldout_loss"]
    assert list(history.dropna().epoch) == [2, 4, 6]
    # held-out numbers in every table
    metrics = pd.read_csv(results / "metrics.csv")
    assert metrics[["heldout_loss", "best_heldout_loss"]].notna().all().all()
    assert (metrics["best_heldout_epoch"].isin([2, 4, 6])).all()
    summary = pd.read_csv(results / "summary.csv")
    assert summary[["heldout_loss_gmean", "best_heldout_loss_gmean"]].notna().all().all()
    comparison = pd.read_csv(results / "comparison.csv")
    held = comparison[comparison.metric == "heldout_loss"].iloc[0]
    assert held["family"] == "claims" and 0 < held["p_value"] <= 1
    claims = pd.read_csv(results / "claims.csv")
    assert list(claims.metric) == ["tail_loss", "volatility", "sec_per_epoch", "heldout_loss"]
    assert (
        "4. The GRU reaches a lower loss than the LSTM on held-out data"
        in (results / "claims.md").read_text()
    )


def test_both_engines_agree_on_a_file_with_three_features(finished_own, tmp_path):
    keras = own_project(tmp_path / "keras", engine="keras", name="own-keras")
    edit_config(keras, seeds=[0])
    snakemake(keras, "--resources", "gpu=1", "--until", "train")
    for cell in ("lstm", "gru"):
        fused = pd.read_csv(finished_own / RESULTS / f"runs/{cell}/seed_0/history.csv")
        other = pd.read_csv(keras / f"results/own-keras/runs/{cell}/seed_0/history.csv")
        np.testing.assert_allclose(other["loss"], fused["loss"], rtol=1e-3, err_msg=cell)
        np.testing.assert_allclose(
            other["heldout_loss"].dropna(), fused["heldout_loss"].dropna(), rtol=1e-3
        )
        assert (
            json.loads((keras / f"results/own-keras/runs/{cell}/seed_0/run.json").read_text())[
                "engine"
            ]
            == "keras"
        )


def test_an_edited_file_reruns_what_depends_on_it_and_nothing_else(finished_own, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(finished_own, project, symlinks=True)
    # the generator's experiment beside it, finished too
    edit_config(project, name="default", data={"file": None})
    snakemake(project, "--resources", "gpu=1")
    edit_config(project, name="own", data=OWN)
    assert planned_jobs(project) == {}
    # touched, not changed: its content is what counts
    later = time.time() + 5
    os.utime(project / "series.csv", (later, later))
    assert planned_jobs(project) == {}
    edited = series()
    edited.loc[3, "temp"] += 0.5
    edited.to_csv(project / "series.csv", index=False)
    assert planned_jobs(project) == {
        "convert_data": 1,
        "train": 6,
        "aggregate": 1,
        "plot": 1,
        "all": 1,
    }
    edit_config(project, name="default", data={"file": None})
    assert planned_jobs(project) == {}  # nothing of the other experiment


def test_changing_only_the_heldout_part_leaves_training_bit_identical(finished_own, tmp_path):
    """No held-out value reaches training: the held-out steps of every sequence (from T0 = 45
    on) rewritten, the run retrained: every training loss and weight is the same bit for
    bit, and only the held-out losses move."""
    import keras

    project = tmp_path / "project"
    shutil.copytree(finished_own, project, symlinks=True)
    edited = series()
    step = edited.groupby("site").cumcount()
    edited.loc[step >= 45, ["load", "temp", "sun"]] *= -3.0
    edited.to_csv(project / "series.csv", index=False)
    run = RESULTS / "runs/gru/seed_0"
    snakemake(project, str(run / "run.json"), "--resources", "gpu=1")
    before = pd.read_csv(finished_own / run / "history.csv")
    after = pd.read_csv(project / run / "history.csv")
    pd.testing.assert_series_equal(after["loss"], before["loss"])
    assert not np.allclose(after["heldout_loss"].dropna(), before["heldout_loss"].dropna())
    weights = keras.saving.load_model(project / run / "model.keras").get_weights()
    expected = keras.saving.load_model(finished_own / run / "model.keras").get_weights()
    for got, want in zip(weights, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    # ... and the step before the split is training data: it does move the training loss
    edited.loc[(step == 44) & (edited.site == "north"), "load"] += 1.0
    edited.to_csv(project / "series.csv", index=False)
    snakemake(project, str(run / "run.json"), "--resources", "gpu=1")
    assert not pd.read_csv(project / run / "history.csv")["loss"].equals(before["loss"])


def test_bad_edit_fails_before_training_and_keeps_what_was_computed(finished_own, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(finished_own, project, symlinks=True)
    history = project / RESULTS / "runs/gru/seed_1/history.csv"
    before = history.read_bytes()
    text = (project / "series.csv").read_text().splitlines()
    text[7] = text[7].replace(text[7].split(",")[2], "n/a")  # line 8, column temp
    (project / "series.csv").write_text("\n".join(text) + "\n")
    result = snakemake(project, "--resources", "gpu=1", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "data.file series.csv: line 8, column 'temp': 'n/a' is not a number" in output
    assert "rule train" not in output
    assert history.read_bytes() == before


def bad_case(project: Path, case: str) -> tuple[dict, str]:
    """A config and the message it must stop with."""
    frame = series()
    data = dict(OWN)
    if case == "missing file":
        return {**data, "file": "nowhere.csv"}, "data.file: 'nowhere.csv' is not a file"
    if case == "unknown target":
        data["target"] = "price"
        message = "data.target 'price' is not a column (feature columns: load, temp, sun)"
    elif case == "unknown input":
        data["inputs"] = ["load", "wind"]
        message = "data.inputs 'wind' is not a column"
    elif case == "nan":
        frame.loc[10, "sun"] = np.nan
        message = "line 12, column 'sun': nan (NaN or inf; 1 such value(s) in the file)"
    elif case == "different lengths":
        frame = frame.drop(index=[70, 71])
        message = "sequences of different lengths (rows per 'site' value: 'north': 60, 'south': 58)"
    elif case == "too short":
        data["heldout_fraction"] = 0.95
        message = "sequences of 60 steps are too short for task.horizon 5 and data.heldout_fraction"
    elif case == "constant target":
        frame["load"] = 3.0
        message = "the target 'load' is constant in the training part (3)"
    frame.to_csv(project / "series.csv", index=False, na_rep="nan")
    return data, message


CASES = [
    "missing file",
    "unknown target",
    "unknown input",
    "nan",
    "different lengths",
    "too short",
    "constant target",
]


def test_bad_input_stops_before_training_naming_the_file_and_the_place(tmp_path):
    project = own_project(tmp_path / "project")
    for case in CASES:
        data, message = bad_case(project, case)
        edit_config(project, data=data)
        result = snakemake(project, "--resources", "gpu=1", check=False)
        output = result.stdout + result.stderr
        assert result.returncode != 0, case
        assert message in output, f"{case}: {output[-2000:]}"
        if case != "missing file":
            assert "data.file series.csv: " in output, case
        assert not (project / RESULTS / "runs").exists(), case


@pytest.mark.parametrize("kind", ["npy", "hdf5"])
def test_an_array_file_split_by_sequence_runs_through_the_workflow(tmp_path, kind):
    import h5py

    project = own_project(tmp_path / "project")
    array = np.random.default_rng(5).normal(size=(4, 40, 2)).cumsum(axis=1)
    data = {"sequence_column": None, "target": 1, "inputs": None, "split": "sequence"}
    if kind == "npy":
        np.save(project / "series.npy", array)
        data.update(file="series.npy", dataset=None)
    else:
        with h5py.File(project / "series.h5", "w") as h5:
            h5["runs/values"] = array
        data.update(file="series.h5", dataset="runs/values")
    edit_config(project, data=data, seeds=[0])
    run = RESULTS / "runs/gru/seed_0"
    snakemake(project, str(run / "run.json"), "--resources", "gpu=1")
    log = (project / RESULTS / "logs/train/gru/seed_0.log").read_text()
    # 4 sequences, the last (round(0.25 x 4) = 1) held out whole; horizon 5 of 40 steps
    assert "(3, 35, 2), held out (1, 35, 2) from step 0" in log
    record = json.loads((project / run / "run.json").read_text())
    assert record["input_dim"] == 2
    assert (
        "the last 1 of 4 sequences held out (3)" in record["data"]["attrs"]["description"]["split"]
    )
