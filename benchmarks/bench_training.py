"""Benchmark: seconds per epoch of each training engine against plain Keras ``model.fit``.

Run from the project folder (after ``make setup``):

    .venv/bin/python benchmarks/bench_training.py                 # the original shape
    .venv/bin/python benchmarks/bench_training.py --steps 2000    # shorter sequences

The baseline is a plain Keras model written here, independently of the project's code. Each
round times every (cell, engine) pair for a few epochs, one after another, so that a noisy
machine slows them alike; the table reports medians over all timed epochs and the ratio of the
baseline's median to each engine's. The first epoch of each measurement (tracing, compiling) is
not timed. It also times data generation and a Snakemake dry run over a finished workflow of
10 runs (the no-op overhead). Results go to a CSV as well.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from rnn_cell_bench.data import DataSettings, make_arrays, write_dataset  # noqa: E402
from rnn_cell_bench.runtime import configure_threads  # noqa: E402
from rnn_cell_bench.settings import TrainSettings  # noqa: E402
from rnn_cell_bench.training import train  # noqa: E402

ENGINES = ("keras-fit baseline", "keras", "fused")


def baseline_epoch_seconds(cell: str, inputs, targets, epochs: int) -> list[float]:
    """Plain Keras: the original's model and optimizer, as a user would write them."""
    import keras

    layer = (
        keras.layers.LSTM(16, return_sequences=True)
        if cell == "lstm"
        else (keras.layers.GRU(16, return_sequences=True))
    )
    model = keras.Sequential([keras.Input(shape=(None, 1)), layer, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.001, global_clipnorm=1.0), loss="mse")
    seconds: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    model.fit(
        inputs,
        targets,
        batch_size=len(inputs),
        epochs=epochs + 1,
        shuffle=False,
        verbose=0,
        callbacks=[Timer()],
    )
    return seconds[1:]


def engine_epoch_seconds(engine: str, cell: str, inputs, targets, epochs: int) -> list[float]:
    settings = TrainSettings(epochs=epochs + 1, engine=engine)
    result = train(inputs, targets, cell, seed=0, settings=settings, log=lambda line: None)
    return result.seconds[1:]


def time_data_generation(settings: DataSettings, repeats: int = 5) -> tuple[float, float]:
    """Median seconds to generate the arrays, and to generate and write the HDF5 file."""
    generate, write = [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            started = time.perf_counter()
            make_arrays(settings)
            generate.append(time.perf_counter() - started)
            started = time.perf_counter()
            write_dataset(settings, Path(folder) / "data.h5")
            write.append(time.perf_counter() - started)
    return statistics.median(generate), statistics.median(write)


def time_noop_dry_run(repeats: int = 3) -> float:
    """Median seconds of ``snakemake -n`` over a finished workflow of 10 runs (tiny config)."""
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        for name in ("Snakefile", "config.yaml", "workflow", "envs"):
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("*.pyc"))
            else:
                shutil.copy2(source, project / name)
        tiny = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
        tiny["seeds"] = [0, 1, 2, 3, 4]  # 2 cells x 5 seeds: 10 runs
        (project / "tiny.yaml").write_text(yaml.safe_dump(tiny))
        base = [snakemake, "--configfile", "tiny.yaml"]
        subprocess.run(
            [*base, "--cores", "2", "--resources", "gpu=1"],
            cwd=project,
            check=True,
            capture_output=True,
        )
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            result = subprocess.run(
                [*base, "--dry-run"], cwd=project, check=True, capture_output=True, text=True
            )
            seconds.append(time.perf_counter() - started)
            assert "Nothing to be done" in result.stdout + result.stderr
    return statistics.median(seconds)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20000, help="time steps per sequence")
    parser.add_argument("--sequences", type=int, default=40, help="sequences (one batch)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=2, help="threads per engine")
    parser.add_argument("--cells", default="lstm,gru")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--skip-dry-run", action="store_true", help="skip the Snakemake timing")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "training.csv"
    )
    args = parser.parse_args()

    configure_threads(args.threads)
    from rnn_cell_bench.runtime import device_name

    cells = args.cells.split(",")
    engines = args.engines.split(",")
    data = DataSettings(n_sequences=args.sequences, n_steps=args.steps)
    inputs, targets, _, _ = make_arrays(data)
    machine = f"{cpu_name()}, {os.cpu_count()} cores, {device_name()}"
    print(f"machine: {machine}; data {inputs.shape}; {args.threads} threads", flush=True)

    timings: dict[tuple[str, str], list[float]] = {(c, e): [] for c in cells for e in engines}
    for round_number in range(1, args.rounds + 1):
        for cell in cells:
            for engine in engines:
                if engine == "keras-fit baseline":
                    seconds = baseline_epoch_seconds(cell, inputs, targets, args.epochs)
                else:
                    seconds = engine_epoch_seconds(engine, cell, inputs, targets, args.epochs)
                timings[(cell, engine)].extend(seconds)
                print(
                    f"round {round_number}: {cell:4s} {engine:18s} "
                    + " ".join(f"{s:.3f}" for s in seconds),
                    flush=True,
                )

    rows = []
    for cell in cells:
        baseline = (
            statistics.median(timings[(cell, "keras-fit baseline")])
            if ("keras-fit baseline" in engines)
            else float("nan")
        )
        for engine in engines:
            median = statistics.median(timings[(cell, engine)])
            rows.append(
                {
                    "measure": "sec_per_epoch",
                    "cell": cell,
                    "engine": engine,
                    "seconds": median,
                    "min": min(timings[(cell, engine)]),
                    "max": max(timings[(cell, engine)]),
                    "n": len(timings[(cell, engine)]),
                    "speedup_vs_baseline": baseline / median,
                }
            )
    generate, write = time_data_generation(data)
    rows.append({"measure": "data_generation", "seconds": generate, "n": 5})
    rows.append({"measure": "data_generation_and_write", "seconds": write, "n": 5})
    if not args.skip_dry_run:
        rows.append(
            {"measure": "snakemake_noop_dry_run_10_runs", "seconds": time_noop_dry_run(), "n": 3}
        )

    shape = f"{args.sequences} x {args.steps}"
    print(f"\nSeconds per epoch at {shape}, median of {args.rounds} x {args.epochs} epochs")
    print(
        f"{'cell':5s} {'engine':20s} {'s/epoch':>9s} {'min':>8s} {'max':>8s} {'vs baseline':>12s}"
    )
    for row in rows:
        if row["measure"] == "sec_per_epoch":
            print(
                f"{row['cell']:5s} {row['engine']:20s} {row['seconds']:9.3f} {row['min']:8.3f} "
                f"{row['max']:8.3f} {row['speedup_vs_baseline']:11.1f}x"
            )
    for row in rows:
        if row["measure"] != "sec_per_epoch":
            print(f"{row['measure']}: {row['seconds']:.3f} s (median of {row['n']})")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    fields = ["measure", "cell", "engine", "seconds", "min", "max", "n", "speedup_vs_baseline"]
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*fields, "shape", "threads", "machine"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "shape": shape, "threads": args.threads, "machine": machine})
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
