"""Full-batch training of one cell for one seed, with per-epoch timing and progress lines."""

from __future__ import annotations

import datetime as dt
import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from rnn_cell_bench.models import build_model, expected_params

CLIP_MODES = ("global", "per_variable")


@dataclass(frozen=True)
class TrainSettings:
    """The settings that determine a run's result (besides cell, seed and data)."""

    units: int = 16
    epochs: int = 1000
    learning_rate: float = 0.001
    clipnorm: float = 1.0
    clip: str = "global"

    @classmethod
    def from_config(cls, config: dict) -> TrainSettings:
        train = config["train"]
        return cls(
            units=int(config["model"]["units"]),
            epochs=int(train["epochs"]),
            learning_rate=float(train["learning_rate"]),
            clipnorm=float(train["clipnorm"]),
            clip=str(train["clip"]),
        )


@dataclass
class RunResult:
    model: object
    losses: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def sec_per_epoch(self) -> float:
        """Median epoch time, leaving out the first epoch (graph tracing) when there are more."""
        timed = self.seconds[1:] if len(self.seconds) > 1 else self.seconds
        return float(np.median(timed))


def configure_threads(threads: int) -> None:
    """Pin TensorFlow's thread pools; must run before TensorFlow executes any op."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


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


def train(
    inputs: np.ndarray,
    targets: np.ndarray,
    cell: str,
    seed: int,
    settings: TrainSettings,
    log: Callable[[str], None] = print,
    log_every: int = 50,
) -> RunResult:
    """Train ``cell`` on the whole data set as one batch, one optimizer step per epoch."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(cell, settings.units, seed, input_dim=inputs.shape[-1])
    model.compile(optimizer=make_optimizer(settings), loss="mse")
    result = RunResult(model=model)

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            result.seconds.append(time.perf_counter() - self.started)
            result.losses.append(float(logs["loss"]))
            done = epoch + 1
            if done % log_every == 0 or done == settings.epochs:
                pace = result.sec_per_epoch
                log(
                    f"epoch {done}/{settings.epochs}  loss {result.losses[-1]:.6g}  "
                    f"{pace:.3f} s/epoch  ETA {format_duration(pace * (settings.epochs - done))}"
                )

    model.fit(
        inputs,
        targets,
        batch_size=len(inputs),  # the whole data set is one batch
        epochs=settings.epochs,
        shuffle=False,
        verbose=0,
        callbacks=[EpochLog()],
    )
    return result


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
    import tensorflow as tf

    import rnn_cell_bench

    build = tf.sysconfig.get_build_info()
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "h5py": h5py.__version__,
        "cuda": str(build.get("cuda_version", "none")),
        "cudnn": str(build.get("cudnn_version", "none")),
        "rnn_cell_bench": rnn_cell_bench.__version__,
    }


def run_record(
    result: RunResult, cell: str, seed: int, settings: TrainSettings, threads: int, data: dict
) -> dict:
    """Everything ``run.json`` says about a finished run."""
    trainable = int(sum(math.prod(w.shape) for w in result.model.trainable_weights))
    assert trainable == expected_params(cell, settings.units)["total"]
    return {
        "cell": cell,
        "seed": seed,
        "params": trainable,
        "epochs_completed": len(result.losses),
        "final_loss": result.losses[-1],
        "best_loss": min(result.losses),
        "sec_per_epoch": result.sec_per_epoch,
        "total_seconds": float(sum(result.seconds)),
        "device": device_name(),
        "threads": threads,
        "host": platform.node(),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settings": asdict(settings),
        "data": data,
        "versions": library_versions(),
    }


def write_json(record: dict, path) -> None:
    with open(path, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=False)
        handle.write("\n")
