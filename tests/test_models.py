"""The two models: parameter counts, the original's defaults, cuDNN eligibility."""

from __future__ import annotations

import importlib

import keras
import numpy as np
import pytest

from rnn_cell_bench.models import (
    INITIALIZERS,
    build_model,
    cudnn_eligible,
    expected_params,
    initial_weights,
    initialize,
)

# The module, not the same-named function that keras.src.backend.tensorflow exports.
keras_tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")


@pytest.mark.parametrize(("cell", "recurrent"), [("lstm", 1152), ("gru", 912), ("rnn", 288)])
def test_parameter_counts(cell, recurrent):
    model = build_model(cell, units=16, seed=0)
    counts = {w.path.split("/")[0]: 0 for w in model.trainable_weights}
    for weight in model.trainable_weights:
        counts[weight.path.split("/")[0]] += int(np.prod(weight.shape))
    assert counts == {cell: recurrent, "readout": 17}
    assert expected_params(cell, 16) == {
        "recurrent": recurrent,
        "dense": 17,
        "total": recurrent + 17,
    }


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cells_keep_the_cudnn_defaults(cell):
    layer = build_model(cell, units=16, seed=0).get_layer(cell)
    assert layer.return_sequences
    assert layer.activation is keras.activations.tanh
    assert layer.recurrent_activation is keras.activations.sigmoid
    assert isinstance(layer.cell.kernel_initializer, keras.initializers.GlorotUniform)
    assert isinstance(layer.cell.recurrent_initializer, keras.initializers.Orthogonal)
    assert layer.cell.bias_initializer.__class__.__name__ == "Zeros"
    if cell == "lstm":
        assert layer.cell.unit_forget_bias
        bias = layer.cell.bias.numpy()
        np.testing.assert_array_equal(bias[16:32], 1.0)  # forget gate
        np.testing.assert_array_equal(np.delete(bias, np.s_[16:32]), 0.0)
    else:
        assert layer.cell.reset_after


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cells_are_cudnn_eligible(cell):
    layer = build_model(cell, units=16, seed=0).get_layer(cell)
    assert cudnn_eligible(layer)
    # Cross-check with the conditions in Keras' own TensorFlow back end.
    arguments = dict(
        activation=layer.activation,
        recurrent_activation=layer.recurrent_activation,
        unroll=layer.unroll,
        use_bias=layer.cell.use_bias,
    )
    if cell == "gru":
        assert keras_tf_rnn._do_gru_arguments_support_cudnn(
            reset_after=layer.cell.reset_after, **arguments
        )
    else:
        assert keras_tf_rnn._do_lstm_arguments_support_cudnn(**arguments)


def test_eligibility_check_rejects_non_cudnn_settings():
    assert not cudnn_eligible(keras.layers.GRU(4, reset_after=False))
    assert not cudnn_eligible(keras.layers.LSTM(4, activation="relu"))
    assert not cudnn_eligible(keras.layers.LSTM(4, recurrent_dropout=0.1))
    assert not cudnn_eligible(keras.layers.LSTM(4, unroll=True))


def test_initial_weights_depend_only_on_the_seed():
    first = build_model("gru", 16, seed=3).get_weights()
    keras.utils.set_random_seed(99)  # global RNG state must not matter
    second = build_model("gru", 16, seed=3).get_weights()
    other = build_model("gru", 16, seed=4).get_weights()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_unknown_cell_is_refused():
    with pytest.raises(ValueError, match="unknown cell 'vanilla'; known cells: lstm, gru, rnn"):
        build_model("vanilla", 16, seed=0)


def test_the_plain_rnn_is_keras_simple_rnn_with_the_same_initializers():
    layer = build_model("rnn", units=16, seed=0).get_layer("rnn")
    assert isinstance(layer, keras.layers.SimpleRNN) and layer.return_sequences
    assert layer.activation is keras.activations.tanh
    assert isinstance(layer.cell.kernel_initializer, keras.initializers.GlorotUniform)
    assert isinstance(layer.cell.recurrent_initializer, keras.initializers.Orthogonal)
    np.testing.assert_array_equal(layer.cell.bias.numpy(), 0.0)
    assert expected_params("rnn", 16)["total"] == 305


def test_a_model_records_the_initializers_its_weights_were_drawn_with():
    init = {"kernel_initializer": "he_normal", "recurrent_initializer": "lecun_uniform"}
    for cell in ("lstm", "gru", "rnn"):
        layer = build_model(cell, 8, seed=0, unit_forget_bias=False, **init).get_layer(cell)
        assert isinstance(layer.cell.kernel_initializer, keras.initializers.HeNormal), cell
        assert isinstance(layer.cell.recurrent_initializer, keras.initializers.LecunUniform)
    lstm = build_model("lstm", 8, seed=0, unit_forget_bias=False).get_layer("lstm")
    assert not lstm.cell.unit_forget_bias
    np.testing.assert_array_equal(lstm.cell.bias.numpy(), 0.0)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_no_initial_tensor_is_a_rescaled_copy_of_another(cell):
    """Seeds are independent replicates: across seeds 0..9 and every tensor of every run, no
    random tensor is correlated with another over their shared prefix."""
    tensors = [
        (f"seed {seed} tensor {i}", w.ravel().astype(float))
        for seed in range(10)
        for i, w in enumerate(initial_weights(cell, 16, seed))
        if i in (0, 1, 3)  # the random ones (biases are constants)
    ]
    for a in range(len(tensors)):
        for b in range(a + 1, len(tensors)):
            (name_a, x), (name_b, y) = tensors[a], tensors[b]
            n = min(len(x), len(y))
            correlation = np.corrcoef(x[:n], y[:n])[0, 1]
            assert abs(correlation) < 0.9, (name_a, name_b, correlation)


@pytest.mark.parametrize("name", INITIALIZERS)
def test_initializers_follow_the_keras_distribution(name):
    """Each initializer has the scale of Keras' initializer of that name (same formulas, own
    random stream): compare moments over a large tensor."""
    shape = (64, 256)
    ours = initialize(name, shape, np.random.default_rng(0))
    theirs = keras.initializers.get(name)(shape, dtype="float32").numpy()
    assert ours.dtype == np.float32 and ours.shape == shape
    assert ours.std() == pytest.approx(theirs.std(), rel=0.03)
    if name == "orthogonal":
        np.testing.assert_allclose(ours @ ours.T, np.eye(64), atol=1e-5)
    else:  # uniform limits and the truncation at two standard deviations
        assert np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=0.02)


def test_keras_model_holds_the_initial_weights():
    model = build_model("lstm", 8, seed=5)
    for got, want in zip(model.get_weights(), initial_weights("lstm", 8, 5), strict=True):
        np.testing.assert_array_equal(got, want)
