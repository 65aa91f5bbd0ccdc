"""Full-batch training of one cell for one seed, with per-epoch timing and progress lines."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import pickle
import platform
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rnn_cell_bench.models import build_model, expected_params

CLIP_MODES = ("global", "per_variable")
ENGINES = ("keras", "fused", "auto")


@dataclass(frozen=True)
class TrainSettings:
    """The settings that determine a run's result (besides cell, seed and data)."""

    units: int = 16
    epochs: int = 1000
    learning_rate: float = 0.001
    clipnorm: float = 1.0
    clip: str = "global"
    engine: str = "auto"

    @classmethod
    def from_config(cls, config: dict) -> TrainSettings:
        train = config["train"]
        return cls(
            units=int(config["model"]["units"]),
            epochs=int(train["epochs"]),
            learning_rate=float(train["learning_rate"]),
            clipnorm=float(train["clipnorm"]),
            clip=str(train["clip"]),
            engine=str(train["engine"]),
        )


STATUS_COMPLETED = "completed"
STATUS_DIVERGED = "diverged"
ON_NAN = ("stop_run", "fail")


class TrainingInterrupted(RuntimeError):
    """SIGTERM arrived: a checkpoint was saved and the run should be retried."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf and ``on_nan`` is ``fail``."""


@dataclass
class RunResult:
    model: object
    losses: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    status: str = STATUS_COMPLETED
    resumed_from: int = 0  # epochs taken from a checkpoint
    engine: str = "keras"

    @property
    def sec_per_epoch(self) -> float:
        """Median epoch time, leaving out the first epoch of a process (graph tracing)."""
        timed = self.seconds[self.resumed_from :]
        timed = timed[1:] if len(timed) > 1 else (timed or self.seconds)
        return float(np.median(timed))


class Checkpointer:
    """Atomic checkpoints of weights, optimizer state, RNG state and history.

    ``fingerprint`` identifies what the run depends on (cell, seed, data, every setting but the
    epoch count); a checkpoint with another fingerprint is never resumed.
    """

    def __init__(self, path, every: int, fingerprint: str, log: Callable[[str], None] = print):
        self.path = Path(path)
        self.every = every
        self.fingerprint = fingerprint
        self.log = log

    def save(
        self, weights: list, optimizer_state: list, losses: list[float], seconds: list[float]
    ) -> None:
        arrays = {f"weight_{i}": np.asarray(w) for i, w in enumerate(weights)}
        for i, variable in enumerate(optimizer_state):
            arrays[f"optimizer_{i}"] = np.asarray(variable)
        rng_state = pickle.dumps({"python": random.getstate(), "numpy": np.random.get_state()})
        meta = {
            "fingerprint": self.fingerprint,
            "epoch": len(losses),
            "format": 1,
            "weights": len(weights),
            "optimizer": len(optimizer_state),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                losses=np.asarray(losses, dtype=np.float64),
                seconds=np.asarray(seconds, dtype=np.float64),
                rng=np.frombuffer(rng_state, dtype=np.uint8),
                meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                **arrays,
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)  # readers see the old checkpoint or the new, never half

    def load(self) -> dict | None:
        """The checkpoint's contents if it exists and belongs to this run, else None."""
        if not self.path.exists():
            return None
        try:
            with np.load(self.path) as archive:
                content = {key: archive[key] for key in archive.files}
            meta = json.loads(content["meta"].tobytes())
        except Exception as error:  # a damaged checkpoint only costs the epochs since the last
            self.log(f"ignoring unreadable checkpoint {self.path}: {error}")
            return None
        if meta.get("fingerprint") != self.fingerprint:
            self.log(f"ignoring checkpoint {self.path}: it belongs to other settings or data")
            return None
        content["meta"] = meta
        return content

    @staticmethod
    def restore(content: dict) -> tuple[list, list, list[float], list[float]]:
        """Weights, optimizer state and history so far; puts the RNG state back."""
        meta = content["meta"]
        weights = [content[f"weight_{i}"] for i in range(meta["weights"])]
        optimizer_state = [content[f"optimizer_{i}"] for i in range(meta["optimizer"])]
        state = pickle.loads(content["rng"].tobytes())
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        return weights, optimizer_state, content["losses"].tolist(), content["seconds"].tolist()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def configure_threads(threads: int) -> None:
    """Pin TensorFlow's and numba's thread pools; must run before TensorFlow executes any op."""
    import numba
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def resolve_engine(engine: str) -> str:
    """``auto``: Keras (cuDNN) where TensorFlow sees a GPU, the fused engine otherwise."""
    if engine not in ENGINES:
        raise ValueError(f"train.engine must be one of {ENGINES}, got {engine!r}")
    if engine != "auto":
        return engine
    import tensorflow as tf

    return "keras" if tf.config.list_physical_devices("GPU") else "fused"


