"""The two ways to compute a run, behind one small interface.

An engine holds a model's weights and its optimizer state and advances them one full-batch Adam
step per :meth:`Engine.run_epoch`. Both engines keep the optimizer state in the order Keras
lists its Adam variables (``iteration``, ``learning_rate``, then momentum and velocity of each
weight in turn), so a checkpoint or a saved model means the same whichever engine wrote it.

- :class:`KerasEngine`: ``model.train_on_batch`` on the whole data set (cuDNN on a GPU).
- :class:`FusedEngine`: the numba kernels of :mod:`rnn_cell_bench.fused`; no TensorFlow.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from rnn_cell_bench.settings import TrainSettings


class Engine(Protocol):
    name: str

    def run_epoch(self) -> float:
        """One optimizer step on the whole data set; returns the loss before the step (as
        Keras reports it). A non-finite loss leaves the weights as they were or poisons them,
        as the engine's framework does; the caller stops either way."""

    def snapshot(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Copies of the weights (Keras order) and the optimizer state (Keras order)."""

    def restore(self, weights: list[np.ndarray], optimizer_state: list[np.ndarray]) -> None:
        """Continue from a :meth:`snapshot` (of the same engine)."""

    def evaluate(self, inputs: np.ndarray, targets: np.ndarray, start: int) -> float:
        """The mean squared error of the current weights over every sequence and the steps
        from ``start`` on (the model reads each sequence from step 0): the held-out loss."""


class KerasEngine:
    name = "keras"

    def __init__(self, cell, settings: TrainSettings, inputs, targets, weights):
        from rnn_cell_bench.models import keras_model
        from rnn_cell_bench.runtime import import_tensorflow, make_optimizer

        tf = import_tensorflow()
        tf.config.experimental.enable_op_determinism()
        self.model = keras_model(
            cell,
            settings.units,
            input_dim=inputs.shape[-1],
            kernel_initializer=settings.kernel_initializer,
            recurrent_initializer=settings.recurrent_initializer,
            **(
                {"cell_class": settings.cell_class}
                if settings.cell_class is not None
                else {"unit_forget_bias": settings.unit_forget_bias}
            ),
        )
        self.model.set_weights(weights)
        self.model.compile(optimizer=make_optimizer(settings), loss="mse")
        self.model.optimizer.build(self.model.trainable_variables)
        self.inputs, self.targets = inputs, targets

    def run_epoch(self) -> float:
        return float(self.model.train_on_batch(self.inputs, self.targets))

    def snapshot(self):
        variables = self.model.optimizer.variables
        return self.model.get_weights(), [np.array(v.numpy()) for v in variables]

    def restore(self, weights, optimizer_state) -> None:
        self.model.set_weights(weights)
        for variable, value in zip(self.model.optimizer.variables, optimizer_state, strict=True):
            variable.assign(value)

    def evaluate(self, inputs, targets, start) -> float:
        # predict_on_batch runs Keras' compiled predict function (traced once); calling the
        # model eagerly would step a user's cell through the sequence in Python.
        predictions = np.asarray(self.model.predict_on_batch(inputs))
        # float32 errors, squared and averaged in float64, as the fused engine does
        errors = (predictions[:, start:] - targets[:, start:]).astype(np.float64)
        return float(np.mean(np.square(errors)))


class FusedEngine:
    name = "fused"

    def __init__(self, cell, settings: TrainSettings, inputs, targets, weights):
        from rnn_cell_bench.fused import FusedAdam

        self.cell = cell
        self.weights = [np.array(w, dtype=np.float32) for w in weights]
        shapes = [w.shape for w in self.weights]
        self.adam = FusedAdam(shapes, settings.learning_rate, settings.clipnorm, settings.clip)
        self.inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        self.targets = np.ascontiguousarray(targets, dtype=np.float32)

    def run_epoch(self) -> float:
        from rnn_cell_bench.fused import loss_and_gradients

        loss, grads = loss_and_gradients(self.cell, self.inputs, self.targets, self.weights)
        if math.isfinite(loss):
            self.adam.apply(grads, self.weights)
        return loss

    def snapshot(self):
        return [w.copy() for w in self.weights], self.adam.state()

    def restore(self, weights, optimizer_state) -> None:
        self.weights = [np.array(w, dtype=np.float32) for w in weights]
        self.adam.load_state(optimizer_state)

    def evaluate(self, inputs, targets, start) -> float:
        from rnn_cell_bench.fused import heldout_loss

        return heldout_loss(self.cell, inputs, targets, self.weights, start)


ENGINE_CLASSES = {"keras": KerasEngine, "fused": FusedEngine}
