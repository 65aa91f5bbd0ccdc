"""train.tensorboard: one scalar per epoch for both engines, live; toggling it reruns nothing."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import edit_config, planned_jobs, snakemake

from rnn_cell_bench.data import DataSettings, make_arrays
from rnn_cell_bench.live_view import HELDOUT_TAG, read_scalars, tensorboard_scalars
from rnn_cell_bench.settings import TrainSettings
from rnn_cell_bench.training import HeldOut, train

TINY = DataSettings(n_sequences=2, n_steps=30, periods=(7.0, 11.0), horizon=3)


def quiet(line):
    pass


@pytest.mark.parametrize("engine", ["fused", "keras"])
def test_train_calls_on_epoch_once_per_epoch_with_the_history(engine):
    inputs, targets, _, _ = make_arrays(TINY)
    seen = []
    settings = TrainSettings(epochs=5, learning_rate=0.01, engine=engine, eval_every=2)
    heldout = HeldOut(inputs[:1], targets[:1], start=10)
    result = train(
        inputs,
        targets,
        "gru",
        0,
        settings,
        log=quiet,
        on_epoch=lambda *a: seen.append(a),
        heldout=heldout,
    )
    assert [(epoch, loss) for epoch, loss, _ in seen] == list(enumerate(result.losses, start=1))
    held = [h for _, _, h in seen]
    np.testing.assert_array_equal(held, result.heldout_losses)
    assert [i for i, h in enumerate(held, start=1) if not math.isnan(h)] == [2, 4, 5]


def test_scalars_round_trip_through_event_files(tmp_path):
    with tensorboard_scalars(tmp_path / "run") as on_epoch:
        for epoch, loss, heldout in ((1, 0.5, math.nan), (2, 0.25, 0.75), (3, math.inf, math.nan)):
            on_epoch(epoch, loss, heldout)
    assert read_scalars(tmp_path / "run") == [(1, 0.5), (2, 0.25), (3, math.inf)]
    assert read_scalars(tmp_path / "run", HELDOUT_TAG) == [(2, 0.75)]
    with tensorboard_scalars(None) as off:
        assert off is None
    assert len(list((tmp_path / "run").iterdir())) == 1  # one event file, nothing else


def test_tensorboard_writes_one_scalar_per_epoch_for_both_engines(project_copy):
    results = project_copy / "results" / "default"
    edit_config(project_copy, train={"tensorboard": True})
    assert planned_jobs(project_copy) == {}  # a live view changes no result
    runs = {"gru/seed_0": "fused", "lstm/seed_1": "keras"}
    for run, engine in runs.items():
        edit_config(project_copy, train={"engine": engine})
        snakemake(
            project_copy, "--resources", "gpu=1", "--force", f"results/default/runs/{run}/run.json"
        )
    assert sorted(
        p.relative_to(results / "tensorboard").as_posix()
        for p in (results / "tensorboard").glob("*/*")
    ) == sorted(runs)
    for run, engine in runs.items():
        history = pd.read_csv(results / "runs" / run / "history.csv")
        scalars = read_scalars(results / "tensorboard" / run)
        assert [step for step, _ in scalars] == [1, 2, 3, 4], engine
        np.testing.assert_allclose([v for _, v in scalars], history["loss"], rtol=1e-6)
        measured = history.dropna(subset=["heldout_loss"])
        assert list(measured.epoch) == [4]  # the tiny config: eval_every 10, so the last only
        heldout = read_scalars(results / "tensorboard" / run, HELDOUT_TAG)
        assert [step for step, _ in heldout] == [4], engine
        np.testing.assert_allclose([v for _, v in heldout], measured["heldout_loss"], rtol=1e-6)
    # Off (the default): the runs trained again write nothing.
    edit_config(project_copy, train={"tensorboard": False, "engine": "auto"})
    snakemake(
        project_copy, "--resources", "gpu=1", "--force", "results/default/runs/gru/seed_1/run.json"
    )
    assert not (results / "tensorboard" / "gru" / "seed_1").exists()
