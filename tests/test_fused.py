"""The fused CPU engine against the Keras reference, from identical initial weights."""

from __future__ import annotations

import keras
import numba
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import yaml
from conftest import copy_project, snakemake

from rnn_cell_bench import fused
from rnn_cell_bench.data import DataSettings, make_arrays
from rnn_cell_bench.fused import FusedAdam, heldout_loss, loss_and_gradients
from rnn_cell_bench.models import build_model, initial_weights, save_model
from rnn_cell_bench.runtime import make_optimizer
from rnn_cell_bench.settings import TrainSettings
from rnn_cell_bench.training import train

DATA = DataSettings(n_sequences=6, n_steps=400, periods=(40.0, 110.0), horizon=20)
CELLS = ["lstm", "gru", "rnn"]


@pytest.fixture(scope="module")
def arrays():
    inputs, targets, _, _ = make_arrays(DATA)
    return inputs, targets


def with_features(inputs: np.ndarray, input_dim: int, seed: int = 0) -> np.ndarray:
    """``inputs`` (n, steps, 1) with ``input_dim - 1`` more channels: a copy lagged by 7 steps,
    then Gaussian noise."""
    channels = [inputs]
    if input_dim > 1:
        channels.append(np.concatenate([np.zeros_like(inputs[:, :7]), inputs[:, :-7]], axis=1))
    rng = np.random.default_rng(seed)
    channels += [rng.normal(size=inputs.shape) for _ in range(input_dim - 2)]
    return np.concatenate(channels, axis=2).astype(np.float32)


@pytest.fixture(scope="module", params=[1, 3], ids=["1-feature", "3-features"])
def feature_arrays(request, arrays):
    inputs, targets = arrays
    return with_features(inputs, request.param), targets


def random_arrays(batch: int, steps: int, input_dim: int, seed: int):
    """Inputs and targets (a smooth function of the inputs) of any shape."""
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(batch, steps, input_dim)).astype(np.float32)
    targets = np.sin(np.cumsum(inputs.sum(axis=2, keepdims=True), axis=1) * 0.3)
    return inputs, targets.astype(np.float32)


def squared_error_mean(predictions, targets, start: int) -> float:
    errors = np.asarray(predictions, dtype=np.float64) - targets
    return float(np.mean(errors[:, start:] ** 2))


def keras_loss_and_gradients(model, inputs, targets):
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(targets, model(inputs))
    grads = tape.gradient(loss, model.trainable_weights)
    return float(loss), [g.numpy() for g in grads]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_of_every_tensor_match_keras(feature_arrays, cell, seed):
    arrays = feature_arrays
    model = build_model(cell, units=16, seed=seed, input_dim=arrays[0].shape[-1])
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
def test_twenty_epochs_of_losses_match_keras(feature_arrays, cell, clip):
    # A small clipnorm, so that clipping is active throughout.
    settings = dict(epochs=20, learning_rate=0.01, clipnorm=0.05, clip=clip)
    results = {
        engine: train(*feature_arrays, cell, 3, TrainSettings(**settings, engine=engine), log=print)
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


@pytest.mark.parametrize("cell", CELLS)
def test_heldout_loss_matches_keras(arrays, cell):
    """Three features; the held-out set is shorter than the training set, and its predictions
    count from step 0 or from a later ``start`` (the model reads the steps before)."""
    inputs, targets = with_features(arrays[0], 3), arrays[1]
    model = build_model(cell, units=16, seed=2, input_dim=3)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(inputs, targets, batch_size=len(inputs), epochs=3, verbose=0, shuffle=False)
    held_inputs, held_targets = with_features(arrays[0][:, 90:], 3, seed=1), arrays[1][:, 90:]
    predictions = model(held_inputs)
    for start in (0, 150):
        expected = squared_error_mean(predictions, held_targets, start)
        got = heldout_loss(cell, held_inputs, held_targets, model.get_weights(), start=start)
        assert isinstance(got, float)
        assert got == pytest.approx(expected, rel=1e-5), start


def initial_weights_for(cell: str, input_dim: int):
    """7 units: a remainder after every tile of the kernels' loops."""
    return initial_weights(cell, 7, seed=4, input_dim=input_dim)


@pytest.mark.parametrize("cell", CELLS)
def test_heldout_loss_has_the_same_bits_at_any_thread_count(cell):
    inputs, targets = random_arrays(19, 130, 3, seed=5)  # three blocks, the last padded
    weights = initial_weights_for(cell, 3)
    threads = numba.get_num_threads()
    try:
        losses = {}
        for count in (1, 2):
            numba.set_num_threads(count)
            losses[count] = [heldout_loss(cell, inputs, targets, weights, s) for s in (0, 37)]
    finally:
        numba.set_num_threads(threads)
    assert np.array(losses[1]).tobytes() == np.array(losses[2]).tobytes()
    assert losses[1][0] != losses[1][1]


@pytest.mark.parametrize("cell", CELLS)
def test_alternating_training_and_heldout_shapes_reuse_workspaces_and_bits(cell):
    """A run computes the held-out loss every few epochs: both shapes keep their workspaces
    (none is allocated again), and the results are the bits of calls on fresh workspaces."""
    train_arrays, held_arrays = random_arrays(19, 120, 3, seed=6), random_arrays(11, 75, 3, 7)

    def run(fresh: bool):
        weights = initial_weights_for(cell, 3)
        adam = FusedAdam([w.shape for w in weights], 0.01, 1.0, "global")
        fused._WORKSPACES.clear()
        results, workspaces = [], []
        for _ in range(3):
            if fresh:
                fused._WORKSPACES.clear()
            loss, grads = loss_and_gradients(cell, *train_arrays, weights)
            if fresh:
                fused._WORKSPACES.clear()
            held = heldout_loss(cell, *held_arrays, weights, start=5)
            adam.apply(grads, weights)
            results += [np.array([loss, held]), *grads, *weights]
            workspaces.append({k: [id(w) for w in v] for k, v in fused._WORKSPACES.items()})
        return results, workspaces

    reused, workspaces = run(fresh=False)
    assert len(workspaces[0]) == 2  # the training and the held-out shape, side by side
    assert workspaces[0] == workspaces[1] == workspaces[2]  # the same arrays every epoch
    fresh, _ = run(fresh=True)
    for got, want in zip(reused, fresh, strict=True):
        assert got.tobytes() == want.tobytes()


def test_workspaces_of_at_most_a_few_shapes_are_kept():
    weights = initial_weights_for("lstm", 2)
    for steps in range(10, 16):
        heldout_loss("lstm", *random_arrays(3, steps, 2, seed=steps), weights)
        assert len(fused._WORKSPACES) <= fused.KEPT_SHAPES
    assert [key[1] for key in fused._WORKSPACES][-1] == 15  # the latest shape is kept


def test_heldout_loss_rejects_a_start_outside_the_sequences_and_bad_shapes():
    inputs, targets = random_arrays(3, 20, 3, seed=8)
    weights = initial_weights_for("gru", 3)
    for start in (-1, 20, 25):
        with pytest.raises(ValueError, match=r"0 <= start < 20"):
            heldout_loss("gru", inputs, targets, weights, start=start)
    with pytest.raises(ValueError, match="integer"):
        heldout_loss("gru", inputs, targets, weights, start=1.5)
    assert heldout_loss("gru", inputs, targets, weights, start=19) > 0
    with pytest.raises(ValueError, match="input_dim"):
        heldout_loss("gru", inputs[..., :2], targets, weights)
    with pytest.raises(ValueError, match="targets"):
        loss_and_gradients("gru", inputs, targets[:, :10], weights)


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
