"""The two models compared: one recurrent layer (LSTM or GRU) and a linear read-out.

The cells use today's Keras defaults, which match the original ``CuDNNLSTM``/``CuDNNGRU``:
tanh/sigmoid activations, ``glorot_uniform`` kernel, ``orthogonal`` recurrent kernel, zero bias,
``unit_forget_bias=True`` and, for the GRU, ``reset_after=True``. Those are exactly the settings
under which Keras dispatches to the cuDNN kernels when a GPU is visible.
"""

from __future__ import annotations

CELLS = ("lstm", "gru")
GATES = {"lstm": 4, "gru": 3}


def expected_params(cell: str, units: int, input_dim: int = 1) -> dict[str, int]:
    """Trainable parameter counts in the Keras 3 layout (recurrent layer and Dense read-out)."""
    if cell == "lstm":
        recurrent = 4 * (units * input_dim + units * units + units)
    elif cell == "gru":  # reset_after keeps two bias vectors
        recurrent = 3 * (units * input_dim + units * units + 2 * units)
    else:
        raise ValueError(f"unknown cell {cell!r}; known cells: {', '.join(CELLS)}")
    return {"recurrent": recurrent, "dense": units + 1, "total": recurrent + units + 1}


def build_model(cell: str, units: int, seed: int, input_dim: int = 1):
    """Build the model with initial weights drawn from ``seed`` (and only from it)."""
    import keras

    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; known cells: {', '.join(CELLS)}")
    layer_class = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    # Seeded initializers, so the weights do not depend on how many draws came before.
    recurrent = layer_class(
        units,
        return_sequences=True,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 1),
        name=cell,
    )
    readout = keras.layers.Dense(
        1, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2), name="readout"
    )
    inputs = keras.Input(shape=(None, input_dim), name="series")
    model = keras.Model(inputs, readout(recurrent(inputs)), name=f"{cell}_{units}")
    return model


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