def make_optimizer(settings: TrainSettings):
    import keras

    if settings.clip not in CLIP_MODES:
        raise ValueError(f"train.clip must be one of {CLIP_MODES}, got {settings.clip!r}")
    # Keras 2 (the original's back end) clipped by the global norm; Keras 3's clipnorm clips
    # each variable on its own.
    clip = (
        {"global_clipnorm": settings.clipnorm}
        if settings.clip == "global"
        else {"clipnorm": settings.clipnorm}
    )
    return keras.optimizers.Adam(learning_rate=settings.learning_rate, **clip)


def format_duration(seconds: float) -> str:
    return str(dt.timedelta(seconds=round(max(seconds, 0.0))))


@contextmanager
def sigterm_requests_stop():
    """While active, SIGTERM (what SLURM sends at a time limit or preemption) sets a flag
    instead of killing the process, so the epoch in flight can finish and be checkpointed."""
    received = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be installed from the main thread
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.set())
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


class EpochMonitor:
    """What happens after every epoch, whichever engine trains: timing, progress lines,
    divergence, periodic checkpoints, and the checkpoint-and-exit on SIGTERM."""

    def __init__(self, result, cell, seed, settings, log, log_every, checkpointer, on_nan, stop):
        self.result, self.cell, self.seed, self.settings = result, cell, seed, settings
        self.log, self.log_every = log, log_every
        self.checkpointer, self.on_nan, self.stop_requested = checkpointer, on_nan, stop

    def end_epoch(self, loss: float, seconds: float, snapshot: Callable[[], tuple]) -> bool:
        """Record one epoch; returns False when training must stop (divergence).

        ``snapshot()`` returns (weights, optimizer state) for a checkpoint.
        """
        result, epochs = self.result, self.settings.epochs
        result.seconds.append(seconds)
        result.losses.append(loss)
        done = len(result.losses)
        if not math.isfinite(loss):
            self.log(f"epoch {done}/{epochs}  loss {loss}: diverged")
            if self.on_nan == "fail":
                raise TrainingDiverged(f"{self.cell} seed {self.seed}: loss {loss} at epoch {done}")
            result.status = STATUS_DIVERGED
            return False
        if done % self.log_every == 0 or done == epochs:
            pace = result.sec_per_epoch
            self.log(
                f"epoch {done}/{epochs}  loss {loss:.6g}  {pace:.3f} s/epoch  "
                f"ETA {format_duration(pace * (epochs - done))}"
            )
        if self.checkpointer is None or done == epochs:
            return True
        if self.stop_requested.is_set():
            self.checkpointer.save(*snapshot(), result.losses, result.seconds)
            self.log(f"SIGTERM: saved checkpoint at epoch {done}, exiting to be retried")
            raise TrainingInterrupted(f"stopped by SIGTERM after epoch {done}")
        if done % self.checkpointer.every == 0:
            self.checkpointer.save(*snapshot(), result.losses, result.seconds)
        return True


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
) -> RunResult:
    """Train ``cell`` on the whole data set as one batch, one optimizer step per epoch.

    The engine is ``settings.engine`` (``auto`` resolved by :func:`resolve_engine`); both start
    from the same seeded Keras weights. With a ``checkpointer``, resumes from its checkpoint when
    there is one, saves one every ``checkpointer.every`` epochs, and on SIGTERM saves one and
    raises :class:`TrainingInterrupted`. A NaN or inf loss ends the run as ``diverged``
    (``on_nan="stop_run"``) or raises :class:`TrainingDiverged` (``on_nan="fail"``).
    """
    import keras
    import tensorflow as tf

    if on_nan not in ON_NAN:
        raise ValueError(f"train.on_nan must be one of {ON_NAN}, got {on_nan!r}")
    engine = resolve_engine(settings.engine)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(cell, settings.units, seed, input_dim=inputs.shape[-1])
    model.compile(optimizer=make_optimizer(settings), loss="mse")
    result = RunResult(model=model, engine=engine)
    content = checkpointer.load() if checkpointer else None
    if content is not None and content["meta"]["epoch"] > settings.epochs:
        log(f"ignoring checkpoint {checkpointer.path}: it is past epoch {settings.epochs}")
        content = None
    restored = None
    if content is not None:
        *restored, result.losses, result.seconds = Checkpointer.restore(content)
        result.resumed_from = len(result.losses)
        log(f"resumed from checkpoint {checkpointer.path} at epoch {result.resumed_from}")

    with sigterm_requests_stop() as stop_requested:
        monitor = EpochMonitor(
            result, cell, seed, settings, log, log_every, checkpointer, on_nan, stop_requested
        )
        if engine == "fused":
            _train_fused(inputs, targets, cell, settings, model, restored, monitor)
        else:
            _train_keras(inputs, targets, settings, model, restored, monitor)
    return result


