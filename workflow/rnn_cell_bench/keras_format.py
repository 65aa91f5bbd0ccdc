"""Write a trained model as a Keras ``.keras`` file without importing Keras or TensorFlow.

A ``.keras`` file is a zip archive of ``config.json`` (the model's and the compiled optimizer's
configuration), ``metadata.json`` and ``model.weights.h5`` (every variable, by layer path). For
the two models of this project the configuration is small and fixed, so it is written here, the
way Keras 3 writes it; the fused engine then never pays TensorFlow's import (seconds and hundreds
of MB per job). A test saves the same model with Keras and checks that both files hold the same
configuration and that Keras loads ours (in safe mode) with the same weights and optimizer state.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from rnn_cell_bench.cells import cell_spec

_NONE_INITIALIZER_CONFIG = {"seed": None, "input_axes": None, "output_axes": None}
# Keras' class for each initializer name the config accepts.
INITIALIZER_CLASSES = {
    "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal",
    "he_uniform": "HeUniform",
    "he_normal": "HeNormal",
    "lecun_uniform": "LecunUniform",
    "lecun_normal": "LecunNormal",
    "orthogonal": "Orthogonal",
    "zeros": "Zeros",
}
DEFAULT_LAYER = {"kernel_initializer": "glorot_uniform", "recurrent_initializer": "orthogonal"}


def _object(module: str, class_name: str, config: dict) -> dict:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def _dtype() -> dict:
    return _object("keras", "DTypePolicy", {"name": "float32"})


def _initializer(name: str) -> dict:
    class_name = INITIALIZER_CLASSES[name]
    config = {"Orthogonal": {"seed": None, "gain": 1.0}, "Zeros": {}}.get(
        class_name, _NONE_INITIALIZER_CONFIG
    )
    return _object("keras.initializers", class_name, dict(config))


def _tensor(shape: list, layer: str) -> dict:
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": shape, "dtype": "float32", "keras_history": [layer, 0, 0]},
    }


def _recurrent_config(cell: str, units: int, layer: dict) -> dict:
    """The layer's config in Keras' key order; ``layer``: its initializers and options
    (:func:`rnn_cell_bench.models.layer_settings`)."""
    spec = cell_spec(cell)
    config = {
        "name": cell,
        "trainable": True,
        "dtype": _dtype(),
        "return_sequences": True,
        "return_state": False,
        "go_backwards": False,
        "stateful": False,
        "unroll": False,
        "zero_output_for_mask": False,
        "units": units,
        "activation": "tanh",
    }
    if spec.recurrent_activation:
        config["recurrent_activation"] = "sigmoid"
    config.update(
        {
            "use_bias": True,
            "kernel_initializer": _initializer(layer["kernel_initializer"]),
            "recurrent_initializer": _initializer(layer["recurrent_initializer"]),
            "bias_initializer": _initializer("zeros"),
        }
    )
    if spec.forget_bias:
        config["unit_forget_bias"] = bool(layer.get("unit_forget_bias", True))
    config.update(
        {
            "kernel_regularizer": None,
            "recurrent_regularizer": None,
            "bias_regularizer": None,
            "activity_regularizer": None,
            "kernel_constraint": None,
            "recurrent_constraint": None,
            "bias_constraint": None,
            "dropout": 0.0,
            "recurrent_dropout": 0.0,
        }
    )
    for key, value in spec.layer_options:  # e.g. the GRU's reset_after
        config[key] = value
    if spec.recurrent_activation:  # SimpleRNN's config has no seed
        config["seed"] = None
    return config


def optimizer_config(learning_rate: float, clipnorm: float, clip: str) -> dict:
    """Keras' serialization of the run's Adam optimizer."""
    return _object(
        "keras.optimizers",
        "Adam",
        {
            "name": "adam",
            "learning_rate": float(np.float32(learning_rate)),
            "weight_decay": None,
            "clipnorm": clipnorm if clip == "per_variable" else None,
            "global_clipnorm": clipnorm if clip == "global" else None,
            "clipvalue": None,
            "use_ema": False,
            "ema_momentum": 0.99,
            "ema_overwrite_frequency": None,
            "loss_scale_factor": None,
            "gradient_accumulation_steps": None,
            "beta_1": 0.9,
            "beta_2": 0.999,
            "epsilon": 1e-07,
            "amsgrad": False,
        },
    )


def model_config(
    cell: str, units: int, input_dim: int, optimizer: dict, layer: dict | None = None
) -> dict:
    """``config.json`` of the compiled model (see :func:`rnn_cell_bench.models.build_model`);
    ``layer``: the recurrent layer's initializers and options (the defaults without)."""
    layer = {**DEFAULT_LAYER, **(layer or {})}
    input_shape, hidden_shape = [None, None, input_dim], [None, None, units]
    layers = [
        {
            **_object(
                "keras.layers",
                "InputLayer",
                {
                    "batch_shape": input_shape,
                    "dtype": "float32",
                    "sparse": False,
                    "ragged": False,
                    "name": "series",
                    "optional": False,
                },
            ),
            "name": "series",
            "inbound_nodes": [],
        },
        {
            **_object(
                "keras.layers", cell_spec(cell).keras_class, _recurrent_config(cell, units, layer)
            ),
            "build_config": {"input_shape": input_shape},
            "name": cell,
            "inbound_nodes": [
                {
                    "args": [_tensor(input_shape, "series")],
                    "kwargs": {"training": False, "mask": None},
                }
            ],
        },
        {
            **_object(
                "keras.layers",
                "Dense",
                {
                    "name": "readout",
                    "trainable": True,
                    "dtype": _dtype(),
                    "units": 1,
                    "activation": "linear",
                    "use_bias": True,
                    "kernel_initializer": _initializer("glorot_uniform"),
                    "bias_initializer": _initializer("zeros"),
                    "kernel_regularizer": None,
                    "bias_regularizer": None,
                    "kernel_constraint": None,
                    "bias_constraint": None,
                    "quantization_config": None,
                },
            ),
            "build_config": {"input_shape": hidden_shape},
            "name": "readout",
            "inbound_nodes": [{"args": [_tensor(hidden_shape, cell)], "kwargs": {}}],
        },
    ]
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": f"{cell}_{units}",
            "trainable": True,
            "layers": layers,
            "input_layers": ["series", 0, 0],
            "output_layers": ["readout", 0, 0],
        },
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
        "compile_config": {
            "optimizer": optimizer,
            "loss": "mse",
            "loss_weights": None,
            "metrics": None,
            "weighted_metrics": None,
            "run_eagerly": False,
            "steps_per_execution": 1,
            "jit_compile": False,
        },
    }


