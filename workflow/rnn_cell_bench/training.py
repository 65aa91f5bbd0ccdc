"""Full-batch training of one cell for one seed: the epoch loop, the same for every engine.

After every epoch the loop records the loss and the epoch's wall time, measures the held-out
loss every ``eval_every`` epochs and after the last one, prints a progress line, watches for
divergence, writes periodic checkpoints and, on SIGTERM, a checkpoint and a clean exit. The
engines (:mod:`rnn_cell_bench.engines`) only compute epochs and held-out losses.

The training loss of epoch ``e`` is the loss of the weights before that epoch's update (as
Keras reports it); the held-out loss of epoch ``e`` is that of the weights after it. Held-out
evaluation is timed apart from the epochs, so ``sec_per_epoch`` measures training alone.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rnn_cell_bench.checkpoints import Checkpointer
from rnn_cell_bench.engines import ENGINE_CLASSES, Engine
from rnn_cell_bench.models import custom_initial_weights, initial_weights
from rnn_cell_bench.runtime import resolve_engine, sigterm_requests_stop
from rnn_cell_bench.settings import (
    ON_NAN,
    STATUS_DIVERGED,
    RunResult,
    TrainingDiverged,
    TrainingInterrupted,
    TrainSettings,
)


@dataclass(frozen=True)
class HeldOut:
    """The held-out part of a data set, and the first step whose target counts."""

    inputs: np.ndarray  # (m, steps, features)
    targets: np.ndarray  # (m, steps, 1)
    start: int = 0

    def __post_init__(self):
        object.__setattr__(self, "inputs", np.ascontiguousarray(self.inputs, dtype=np.float32))
        object.__setattr__(self, "targets", np.ascontiguousarray(self.targets, dtype=np.float32))
        if not 0 <= self.start < self.targets.shape[1]:
            raise ValueError(f"held-out start {self.start} is not one of its steps")


def format_duration(seconds: float) -> str:
    return str(dt.timedelta(seconds=round(max(seconds, 0.0))))


class EpochMonitor:
    """What happens after every epoch: timing, progress lines, divergence, periodic
    checkpoints, and the checkpoint-and-exit on SIGTERM."""

    # on_epoch(epoch, loss, held-out loss or NaN), every epoch
    on_epoch: Callable[[int, float, float], None] | None = None
    evaluate: Callable[[], float] | None = None  # the held-out loss of the current weights

    def __init__(self, result, cell, seed, settings, log, log_every, checkpointer, on_nan, stop):
        self.result, self.cell, self.seed, self.settings = result, cell, seed, settings
        self.log, self.log_every = log, log_every
        self.checkpointer, self.on_nan, self.stop_requested = checkpointer, on_nan, stop

    def end_epoch(self, loss: float, seconds: float, engine: Engine) -> bool:
        """Record one epoch; returns False when training must stop (divergence)."""
        result, epochs = self.result, self.settings.epochs
        result.seconds.append(seconds)
        result.losses.append(loss)
        done = len(result.losses)
        heldout = math.nan
        every = self.settings.eval_every
        if (
            self.evaluate is not None
            and math.isfinite(loss)
            and (done % every == 0 or done == epochs)
        ):
            started = time.perf_counter()
            heldout = float(self.evaluate())
            result.heldout_seconds += time.perf_counter() - started
        result.heldout_losses.append(heldout)
        if self.on_epoch is not None:  # every epoch of the history, a diverged one included
            self.on_epoch(done, loss, heldout)
        if not math.isfinite(loss):
            self.log(f"epoch {done}/{epochs}  loss {loss}: diverged")
            if self.on_nan == "fail":
                raise TrainingDiverged(f"{self.cell} seed {self.seed}: loss {loss} at epoch {done}")
            result.status = STATUS_DIVERGED
            return False
        if done % self.log_every == 0 or done == epochs:
            pace = result.sec_per_epoch
            measured = result.heldout_measured
            held = f"  held-out {measured[-1][1]:.6g} (epoch {measured[-1][0]})" if measured else ""
            self.log(
                f"epoch {done}/{epochs}  loss {loss:.6g}{held}  {pace:.3f} s/epoch  "
                f"ETA {format_duration(pace * (epochs - done))}"
            )
        if self.checkpointer is None or done == epochs:
            return True
        if self.stop_requested.is_set():
            self._save(engine)
            self.log(f"SIGTERM: saved checkpoint at epoch {done}, exiting to be retried")
            raise TrainingInterrupted(f"stopped by SIGTERM after epoch {done}")
        if done % self.checkpointer.every == 0:
            self._save(engine)
        return True

    def _save(self, engine: Engine) -> None:
        result = self.result
        self.checkpointer.save(
            *engine.snapshot(),
            result.losses,
            result.seconds,
            result.heldout_losses,
            result.heldout_seconds,
        )


def train(
    inputs: np.ndarray,
    targets: np.ndarray,
    cell: str,
    seed: int,
    settings: TrainSettings,
    log: Callable[[str], None] = print,
    log_every: int = 50,
    checkpointer: Checkpointer | None = None,
    on_nan: str = "stop_run",
    on_epoch: Callable[[int, float, float], None] | None = None,
    heldout: HeldOut | None = None,
) -> RunResult:
    """Train ``cell`` on the whole data set as one batch, one optimizer step per epoch.

    The engine is ``settings.engine`` (``auto`` resolved by
    :func:`~rnn_cell_bench.runtime.resolve_engine`); both start from
    :func:`~rnn_cell_bench.models.initial_weights` for ``seed`` (a user's cell, always on
    Keras, from :func:`~rnn_cell_bench.models.custom_initial_weights`). With a ``checkpointer``,
    resumes from its checkpoint when there is one, saves one every ``checkpointer.every``
    epochs, and on SIGTERM saves one and raises :class:`TrainingInterrupted`. A NaN or inf loss
    ends the run as ``diverged`` (``on_nan="stop_run"``) or raises :class:`TrainingDiverged`
    (``on_nan="fail"``). With ``heldout``, the held-out loss is measured after the update of
    every ``settings.eval_every``-th epoch and of the last (``RunResult.heldout_losses``, NaN
    elsewhere). ``on_epoch(epoch, loss, heldout_loss)``, if given, is called after every
    epoch (numbered from 1, resumed epochs not repeated; the held-out loss NaN where it was not
    measured), outside the epoch's timing: a live view.
    """
    if on_nan not in ON_NAN:
        raise ValueError(f"train.on_nan must be one of {ON_NAN}, got {on_nan!r}")
    engine_name = resolve_engine(settings.engine, custom_cell=settings.cell_class is not None)
    init = {
        "kernel_initializer": settings.kernel_initializer,
        "recurrent_initializer": settings.recurrent_initializer,
    }
    if settings.cell_class is not None:  # a user's cell: Keras alone knows its tensors
        weights = custom_initial_weights(
            cell, settings.cell_class, settings.units, seed, inputs.shape[-1], **init
        )
    else:
        weights = initial_weights(
            cell,
            settings.units,
            seed,
            input_dim=inputs.shape[-1],
            unit_forget_bias=bool(settings.unit_forget_bias),
            **init,
        )
    engine = ENGINE_CLASSES[engine_name](cell, settings, inputs, targets, weights)
    result = RunResult(weights=weights, engine=engine_name)
    checkpoint = None
    if checkpointer is not None:
        checkpointer.remove_stale_temporaries()
        checkpoint = checkpointer.load(expected_shapes=[w.shape for w in weights])
    if checkpoint is not None and checkpoint.epoch > settings.epochs:
        log(f"ignoring checkpoint {checkpointer.path}: it is past epoch {settings.epochs}")
        checkpoint = None
    if checkpoint is not None:
        engine.restore(checkpoint.weights, checkpoint.optimizer_state)
        result.losses, result.seconds = checkpoint.losses, checkpoint.seconds
        result.heldout_losses = checkpoint.heldout_losses
        result.heldout_seconds = checkpoint.heldout_seconds
        result.resumed_from = checkpoint.epoch
        log(f"resumed from checkpoint {checkpointer.path} at epoch {result.resumed_from}")

    with sigterm_requests_stop() as stop_requested:
        monitor = EpochMonitor(
            result, cell, seed, settings, log, log_every, checkpointer, on_nan, stop_requested
        )
        monitor.on_epoch = on_epoch
        if heldout is not None:
            monitor.evaluate = lambda: engine.evaluate(
                heldout.inputs, heldout.targets, heldout.start
            )
        for _ in range(result.resumed_from, settings.epochs):
            started = time.perf_counter()
            loss = engine.run_epoch()
            if not monitor.end_epoch(loss, time.perf_counter() - started, engine):
                break
    result.weights, result.optimizer_state = engine.snapshot()
    return result
