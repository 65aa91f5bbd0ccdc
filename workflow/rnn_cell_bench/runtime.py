"""The process a run trains in: devices, engine choice, threads, TensorFlow's start-up, the
optimizer, and SIGTERM.

TensorFlow is imported only when the Keras engine needs it (or to ask whether it sees a GPU):
the import costs seconds and hundreds of MB, which the fused engine does not need.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from rnn_cell_bench.settings import CLIP_MODES, ENGINES, TrainSettings

# TensorFlow's start-up lines on a machine without an NVIDIA GPU: harmless, yet they read like
# failures ("failed call to cuInit"). Only these are dropped, and only where no GPU exists.
NO_GPU_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|cudart_stub\.cc.*Could not find cuda drivers"
    r"|failed call to cuInit"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions: .* rebuild TensorFlow"
    r"|oneDNN custom operations are on"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation_placer\.cc.*already registered"
)
_THREADS: dict[str, int] = {}


def nvidia_devices_present() -> bool:
    """Whether this process could see an NVIDIA GPU at all (without importing TensorFlow):
    a device node or driver entry exists and ``CUDA_VISIBLE_DEVICES`` does not hide them."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    driver = Path("/proc/driver/nvidia/gpus")
    return Path("/dev/nvidia0").exists() or (driver.is_dir() and any(driver.iterdir()))


@contextmanager
def _filtered_native_stderr(drop: re.Pattern | None):
    """Capture what native code writes to file descriptor 2 and pass it on, less ``drop``."""
    if drop is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                if not drop.search(line)
            ]
            if kept:
                os.write(2, "".join(kept).encode())


def import_tensorflow():
    """TensorFlow, imported with its start-up noise filtered where no GPU exists, with the
    thread counts of :func:`configure_threads` applied and memory growth on every GPU."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # info chatter off, warnings kept
    already = "tensorflow" in sys.modules
    with _filtered_native_stderr(None if already or nvidia_devices_present() else NO_GPU_NOISE):
        import tensorflow as tf

        if not already and "intra" in _THREADS:
            tf.config.threading.set_intra_op_parallelism_threads(_THREADS["intra"])
            tf.config.threading.set_inter_op_parallelism_threads(1)
        for gpu in tf.config.list_physical_devices("GPU"):  # the CUDA probe happens here
            # Take GPU memory as the job needs it, not nearly all of every GPU at start-up
            # (RuntimeError: this process already uses the GPU, too late to change).
            with contextlib.suppress(RuntimeError):
                tf.config.experimental.set_memory_growth(gpu, True)
    return tf


def configure_threads(threads: int) -> None:
    """Pin numba's thread pool now and TensorFlow's when (and if) it is imported; call before
    TensorFlow executes any op."""
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    _THREADS["intra"] = threads
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already ran ops: its pools are fixed for the process
            pass


def visible_gpus() -> list:
    """The GPUs TensorFlow sees; empty without importing TensorFlow where none can exist."""
    if not nvidia_devices_present():
        return []
    return import_tensorflow().config.list_physical_devices("GPU")


def resolve_engine(engine: str, custom_cell: bool = False) -> str:
    """``auto``: Keras (cuDNN) where TensorFlow sees a GPU, the fused engine otherwise; always
    Keras for a user's cell (``custom_cell``), which the fused engine cannot run."""
    if engine not in ENGINES:
        raise ValueError(f"train.engine must be one of {ENGINES}, got {engine!r}")
    if custom_cell:
        if engine == "fused":
            raise ValueError("a cell of your own trains on the Keras engine only, not fused")
        return "keras"
    if engine != "auto":
        return engine
    return "keras" if visible_gpus() else "fused"


def device_name() -> str:
    """``CPU``, or the name of the GPU TensorFlow places the model on."""
    gpus = visible_gpus()
    if not gpus:
        return "CPU"
    details = import_tensorflow().config.experimental.get_device_details(gpus[0])
    return str(details.get("device_name", gpus[0].name))


def import_keras():
    """Keras, on a TensorFlow imported by :func:`import_tensorflow`."""
    import_tensorflow()
    import keras

    return keras


def make_optimizer(settings: TrainSettings):
    keras = import_keras()

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


# Seconds per epoch at the reference scale (40 x 20,000 steps, 16 units), per engine, for time
# limits on a cluster: above the slowest measured case of each (fused: 1 thread on a 2-core AVX2
# CPU; Keras on a CPU: 2 cores), or an assumption where none was measured (cuDNN on a GPU).
REFERENCE_STEPS = 40 * 20_000
REFERENCE_UNITS = 16
SECONDS_PER_EPOCH = {"fused": 1.0, "keras_gpu": 2.0, "keras_cpu": 10.0}
TIME_LIMIT_SAFETY = 2.0  # a slow node, a noisy neighbour
START_UP_MINUTES = 10  # imports, compilation, data checks, saving


def time_limit_minutes(engine: str, n_sequences: int, n_steps: int, units: int, epochs: int):
    """A time limit for one training job that fits the engine that will run.

    ``auto`` runs Keras on cuDNN where the job gets a GPU and the fused engine where it does
    not; ``keras`` may run on a CPU. The reference s/epoch scales with the data size and with
    the square of the units (the recurrent product), never below the reference's cost.
    """
    if engine not in ENGINES:
        raise ValueError(f"train.engine must be one of {ENGINES}, got {engine!r}")
    seconds = {
        "fused": SECONDS_PER_EPOCH["fused"],
        "auto": max(SECONDS_PER_EPOCH["fused"], SECONDS_PER_EPOCH["keras_gpu"]),
        "keras": SECONDS_PER_EPOCH["keras_cpu"],
    }[engine]
    scale = n_sequences * n_steps / REFERENCE_STEPS * max(1.0, (units / REFERENCE_UNITS) ** 2)
    training = epochs * seconds * scale * TIME_LIMIT_SAFETY / 60
    return math.ceil(START_UP_MINUTES + training)
