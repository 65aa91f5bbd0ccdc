"""The fused CPU engine against the Keras reference, from identical initial weights."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import yaml
from conftest import copy_project, snakemake

from rnn_cell_bench.data import DataSettings, make_arrays
from rnn_cell_bench.fused import FusedAdam, loss_and_gradients
from rnn_cell_bench.models import build_model, save_model
from rnn_cell_bench.runtime import make_optimizer
from rnn_cell_bench.settings import TrainSettings
from rnn_cell_bench.training import train

DATA = DataSettings(n_sequences=6, n_steps=400, periods=(40.0, 110.0), horizon=20)
CELLS = ["lstm", "gru"]


@pytest.fixture(scope="module")
def arrays():
    inputs, targets, _, _ = make_arrays(DATA)
    return inputs, targets


def keras_loss_and_gradients(model, inputs, targets):
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(targets, model(inputs))
    grads = tape.gradient(loss, model.trainable_weights)
    return float(loss), [g.numpy() for g in grads]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_of_every_tensor_match_keras(arrays, cell, seed):
    model = build_model(cell, units=16, seed=seed)
    # Some training first, so the check is not only at the initial point.
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(*arrays, batch_size=len(arrays[0]), epochs=3, verbose=0, shuffle=False)
    expected_loss, expected = keras_loss_and_gradients(model, *arrays)
    loss, grads = loss_and_gradients(cell, *arrays, model.get_weights())
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    for weight, got, want in zip(model.trainable_weights, grads, expected, strict=True):
        assert got.shape == want.shape, weight.path
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale, err_msg=weight.path)


@pytest.mark.parametrize("clip", ["global", "per_variable"])
def test_adam_and_clipping_match_keras(clip):
    rng = np.random.default_rng(0)
    shapes = [(1, 64), (16, 64), (64,), (16, 1), (1,)]
    weights = [rng.normal(size=shape).astype(np.float32) for shape in shapes]
    variables = [keras.Variable(w.copy()) for w in weights]
    settings = TrainSettings(learning_rate=0.01, clipnorm=0.5, clip=clip)
    reference = make_optimizer(settings)
    ours = FusedAdam(shapes, settings.learning_rate, settings.clipnorm, settings.clip)
    for _ in range(5):
        grads = [rng.normal(size=shape).astype(np.float32) for shape in shapes]
        reference.apply_gradients(zip([tf.constant(g) for g in grads], variables, strict=True))
        ours.apply(grads, weights)
    for variable, weight in zip(variables, weights, strict=True):
        np.testing.assert_allclose(weight, variable.numpy(), rtol=1e-5, atol=1e-6)
    assert ours.iterations == int(reference.iterations.numpy())


@pytest.mark.parametrize("clip", ["global", "per_variable"])
@pytest.mark.parametrize("cell", CELLS)
def test_twenty_epochs_of_losses_match_keras(arrays, cell, clip):
    # A small clipnorm, so that clipping is active throughout.
    settings = dict(epochs=20, learning_rate=0.01, clipnorm=0.05, clip=clip)
    results = {
        engine: train(*arrays, cell, 3, TrainSettings(**settings, engine=engine), log=print)
        for engine in ("keras", "fused")
    }
    np.testing.assert_allclose(results["fused"].losses, results["keras"].losses, rtol=1e-3)
    assert results["fused"].losses[-1] < results["fused"].losses[0]
    assert (results["keras"].engine, results["fused"].engine) == ("keras", "fused")
    for got, want in zip(results["fused"].weights, results["keras"].weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-4)
    # Both engines keep Adam's state in Keras' variable order.
    for got, want in zip(
        results["fused"].optimizer_state, results["keras"].optimizer_state, strict=True
    ):
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=5e-2, atol=1e-5)


def test_pipeline_metrics_agree_between_engines(finished_project, tmp_path):
    """The tiny config's metrics with Keras against the finished fused run's: one seed, both
    cells (a second seed would add TensorFlow start-ups, not a case)."""
    project = copy_project(tmp_path / "project")
    config = yaml.safe_load((project / "tiny.yaml").read_text())
    config["train"]["engine"] = "keras"
    config["seeds"] = [0]
    (project / "tiny.yaml").write_text(yaml.safe_dump(config))
    snakemake(project, "results/default/metrics.csv", "--resources", "gpu=1")
    keras_metrics = pd.read_csv(project / "results/default/metrics.csv")
    fused_metrics = pd.read_csv(finished_project / "results/default/metrics.csv")
    fused_metrics = fused_metrics[fused_metrics.seed == 0].reset_index(drop=True)
    assert list(keras_metrics.cell) == list(fused_metrics.cell)
    assert set(keras_metrics.cell) == {"lstm", "gru"}
    assert set(keras_metrics.engine) == {"keras"} and set(fused_metrics.engine) == {"fused"}
    for name in ("final_loss", "best_loss"):
        np.testing.assert_allclose(fused_metrics[name], keras_metrics[name], rtol=1e-3)
    np.testing.assert_allclose(
        fused_metrics.volatility, keras_metrics.volatility, rtol=1e-2, atol=1e-6
    )


def test_a_fused_run_saves_a_complete_keras_model(arrays, tmp_path):
    settings = TrainSettings(epochs=5, engine="fused")
    result = train(*arrays, "gru", 0, settings, log=print)
    save_model(tmp_path / "model.keras", "gru", result.weights, result.optimizer_state, settings)
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert int(loaded.optimizer.iterations.numpy()) == 5
    for got, want in zip(loaded.get_weights(), result.weights, strict=True):
        np.testing.assert_array_equal(got, want)
    saved_state = [v.numpy() for v in loaded.optimizer.variables]
    for got, want in zip(saved_state, result.optimizer_state, strict=True):
        np.testing.assert_array_equal(got, want)
    assert np.any(saved_state[-1] != 0)  # the last velocity moved