def _weights_file(cell: str, units: int, weights, optimizer_state) -> bytes:
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:

        def variables(path: str, name: str, arrays) -> None:
            group = h5.create_group(f"{path}/vars" if path else "vars")
            group.attrs["name"] = name
            for i, array in enumerate(arrays):
                group.create_dataset(str(i), data=array)

        kernel, recurrent, bias, dense_kernel, dense_bias = (
            np.asarray(w, dtype=np.float32) for w in weights
        )
        path = cell_spec(cell).keras_path
        variables("layers/dense", "readout", [dense_kernel, dense_bias])
        variables(f"layers/{path}/cell", f"{path}_cell", [kernel, recurrent, bias])
        variables(f"layers/{path}", cell, [])
        variables("layers/input_layer", "series", [])
        state = [np.asarray(optimizer_state[0], dtype=np.int64)]
        state += [np.asarray(v, dtype=np.float32) for v in optimizer_state[1:]]
        variables("optimizer", "adam", state)
        variables("", f"{cell}_{units}", [])
    return buffer.getvalue()


def write_model(
    path,
    cell: str,
    weights: list,
    optimizer_state: list,
    learning_rate: float,
    clipnorm: float,
    clip: str,
    input_dim: int = 1,
    layer: dict | None = None,
) -> None:
    """Write ``path`` (a ``.keras`` file) atomically. ``optimizer_state`` is in the order of
    Keras' ``optimizer.variables``: iteration, learning rate, then momentum and velocity of
    each weight in turn. ``layer``: the recurrent layer's initializers and options, as the run
    used them (:func:`rnn_cell_bench.models.layer_settings`)."""
    units = np.asarray(weights[1]).shape[0]
    width = cell_spec(cell).width
    if np.asarray(weights[1]).shape[1] != width * units or len(optimizer_state) != 12:
        raise ValueError(f"weights or optimizer state do not have the {cell} layout")
    optimizer = optimizer_config(learning_rate, clipnorm, clip)
    config = model_config(cell, units, input_dim, optimizer, layer)
    metadata = {
        "keras_version": importlib.metadata.version("keras"),
        "date_saved": dt.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    }
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", _weights_file(cell, units, weights, optimizer_state))
    os.replace(tmp, path)
