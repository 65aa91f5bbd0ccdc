"""Models written without Keras load in Keras exactly as if Keras had saved them."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from conftest import REPO

from rnn_cell_bench.engines import FusedEngine
from rnn_cell_bench.keras_format import write_model
from rnn_cell_bench.models import initial_weights, save_keras_native
from rnn_cell_bench.runtime import make_optimizer, nvidia_devices_present
from rnn_cell_bench.settings import TrainSettings


def without_object_ids(value):
    """Keras numbers objects it shares between layers; the numbers mean nothing on load."""
    if isinstance(value, dict):
        return {k: without_object_ids(v) for k, v in value.items() if k != "shared_object_id"}
    if isinstance(value, list):
        return [without_object_ids(v) for v in value]
    return value


def trained(cell: str, units: int, settings: TrainSettings):
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(3, 20, 1)).astype(np.float32)
    engine = FusedEngine(cell, settings, inputs, inputs, initial_weights(cell, units, 1))
    for _ in range(3):
        engine.run_epoch()
    return engine.snapshot()


@pytest.mark.parametrize("clip", ["global", "per_variable"])
@pytest.mark.parametrize(("cell", "units"), [("lstm", 16), ("gru", 16), ("gru", 5)])
def test_our_file_is_keras_own_file(tmp_path, cell, units, clip):
    settings = TrainSettings(units=units, learning_rate=0.002, clipnorm=0.5, clip=clip)
    weights, state = trained(cell, units, settings)
    ours, theirs = tmp_path / "ours.keras", tmp_path / "theirs.keras"
    write_model(ours, cell, weights, state, 0.002, 0.5, clip)
    keras.backend.clear_session()  # else Keras names this process's second optimizer adam_1
    save_keras_native(theirs, cell, weights, make_optimizer(settings), state)

    def config(path):
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))

    assert without_object_ids(config(ours)) == without_object_ids(config(theirs))
    loaded = keras.saving.load_model(ours, safe_mode=True)
    reference = keras.saving.load_model(theirs, safe_mode=True)
    for got, want in zip(loaded.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(loaded.optimizer.variables, reference.optimizer.variables, strict=True):
        assert got.path == want.path
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert int(loaded.optimizer.iterations.numpy()) == 3
    x = np.linspace(-1, 1, 30, dtype=np.float32).reshape(1, 30, 1)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), reference.predict(x, verbose=0))


def adam_state(weights, rng):
    """An Adam state in Keras' order (iteration, learning rate, moments per weight)."""
    state = [np.array(3, dtype=np.int64), np.float32(0.002)]
    for w in weights:
        state += [rng.normal(size=w.shape).astype(np.float32) for _ in range(2)]
    return state


@pytest.mark.parametrize(
    ("cell", "init"),
    [
        ("rnn", {}),
        ("rnn", {"kernel_initializer": "orthogonal", "recurrent_initializer": "he_uniform"}),
        ("lstm", {"kernel_initializer": "he_normal", "unit_forget_bias": False}),
        ("gru", {"kernel_initializer": "glorot_normal", "recurrent_initializer": "lecun_normal"}),
    ],
)
def test_our_file_records_the_cell_and_the_initializers_the_run_used(tmp_path, cell, init):
    """Every cell, and a run with other initializers: the saved config says what the run used
    (it once said glorot_uniform, orthogonal and unit_forget_bias: true whatever the run)."""
    from rnn_cell_bench.models import layer_settings

    rng = np.random.default_rng(1)
    weights = initial_weights(cell, 6, 2, input_dim=3, **init)
    state = adam_state(weights, rng)
    settings = TrainSettings(units=6, learning_rate=0.002, clipnorm=0.5, **init)
    ours, theirs = tmp_path / "ours.keras", tmp_path / "theirs.keras"
    layer = layer_settings(cell, **init)
    write_model(ours, cell, weights, state, 0.002, 0.5, "global", input_dim=3, layer=layer)
    keras.backend.clear_session()
    save_keras_native(theirs, cell, weights, make_optimizer(settings), state, 3, **init)

    def config(path):
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))

    assert without_object_ids(config(ours)) == without_object_ids(config(theirs))
    loaded = keras.saving.load_model(ours, safe_mode=True).get_layer(cell)
    expected = {**{"kernel_initializer": "glorot_uniform"}, **init}
    kernel = type(loaded.cell.kernel_initializer).__name__
    assert kernel.lower() == expected["kernel_initializer"].replace("_", "")
    if cell == "lstm":
        assert loaded.cell.unit_forget_bias is False
    for got, want in zip(keras.saving.load_model(ours).get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_wrong_layout_is_refused(tmp_path):
    weights, state = trained("gru", 4, TrainSettings(units=4))
    with pytest.raises(ValueError, match="lstm layout"):
        write_model(tmp_path / "m.keras", "lstm", weights, state, 0.001, 1.0, "global")


NO_TENSORFLOW = """
import sys
sys.path.insert(0, {workflow!r})
from rnn_cell_bench.data import DataSettings, make_arrays
from rnn_cell_bench.models import save_model
from rnn_cell_bench.provenance import run_record
from rnn_cell_bench.runtime import device_name, resolve_engine
from rnn_cell_bench.settings import TrainSettings
from rnn_cell_bench.training import train
inputs, targets, _, _ = make_arrays(DataSettings(n_sequences=2, n_steps=30, horizon=3))
settings = TrainSettings(units=4, epochs=2, engine=resolve_engine("fused"))
result = train(inputs, targets, "lstm", 0, settings, log=lambda line: None)
save_model(sys.argv[1], "lstm", result.weights, result.optimizer_state, settings)
run_record(result, "lstm", 0, settings, 1, {{}}, device_name())
print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""


def test_a_fused_run_never_imports_tensorflow(tmp_path):
    """TensorFlow's import is most of a small job's time and memory: the fused engine, its
    model file and its run record do without it (where no GPU exists)."""
    if nvidia_devices_present():
        pytest.skip("with a GPU present, device_name asks TensorFlow")
    script = NO_TENSORFLOW.format(workflow=str(REPO / "workflow"))
    output = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "m.keras")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert output.strip().splitlines()[-1] == "[]"
    assert keras.saving.load_model(tmp_path / "m.keras").get_layer("lstm").units == 4