def _train_keras(inputs, targets, settings, model, restored, monitor: EpochMonitor) -> None:
    import keras

    optimizer = model.optimizer
    if restored is not None:
        weights, optimizer_state = restored
        model.set_weights(weights)
        optimizer.build(model.trainable_variables)
        for variable, value in zip(optimizer.variables, optimizer_state, strict=True):
            variable.assign(value)

    def snapshot():
        return model.get_weights(), [np.asarray(v.numpy()) for v in optimizer.variables]

    class EpochEnd(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.started
            if not monitor.end_epoch(float(logs["loss"]), seconds, snapshot):
                self.model.stop_training = True

    start = monitor.result.resumed_from
    if start < settings.epochs:
        model.fit(
            inputs,
            targets,
            batch_size=len(inputs),  # the whole data set is one batch
            epochs=settings.epochs,
            initial_epoch=start,
            shuffle=False,
            verbose=0,
            callbacks=[EpochEnd()],
        )


def _train_fused(inputs, targets, cell, settings, model, restored, monitor) -> None:
    from rnn_cell_bench.fused import FusedAdam, loss_and_gradients

    weights = [np.array(w, dtype=np.float32) for w in model.get_weights()]
    adam = FusedAdam(
        [w.shape for w in weights], settings.learning_rate, settings.clipnorm, settings.clip
    )
    if restored is not None:
        weights = [np.array(w, dtype=np.float32) for w in restored[0]]
        adam.load_state(restored[1])

    def snapshot():
        return weights, adam.state()

    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    targets = np.ascontiguousarray(targets, dtype=np.float32)
    for _ in range(monitor.result.resumed_from, settings.epochs):
        started = time.perf_counter()
        # Like Keras, the loss reported for an epoch is the one before its update.
        loss, grads = loss_and_gradients(cell, inputs, targets, weights)
        if math.isfinite(loss):
            adam.apply(grads, weights)
        if not monitor.end_epoch(loss, time.perf_counter() - started, snapshot):
            break
    # The trained model is saved in Keras format either way, with its Adam state.
    model.set_weights(weights)
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    optimizer.iterations.assign(adam.iterations)
    for variables, values in (
        (optimizer._momentums, adam.momentums),
        (optimizer._velocities, adam.velocities),
    ):
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)


def device_name() -> str:
    """``CPU``, or the name of the GPU TensorFlow places the model on."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    details = tf.config.experimental.get_device_details(gpus[0])
    return str(details.get("device_name", gpus[0].name))


def library_versions() -> dict[str, str]:
    import h5py
    import keras
    import numba
    import pandas
    import tensorflow as tf

    import rnn_cell_bench

    build = tf.sysconfig.get_build_info()
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "h5py": h5py.__version__,
        "numba": numba.__version__,
        "pandas": pandas.__version__,
        "cuda": str(build.get("cuda_version", "none")),
        "cudnn": str(build.get("cudnn_version", "none")),
        "rnn_cell_bench": rnn_cell_bench.__version__,
    }


def settings_hash(settings: TrainSettings) -> str:
    """A hash of every setting that shapes a run's result."""
    canonical = json.dumps(asdict(settings), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def run_fingerprint(
    cell: str, seed: int, settings: TrainSettings, data_sha256: str, engine: str | None = None
) -> str:
    """What a checkpoint must match to be resumed: everything but the number of epochs, since
    the first N epochs of a longer run are the same as those of a shorter one. ``engine`` is
    the resolved engine (``auto`` may resolve differently on another node)."""
    canonical = json.dumps(
        {
            "cell": cell,
            "seed": seed,
            "data_sha256": data_sha256,
            "settings": {**asdict(settings), "epochs": None},
            "engine": engine or settings.engine,
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def git_commit(directory) -> str | None:
    """The commit of the git checkout holding ``directory`` (``+dirty`` when edited), or None."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if status else commit


def run_record(
    result: RunResult,
    cell: str,
    seed: int,
    settings: TrainSettings,
    threads: int,
    data: dict,
    source_dir=None,
) -> dict:
    """Everything ``run.json`` says about a finished (or diverged) run."""
    trainable = int(sum(math.prod(w.shape) for w in result.model.trainable_weights))
    assert trainable == expected_params(cell, settings.units)["total"]
    finite = [loss for loss in result.losses if math.isfinite(loss)]
    return {
        "cell": cell,
        "seed": seed,
        "status": result.status,
        "params": trainable,
        "epochs_completed": len(result.losses),
        "final_loss": result.losses[-1] if result.status == STATUS_COMPLETED else None,
        "best_loss": min(finite) if finite else None,
        "sec_per_epoch": result.sec_per_epoch,
        "total_seconds": float(sum(result.seconds)),
        "resumed_from_epoch": result.resumed_from,
        "engine": result.engine,
        "device": device_name(),
        "threads": threads,
        "host": platform.node(),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(source_dir) if source_dir else None,
        "settings": asdict(settings),
        "settings_hash": settings_hash(settings),
        "data": data,
        "versions": library_versions(),
    }


def write_json(record: dict, path) -> None:
    """Write ``record`` atomically (NaN and inf are not valid JSON: they must be None here)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        json.dump(record, handle, indent=2, allow_nan=False)
        handle.write("\n")
    os.replace(tmp, path)
