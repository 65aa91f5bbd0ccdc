"""The models compared: one recurrent layer (a cell of :mod:`rnn_cell_bench.cells`: LSTM, GRU
or a plain tanh RNN) and a linear read-out.

The cells use today's Keras defaults, which match the original ``CuDNNLSTM``/``CuDNNGRU``:
tanh/sigmoid activations, ``glorot_uniform`` kernel, ``orthogonal`` recurrent kernel, zero bias,
``unit_forget_bias=True`` and, for the GRU, ``reset_after=True``. Those are exactly the settings
under which Keras dispatches to the cuDNN kernels when a GPU is visible.

Initial weights are drawn here, in numpy, with Keras' formulas: both engines start from them,
and the fused engine never needs TensorFlow to get them. Every tensor has its own random stream,
a child of ``numpy.random.SeedSequence(seed)``, so no two runs or tensors share draws (Keras'
stateless initializers with equal integer seeds do: seeds ``s`` and ``s + 2`` would overlap).
"""

from __future__ import annotations

import math

import numpy as np

from rnn_cell_bench.cells import CELLS as CELL_SPECS
from rnn_cell_bench.cells import NAMES, CustomCell, cell_spec

CELLS = NAMES  # every cell's name, in the fixed order of rnn_cell_bench.cells
GATES = {name: spec.width for name, spec in CELL_SPECS.items()}
# The tensors of a model in Keras order; each draws from its own SeedSequence child.
TENSORS = ("kernel", "recurrent_kernel", "bias", "readout_kernel", "readout_bias")
DEFAULT_KERNEL_INITIALIZER = "glorot_uniform"
DEFAULT_RECURRENT_INITIALIZER = "orthogonal"
# Keras' VarianceScaling family: name -> (scale, fan mode, distribution).
VARIANCE_SCALING = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}
INITIALIZERS = (*VARIANCE_SCALING, "orthogonal")


def expected_params(cell: str, units: int, input_dim: int = 1) -> dict[str, int]:
    """Trainable parameter counts in the Keras 3 layout (recurrent layer and Dense read-out)."""
    return cell_spec(cell).params(units, input_dim)


def initialize(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A float32 tensor drawn like Keras' initializer ``name`` (same distribution and scale)."""
    if name == "orthogonal":
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))  # makes Q uniform over the orthogonal group
        if rows < cols:
            q = q.T
        return q.reshape(shape).astype(np.float32)
    if name not in VARIANCE_SCALING:
        raise ValueError(f"unknown initializer {name!r}; known: {', '.join(INITIALIZERS)}")
    scale, mode, distribution = VARIANCE_SCALING[name]
    fan_in, fan_out = math.prod(shape[:-1]), shape[-1]
    fan = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}[mode]
    if distribution == "uniform":
        limit = math.sqrt(3.0 * scale / fan)
        return rng.uniform(-limit, limit, shape).astype(np.float32)
    # Keras' truncated normal: within two standard deviations, rescaled to the target std.
    std = math.sqrt(scale / fan) / 0.87962566103423978
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return (values * std).astype(np.float32)


def initial_weights(
    cell: str,
    units: int,
    seed: int,
    input_dim: int = 1,
    kernel_initializer: str = DEFAULT_KERNEL_INITIALIZER,
    recurrent_initializer: str = DEFAULT_RECURRENT_INITIALIZER,
    unit_forget_bias: bool = True,
) -> list[np.ndarray]:
    """The initial tensors in Keras order (kernel, recurrent kernel, bias, read-out kernel and
    bias), depending only on the arguments. Biases start at zero, the LSTM forget gate's at 1
    with ``unit_forget_bias``; the read-out kernel is ``glorot_uniform`` as in Keras' Dense."""
    spec = cell_spec(cell)
    gates = spec.width * units
    streams = dict(zip(TENSORS, np.random.SeedSequence(seed).spawn(len(TENSORS)), strict=True))

    def draw(tensor: str, name: str, shape: tuple[int, ...]) -> np.ndarray:
        return initialize(name, shape, np.random.default_rng(streams[tensor]))

    kernel = draw("kernel", kernel_initializer, (input_dim, gates))
    recurrent = draw("recurrent_kernel", recurrent_initializer, (units, gates))
    bias = np.zeros(spec.bias_shape(units), dtype=np.float32)  # GRU: input and recurrent bias
    if spec.forget_bias and unit_forget_bias:
        bias[units : 2 * units] = 1.0  # the forget gate, second in Keras' order
    readout = draw("readout_kernel", "glorot_uniform", (units, 1))
    return [kernel, recurrent, bias, readout, np.zeros(1, dtype=np.float32)]


def layer_settings(
    cell: str,
    kernel_initializer: str = DEFAULT_KERNEL_INITIALIZER,
    recurrent_initializer: str = DEFAULT_RECURRENT_INITIALIZER,
    unit_forget_bias: bool | None = True,
) -> dict:
    """The recurrent layer's keyword arguments besides ``units``: the initializers the run's
    weights were drawn with (so a saved model says what the run used) and the cell's options."""
    spec = cell_spec(cell)
    settings = {
        "kernel_initializer": kernel_initializer,
        "recurrent_initializer": recurrent_initializer,
        **dict(spec.layer_options),
    }
    if spec.forget_bias:
        settings["unit_forget_bias"] = bool(unit_forget_bias)
    return settings


