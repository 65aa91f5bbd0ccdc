"""Where a run's numbers came from: code, settings, data, libraries, machine; and the check
that runs about to be compared came from the same place."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from rnn_cell_bench.settings import RunResult, TrainSettings

PACKAGE_DIR = Path(__file__).resolve().parent
# The package modules a training job runs. The train rule declares them as inputs (a change
# reruns training) and their digest is part of a checkpoint's fingerprint (a change never
# resumes a checkpoint written by other code).
TRAIN_MODULES = (
    "cells",
    "checkpoints",
    "data",
    "engines",
    "fused",
    "gpu_slots",
    "keras_format",
    "live_view",
    "logs",
    "models",
    "provenance",
    "runtime",
    "settings",
    "training",
)
LIBRARIES = ("numpy", "tensorflow", "keras", "h5py", "numba", "llvmlite", "pandas")
CPU_FLAGS = ("sse2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "asimd", "sve")


def code_digest(
    modules=TRAIN_MODULES, package_dir: Path = PACKAGE_DIR, cell_source: Path | None = None
) -> str:
    """SHA-256 over the source of ``modules`` (name and bytes of each, in order) and, for a
    user's cell, its module's source file: editing it never resumes an old checkpoint."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(f"{module}\0".encode())
        digest.update((package_dir / f"{module}.py").read_bytes())
    if cell_source is not None:
        digest.update(b"cell\0")
        digest.update(Path(cell_source).read_bytes())
    return digest.hexdigest()[:16]


def cell_record(settings: TrainSettings, project_dir: str | Path | None = None) -> dict | None:
    """What ``run.json`` says of a user's cell: its class, its module's file (relative to the
    project folder when inside it) and that file's SHA-256; None for a built-in cell."""
    from rnn_cell_bench.cells import CustomCell, file_digest

    if settings.cell_class is None:
        return None
    project = Path(project_dir or Path.cwd()).resolve()
    source = CustomCell("cell", settings.cell_class).source_file(project)
    shown = source.relative_to(project) if source.is_relative_to(project) else source
    return {"class": settings.cell_class, "file": str(shown), "sha256": file_digest(source)}


