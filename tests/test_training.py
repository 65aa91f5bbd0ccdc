"""Training: the loss falls, and a seed fixes the whole history across processes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from rnn_cell_bench.data import DataSettings, make_arrays
from rnn_cell_bench.training import TrainSettings, make_optimizer, train

TINY = DataSettings(n_sequences=4, n_steps=80, periods=(10.0, 25.0), horizon=5)

TRAIN_IN_A_NEW_PROCESS = """
import json, sys
sys.path.insert(0, {workflow!r})
from rnn_cell_bench.data import DataSettings, make_arrays
from rnn_cell_bench.training import TrainSettings, configure_threads, train
configure_threads(1)
data = DataSettings(**json.loads(sys.argv[1]))
data = DataSettings.from_attrs(data.as_attrs())
inputs, targets, _, _ = make_arrays(data)
result = train(inputs, targets, sys.argv[2], int(sys.argv[3]), TrainSettings(epochs=15),
               log=lambda line: None)
print(json.dumps(result.losses))
"""


def train_in_new_process(cell: str, seed: int) -> list[float]:
    script = TRAIN_IN_A_NEW_PROCESS.format(workflow=str(REPO / "workflow"))
    settings = json.dumps(TINY.as_attrs())
    output = subprocess.run(
        [sys.executable, "-c", script, settings, cell, str(seed)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_loss_falls_on_tiny_data(cell):
    inputs, targets, _, _ = make_arrays(TINY)
    lines = []
    result = train(
        inputs,
        targets,
        cell,
        seed=0,
        settings=TrainSettings(epochs=40, learning_rate=0.01),
        log=lines.append,
        log_every=10,
    )
    assert len(result.losses) == len(result.seconds) == 40
    assert result.losses[-1] < 0.7 * result.losses[0]
    assert len(lines) == 4 and lines[-1].startswith("epoch 40/40  loss ")
    assert "s/epoch  ETA" in lines[0]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_same_seed_same_history_in_separate_processes(cell):
    first = train_in_new_process(cell, seed=7)
    second = train_in_new_process(cell, seed=7)
    other_seed = train_in_new_process(cell, seed=8)
    assert len(first) == 15
    assert first == second  # bit-for-bit on the CPU
    assert first != other_seed


def test_clip_modes_map_to_keras_options():
    global_clip = make_optimizer(TrainSettings(clip="global", clipnorm=0.5))
    per_variable = make_optimizer(TrainSettings(clip="per_variable", clipnorm=0.5))
    assert (global_clip.global_clipnorm, global_clip.clipnorm) == (0.5, None)
    assert (per_variable.global_clipnorm, per_variable.clipnorm) == (None, 0.5)
    assert global_clip.learning_rate.numpy() == np.float32(0.001)
    with pytest.raises(ValueError, match="train.clip"):
        make_optimizer(TrainSettings(clip="none"))
