"""Training: the loss falls, and a seed fixes the whole history across processes."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO

from rnn_cell_bench.checkpoints import Checkpointer
from rnn_cell_bench.data import DataSettings, make_arrays
from rnn_cell_bench.provenance import git_commit, run_fingerprint
from rnn_cell_bench.runtime import make_optimizer
from rnn_cell_bench.settings import STATUS_DIVERGED, TrainingDiverged, TrainSettings
from rnn_cell_bench.training import HeldOut, train

TINY = DataSettings(n_sequences=4, n_steps=80, periods=(10.0, 25.0), horizon=5)

TRAIN_IN_A_NEW_PROCESS = """
import json, sys
sys.path.insert(0, {workflow!r})
from rnn_cell_bench.data import DataSettings, make_arrays
from rnn_cell_bench.runtime import configure_threads
from rnn_cell_bench.settings import TrainSettings
from rnn_cell_bench.training import train
settings, engine, threads, runs = json.loads(sys.argv[1])
configure_threads(threads)
inputs, targets, _, _ = make_arrays(DataSettings.from_attrs(settings))
histories = {{
    f"{{cell}}/{{seed}}": train(inputs, targets, cell, seed,
                              TrainSettings(epochs=15, engine=engine), log=lambda line: None).losses
    for cell, seed in runs
}}
print(json.dumps(histories))
"""


def train_in_new_process(engine: str, threads: int, runs) -> dict[str, list[float]]:
    """Loss histories of ``runs`` ((cell, seed) pairs) trained in a fresh Python process."""
    script = TRAIN_IN_A_NEW_PROCESS.format(workflow=str(REPO / "workflow"))
    request = json.dumps([TINY.as_attrs(), engine, threads, runs])
    output = subprocess.run(
        [sys.executable, "-c", script, request], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


@pytest.mark.parametrize("engine", ["keras", "fused"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_loss_falls_on_tiny_data(cell, engine):
    inputs, targets, _, _ = make_arrays(TINY)
    lines = []
    result = train(
        inputs,
        targets,
        cell,
        seed=0,
        settings=TrainSettings(epochs=40, learning_rate=0.01, engine=engine),
        log=lines.append,
        log_every=10,
    )
    assert len(result.losses) == len(result.seconds) == 40
    assert result.losses[-1] < 0.7 * result.losses[0]
    assert len(lines) == 4 and lines[-1].startswith("epoch 40/40  loss ")
    assert "s/epoch  ETA" in lines[0]


@pytest.mark.parametrize("engine", ["keras", "fused"])
def test_same_seed_same_history_in_separate_processes_and_thread_counts(engine):
    runs = [("lstm", 7), ("gru", 7), ("lstm", 8), ("gru", 8)]
    first = train_in_new_process(engine, threads=1, runs=runs)
    second = train_in_new_process(engine, threads=2, runs=runs[:2])
    for cell in ("lstm", "gru"):
        assert len(first[f"{cell}/7"]) == 15
        assert first[f"{cell}/7"] == second[f"{cell}/7"]  # bit for bit on the CPU
        assert first[f"{cell}/7"] != first[f"{cell}/8"]


def test_clip_modes_map_to_keras_options():
    global_clip = make_optimizer(TrainSettings(clip="global", clipnorm=0.5))
    per_variable = make_optimizer(TrainSettings(clip="per_variable", clipnorm=0.5))
    assert (global_clip.global_clipnorm, global_clip.clipnorm) == (0.5, None)
    assert (per_variable.global_clipnorm, per_variable.clipnorm) == (None, 0.5)
    assert global_clip.learning_rate.numpy() == np.float32(0.001)
    with pytest.raises(ValueError, match="train.clip"):
        make_optimizer(TrainSettings(clip="none"))


def quiet(line):
    pass


@pytest.mark.parametrize("engine", ["keras", "fused"])
@pytest.mark.parametrize("clip", ["global", "per_variable"])
def test_resuming_from_a_checkpoint_gives_the_uninterrupted_run(tmp_path, clip, engine):
    inputs, targets, _, _ = make_arrays(TINY)
    settings = TrainSettings(epochs=20, learning_rate=0.01, clip=clip, engine=engine, eval_every=3)
    heldout = HeldOut(inputs[:2] * 0.5, targets[:2], start=5)
    reference = train(inputs, targets, "gru", 1, settings, log=quiet, heldout=heldout)

    fingerprint = run_fingerprint("gru", 1, settings, "data-sha")
    checkpointer = Checkpointer(tmp_path / "run.npz", every=4, fingerprint=fingerprint, log=quiet)
    # A first process that stops after 11 epochs; its last checkpoint is at epoch 8.
    short = dataclasses.replace(settings, epochs=11)
    train(inputs, targets, "gru", 1, short, log=quiet, checkpointer=checkpointer, heldout=heldout)
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]  # no temporary file left

    # The first process's evaluation time carries over (made large here to be seen).
    first = checkpointer.load()
    assert first.heldout_seconds > 0
    checkpointer.save(
        first.weights, first.optimizer_state, first.losses, first.seconds, first.heldout_losses, 1e3
    )

    # Training consumes no randomness, so checkpoints hold no RNG state: another global RNG
    # state in the resuming process must not change the result.
    random.seed(12345)
    np.random.seed(12345)
    keras.utils.set_random_seed(12345)
    lines = []
    resumed = train(
        inputs,
        targets,
        "gru",
        1,
        settings,
        log=lines.append,
        checkpointer=checkpointer,
        heldout=heldout,
    )
    assert resumed.resumed_from == 8
    assert any("resumed from checkpoint" in line for line in lines)
    assert resumed.losses == reference.losses
    # the held-out losses before the checkpoint come from it, those after are measured again
    np.testing.assert_array_equal(resumed.heldout_losses, reference.heldout_losses)
    assert [epoch for epoch, _ in resumed.heldout_measured] == [3, 6, 9, 12, 15, 18, 20]
    # the evaluations before the checkpoint (epochs 3 and 6) still count in the time
    assert resumed.heldout_seconds > 1000
    for got, want in zip(resumed.weights, reference.weights, strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(resumed.optimizer_state, reference.optimizer_state, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    inputs, targets, _, _ = make_arrays(TINY)
    settings = TrainSettings(epochs=6)
    path = tmp_path / "run.npz"
    first = Checkpointer(path, 2, run_fingerprint("lstm", 0, settings, "sha"), log=quiet)
    train(inputs, targets, "lstm", 0, settings, log=quiet, checkpointer=first)
    other = dataclasses.replace(settings, learning_rate=0.01)
    lines = []
    second = Checkpointer(path, 2, run_fingerprint("lstm", 0, other, "sha"), log=lines.append)
    result = train(inputs, targets, "lstm", 0, other, log=lines.append, checkpointer=second)
    assert result.resumed_from == 0
    assert any("belongs to other settings, data or code" in line for line in lines)


def test_fingerprint_ignores_only_the_epoch_count():
    base = run_fingerprint("lstm", 0, TrainSettings(epochs=10), "sha")
    assert base == run_fingerprint("lstm", 0, TrainSettings(epochs=99), "sha")
    assert base != run_fingerprint("lstm", 0, TrainSettings(epochs=10), "sha", code="other")
    assert base != run_fingerprint("lstm", 0, TrainSettings(epochs=10, engine="fused"), "sha")
    assert base != run_fingerprint("lstm", 1, TrainSettings(epochs=10), "sha")
    assert base != run_fingerprint("gru", 0, TrainSettings(epochs=10), "sha")
    assert base != run_fingerprint("lstm", 0, TrainSettings(epochs=10), "other-sha")
    assert base != run_fingerprint("lstm", 0, TrainSettings(epochs=10, clip="per_variable"), "sha")


@pytest.mark.parametrize("engine", ["keras", "fused"])
def test_nan_loss_stops_the_run_as_diverged(engine):
    inputs, targets, _, _ = make_arrays(TINY)
    lines = []
    settings = TrainSettings(epochs=10, learning_rate=1e20, engine=engine)
    result = train(inputs, targets, "lstm", 0, settings, log=lines.append)
    assert result.status == STATUS_DIVERGED
    assert len(result.losses) < 10 and not np.isfinite(result.losses[-1])
    assert "diverged" in lines[-1]


def test_nan_loss_fails_when_asked():
    inputs, targets, _, _ = make_arrays(TINY)
    with pytest.raises(TrainingDiverged, match="lstm seed 0: loss"):
        train(
            inputs,
            targets,
            "lstm",
            0,
            TrainSettings(epochs=10, learning_rate=1e20),
            log=quiet,
            on_nan="fail",
        )


def test_git_commit_is_recorded_where_there_is_one(tmp_path):
    assert git_commit(tmp_path) is None

    def run(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    run("init", "-q")
    (tmp_path / "f").write_text("x")
    run("add", "f")
    run("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "c")
    commit = git_commit(tmp_path)
    assert len(commit) == 40
    (tmp_path / "f").write_text("y")
    assert git_commit(tmp_path) == f"{commit}+dirty"