def settings_hash(settings: TrainSettings) -> str:
    """A hash of every setting that shapes a run's result; ``settings.engine`` must be the
    resolved engine (``auto`` may resolve differently on another node)."""
    canonical = json.dumps(asdict(settings), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def run_fingerprint(
    cell: str, seed: int, settings: TrainSettings, data_sha256: str, code: str | None = None
) -> str:
    """What a checkpoint must match to be resumed: cell, seed, data, code and every setting
    (with the resolved engine) but the number of epochs, since the first N epochs of a longer
    run are the same as those of a shorter one."""
    canonical = json.dumps(
        {
            "cell": cell,
            "seed": seed,
            "data_sha256": data_sha256,
            "settings": {**asdict(settings), "epochs": None},
            "code": code if code is not None else code_digest(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def library_versions() -> dict[str, str | None]:
    """Installed versions (read from package metadata: no import of TensorFlow), and the CUDA
    and cuDNN versions TensorFlow was built with when this process imported it."""
    import rnn_cell_bench

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["cuda"] = versions["cudnn"] = None  # not loaded: the fused engine never uses them
    if "tensorflow" in sys.modules:
        build = sys.modules["tensorflow"].sysconfig.get_build_info()
        versions["cuda"] = str(build.get("cuda_version", "none"))
        versions["cudnn"] = str(build.get("cudnn_version", "none"))
    versions["rnn_cell_bench"] = rnn_cell_bench.__version__
    return versions


def cpu_info() -> dict:
    """The CPU model, its vector extensions, and the target numba compiles for: what a reader
    needs to tell whether two runs could give the same bits."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
    except OSError:
        pass
    return {
        "model": model,
        "machine": platform.machine(),
        "flags": [flag for flag in CPU_FLAGS if flag in flags],
        "numba_cpu_name": os.environ.get("NUMBA_CPU_NAME", "host"),
        "cores": os.cpu_count(),
    }


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
    device: str,
    source_dir=None,
    gpu: dict | None = None,
    project_dir=None,
) -> dict:
    """Everything ``run.json`` says about a finished (or diverged) run. ``settings`` holds
    the engine that ran (never ``auto``); ``gpu`` is the GPU the job was given
    (:meth:`rnn_cell_bench.gpu_slots.GpuClaim.record`), None without one."""
    from rnn_cell_bench.models import expected_params

    if settings.engine != result.engine:
        raise ValueError(f"settings.engine {settings.engine!r} is not the engine that ran")
    trainable = int(sum(np.asarray(w).size for w in result.weights))
    input_dim = int(np.asarray(result.weights[0]).shape[0])
    custom = cell_record(settings, project_dir)
    if custom is None:
        assert trainable == expected_params(cell, settings.units, input_dim)["total"]
    finite = [loss for loss in result.losses if np.isfinite(loss)]
    measured = [(epoch, v) for epoch, v in result.heldout_measured if np.isfinite(v)]
    best_heldout = min(measured, key=lambda item: item[1]) if measured else (None, None)
    last_epoch = len(result.losses)
    final_heldout = dict(measured).get(last_epoch)  # None where not finite: JSON has no NaN
    return {
        "cell": cell,
        "seed": seed,
        "status": result.status,
        "params": trainable,
        "epochs_completed": len(result.losses),
        "final_loss": result.losses[-1] if result.status == "completed" else None,
        "best_loss": min(finite) if finite else None,
        "heldout_loss": final_heldout if result.status == "completed" else None,
        "best_heldout_loss": best_heldout[1],
        "best_heldout_epoch": best_heldout[0],
        "input_dim": input_dim,
        "sec_per_epoch": result.sec_per_epoch,
        "total_seconds": float(sum(result.seconds)),
        "heldout_seconds": result.heldout_seconds,
        "resumed_from_epoch": result.resumed_from,
        "engine": result.engine,
        "device": device,
        "gpu": gpu,
        "cpu": cpu_info(),
        "threads": threads,
        "host": platform.node(),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(source_dir) if source_dir else None,
        "code_digest": code_digest(
            cell_source=(Path(project_dir or Path.cwd()) / custom["file"]) if custom else None
        ),
        "cell_class": custom,
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


# Settings that may differ between cells: model.units as a mapping, the LSTM's forget-gate
# bias, a user's cell's class, and the engine (auto trains a user's cell on Keras, the others
# on the fused engine where no GPU is visible: their losses compare, their times do not, and
# the speed claim says so).
PER_CELL_SETTINGS = ("units", "unit_forget_bias", "cell_class", "engine")


def _shared_settings(run: dict) -> str:
    settings = run.get("settings", {})
    shared = {key: value for key, value in settings.items() if key not in PER_CELL_SETTINGS}
    return hashlib.sha256(json.dumps(shared, sort_keys=True).encode()).hexdigest()[:16]


def check_comparable(runs: dict[str, dict]) -> None:
    """Refuse to compare runs that trained on different data, with different settings or on
    different engines.

    ``runs`` maps a run's name (e.g. ``lstm/seed_0``) to its ``run.json`` record: the runs of
    one condition. Only the cell and the seed may differ between them, and the settings a cell
    may have of its own (``PER_CELL_SETTINGS``) only between cells.
    """
    cells = sorted({run["cell"] for run in runs.values()})
    checks = [
        ("data (sha256 of the data file)", lambda run: run["data"]["sha256"], runs),
        ("settings (apart from per-cell units)", _shared_settings, runs),
    ]
    for cell in cells:
        same_cell = {name: run for name, run in runs.items() if run["cell"] == cell}
        checks.append((f"{cell} engine", lambda run: run.get("engine", "keras"), same_cell))
        checks.append(
            (f"{cell} settings (settings_hash)", lambda run: run["settings_hash"], same_cell)
        )

    for what, key, group_runs in checks:
        groups: dict[str, list[str]] = {}
        for name, run in group_runs.items():
            groups.setdefault(key(run), []).append(name)
        if len(groups) > 1:
            described = "; ".join(
                f"{value[:12]}: {', '.join(names)}" for value, names in groups.items()
            )
            raise ValueError(
                f"the runs were not trained on the same {what}, so they cannot be compared: "
                f"{described}. Rerun the out-of-date runs (snakemake --forcerun ...)."
            )