def keras_model(cell: str, units: int, input_dim: int = 1, cell_class: str | None = None, **init):
    """The Keras model, untrained: set its weights (e.g. :func:`initial_weights`). ``init``:
    the initializer options of :func:`layer_settings`, recorded in the layer's config. With
    ``cell_class`` ("module:Class", a user's cell) the layer is ``keras.layers.RNN`` around
    that cell, built with ``units`` and the initializers its constructor names."""
    import keras

    if cell_class is not None:
        custom = CustomCell(cell, cell_class)
        cls = custom.load()
        init.pop("unit_forget_bias", None)
        rnn_cell = cls(**custom.arguments(cls, units, init))
        recurrent = keras.layers.RNN(rnn_cell, return_sequences=True, name=cell)
    else:
        spec = cell_spec(cell)
        layer_class = getattr(keras.layers, spec.keras_class)
        options = layer_settings(cell, **init)
        recurrent = layer_class(units, return_sequences=True, name=cell, **options)
    readout = keras.layers.Dense(1, name="readout")
    inputs = keras.Input(shape=(None, input_dim), name="series")
    return keras.Model(inputs, readout(recurrent(inputs)), name=f"{cell}_{units}")


def custom_initial_weights(
    cell: str, cell_class: str, units: int, seed: int, input_dim: int = 1, **init
) -> list[np.ndarray]:
    """A user's cell's initial tensors (Keras order, the read-out's last), drawn by Keras'
    own initializers, which only the cell knows. Keras is seeded from a child of
    ``SeedSequence(seed)``, so runs of different seeds draw from unrelated streams and the
    same seed draws the same tensors."""
    from rnn_cell_bench.runtime import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
    model = keras_model(cell, units, input_dim, cell_class=cell_class, **init)
    return [np.array(w, dtype=np.float32) for w in model.get_weights()]


def build_model(cell: str, units: int, seed: int, input_dim: int = 1, **init):
    """The Keras model, holding :func:`initial_weights` for ``seed`` (``init``: the
    initializer options of :func:`initial_weights`)."""
    model = keras_model(cell, units, input_dim, **init)
    model.set_weights(initial_weights(cell, units, seed, input_dim, **init))
    return model


def save_model(path, cell: str, weights, optimizer_state, settings, input_dim: int = 1) -> None:
    """Save a trained model in Keras format with its Adam state (in the order of Keras'
    ``optimizer.variables``), without importing Keras (see :mod:`rnn_cell_bench.keras_format`).
    ``settings`` is the run's :class:`~rnn_cell_bench.settings.TrainSettings`. A user's cell
    (``settings.cell_class``) is saved by Keras itself, which alone knows its layer config."""
    if settings.cell_class is not None:
        from rnn_cell_bench.runtime import make_optimizer

        save_keras_native(
            path,
            cell,
            weights,
            make_optimizer(settings),
            optimizer_state,
            input_dim,
            units=settings.units,
            cell_class=settings.cell_class,
            kernel_initializer=settings.kernel_initializer,
            recurrent_initializer=settings.recurrent_initializer,
        )
        return
    from rnn_cell_bench.keras_format import write_model

    write_model(
        path,
        cell,
        weights,
        optimizer_state,
        settings.learning_rate,
        settings.clipnorm,
        settings.clip,
        input_dim=input_dim,
        layer=layer_settings(
            cell,
            settings.kernel_initializer,
            settings.recurrent_initializer,
            settings.unit_forget_bias,
        ),
    )


def save_keras_native(
    path, cell: str, weights, optimizer, optimizer_state, input_dim=1, units=None, **init
) -> None:
    """The same file, written by Keras itself (``optimizer``: a Keras optimizer; ``init``: the
    initializer options of :func:`layer_settings`, or ``cell_class`` for a user's cell); the
    reference the tests hold :func:`save_model` to, and how a user's cell's run is saved."""
    units = np.asarray(weights[1]).shape[0] if units is None else units
    model = keras_model(cell, units, input_dim, **init)
    model.set_weights(weights)
    model.compile(optimizer=optimizer, loss="mse")
    optimizer.build(model.trainable_variables)
    for variable, value in zip(optimizer.variables, optimizer_state, strict=True):
        variable.assign(value)
    model.save(path)


def cudnn_eligible(layer) -> bool:
    """Whether Keras would run ``layer`` on the cuDNN kernel when a GPU is visible.

    Mirrors the checks in Keras' TensorFlow backend (``cudnn_ok``) and the layer's own
    conditions (no recurrent dropout, ``use_cudnn`` not disabled).
    """
    import keras

    activation_ok = layer.activation in (keras.activations.tanh, keras.ops.tanh)
    recurrent_ok = layer.recurrent_activation in (keras.activations.sigmoid, keras.ops.sigmoid)
    cell = layer.cell
    eligible = (
        activation_ok
        and recurrent_ok
        and not layer.unroll
        and cell.use_bias
        and not cell.recurrent_dropout
        and layer.use_cudnn in ("auto", True)
    )
    if isinstance(layer, keras.layers.GRU):
        eligible = eligible and cell.reset_after
    return bool(eligible)
