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

``--targets`` times the fused engine alone in a fresh process per instruction set (numba's
``NUMBA_CPU_NAME``: the host, ``haswell`` for AVX2, ``x86-64`` for the SSE2 baseline) and
thread count, with its own numba cache, so the first call's compile time is measured too;
the ratios are against the Keras ``fit`` baseline of the same run:

    .venv/bin/python benchmarks/bench_training.py --targets host,haswell,x86-64 --threads 1,2

``--floor`` times the fused engine per instruction set and thread count against the arithmetic
floor: the kernels' float32 operations (:mod:`rnn_cell_bench.costs`) at ``--ops-per-cycle``
per cycle and the clock measured with a chain of dependent integer operations:

    .venv/bin/python benchmarks/bench_training.py --floor --threads 1,2

``--heldout`` times the fused engine's held-out evaluation (the generator's held-out
sequences, forward only) against its training epoch, and prints what evaluating every N epochs
costs relative to training:

    .venv/bin/python benchmarks/bench_training.py --heldout --threads 2
"""

from __future__ import annotations

import argparse
import csv
import json
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
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from rnn_cell_bench.data import DataSettings, make_arrays, make_dataset, write_dataset  # noqa: E402
from rnn_cell_bench.runtime import configure_threads  # noqa: E402
from rnn_cell_bench.settings import TrainSettings  # noqa: E402
from rnn_cell_bench.training import train  # noqa: E402

ENGINES = ("keras-fit baseline", "keras", "fused")


def baseline_epoch_seconds(cell: str, inputs, targets, epochs: int) -> list[float]:
    """Plain Keras: the original's model and optimizer, as a user would write them."""
    import keras

    layer_class = {
        "lstm": keras.layers.LSTM,
        "gru": keras.layers.GRU,
        "rnn": keras.layers.SimpleRNN,
    }
    layer = layer_class[cell](16, return_sequences=True)
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


def job_overhead(preset: str) -> list[dict]:
    """Run ``snakemake`` on ``preset`` in a fresh copy of the project (numba's cache included)
    and read back, per training job, Snakemake's benchmark (wall time, peak memory) and the
    epochs' own seconds from ``history.csv``: overhead = wall time minus the epochs."""
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        for name in ("Snakefile", "config.yaml", "workflow", "envs", "presets"):
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("*.pyc"))
            else:
                shutil.copy2(source, project / name)
        command = [snakemake, "--cores", "2", "--resources", "gpu=1", "--configfile", preset]
        started = time.perf_counter()
        subprocess.run(command, cwd=project, check=True, capture_output=True)
        print(f"{preset}: the whole workflow took {time.perf_counter() - started:.1f} s")
        # an experiment's outputs are under results/<name>/, the preset's name or the default's
        experiment = (yaml.safe_load((project / preset).read_text()) or {}).get("name") or (
            yaml.safe_load((project / "config.yaml").read_text()).get("name", "default")
        )
        results = project / "results" / experiment
        for tsv in sorted((results / "benchmarks" / "train").rglob("*.tsv")):
            cell, seed = tsv.parent.name, tsv.stem
            bench = pd.read_csv(tsv, sep="\t").iloc[0]
            history = pd.read_csv(results / "runs" / cell / seed / "history.csv")
            epochs = float(history["seconds"].sum())
            rows.append(
                {
                    "job": f"{cell}/{seed}",
                    "wall_s": float(bench["s"]),
                    "epochs_s": epochs,
                    "overhead_s": float(bench["s"]) - epochs,
                    "max_rss_mb": float(bench["max_rss"]),
                }
            )
    if not rows:
        raise SystemExit(f"{preset}: no training benchmarks found under {results}")
    return rows


# Times the fused engine (loss, gradients and the Adam step) in a process of its own.
FUSED_TIMING = """
import json, sys, time
import numba
import numpy as np
from rnn_cell_bench.cells import cell_spec
from rnn_cell_bench.data import DataSettings, make_arrays
from rnn_cell_bench.fused import FusedAdam, loss_and_gradients

cell, threads, sequences, steps, epochs = sys.argv[1:6]
numba.set_num_threads(int(threads))
inputs, targets, _, _ = make_arrays(DataSettings(n_sequences=int(sequences), n_steps=int(steps)))
rng = np.random.default_rng(0)
spec = cell_spec(cell)
gates = spec.width * 16
weights = [rng.normal(0, 0.3, (1, gates)), rng.normal(0, 0.2, (16, gates)),
           np.zeros(spec.bias_shape(16)), rng.normal(0, 0.2, (16, 1)), np.zeros(1)]
weights = [np.asarray(w, dtype=np.float32) for w in weights]
adam = FusedAdam([w.shape for w in weights], 0.001, 1.0, "global")
started = time.perf_counter()
loss_and_gradients(cell, inputs[:, :10], targets[:, :10], weights)  # compiles or loads
first = time.perf_counter() - started
seconds = []
for _ in range(int(epochs)):
    started = time.perf_counter()
    loss, grads = loss_and_gradients(cell, inputs, targets, weights)
    adam.apply(grads, weights)
    seconds.append(time.perf_counter() - started)
print(json.dumps({"first_call": first, "seconds": seconds}))
"""


def fused_target_seconds(
    cell: str, cpu: str, threads: int, args: argparse.Namespace, cache: Path
) -> dict:
    """First-call and per-epoch seconds of the fused engine under ``NUMBA_CPU_NAME=cpu``."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow"), "NUMBA_CACHE_DIR": str(cache)}
    env.pop("NUMBA_CPU_NAME", None)
    env.pop("NUMBA_CPU_FEATURES", None)
    if cpu != "host":
        env["NUMBA_CPU_NAME"] = cpu
    command = [sys.executable, "-c", FUSED_TIMING, cell, str(threads)]
    command += [str(args.sequences), str(args.steps), str(args.epochs)]
    result = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


CLOCK_CHAIN = """
import sys, time
from numba import njit

@njit(cache=False)
def chain(n, x):
    # (x + c) and (x >> 7) in parallel, then the xor: 2 dependent 1-cycle integer operations
    # per iteration on every x86-64 core, which no compiler can fold into fewer
    for _ in range(n):
        x = (x + 0x9E3779B9) ^ (x >> 7)
    return x

n = int(sys.argv[1])
chain(1000, 1)
best = float("inf")
for _ in range(5):
    started = time.perf_counter()
    chain(n, 12345)
    best = min(best, time.perf_counter() - started)
print(2 * n / best)
"""


def clock_hz(iterations: int = 300_000_000) -> float:
    """The core's clock while it runs, from a chain of dependent integer operations (the
    fastest of 5 repeats, in a process of its own so that nothing else shares it)."""
    command = [sys.executable, "-c", CLOCK_CHAIN, str(iterations)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return float(result.stdout.strip().splitlines()[-1])


def run_floor(args: argparse.Namespace, thread_counts: list[int]) -> None:
    """Each cell's s/epoch per instruction set against the arithmetic floor of one core."""
    from rnn_cell_bench.costs import float_operations, floor_seconds

    cells, targets = args.cells.split(","), args.targets.split(",")
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; flags: {cpu_flags()}", flush=True)
    hz = clock_hz()
    print(f"clock (dependent integer chain): {hz / 1e9:.2f} GHz", flush=True)
    times: dict[tuple, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for round_number in range(1, args.rounds + 1):
            for cell in cells:
                for cpu in targets:
                    for threads in thread_counts:
                        timing = fused_target_seconds(
                            cell, cpu, threads, args, Path(folder) / f"cache-{cpu}"
                        )
                        # the steady state: the first full epoch also allocates the
                        # workspaces (page faults), which later epochs reuse
                        times.setdefault((cell, cpu, threads), []).extend(timing["seconds"][1:])
                        print(
                            f"round {round_number}: {cell} {cpu} {threads} threads "
                            + " ".join(f"{s:.3f}" for s in timing["seconds"]),
                            flush=True,
                        )
    per_cycle = args.ops_per_cycle
    print(
        f"\nFloor: the kernels' float32 operations (rnn_cell_bench.costs) at {per_cycle:g} per "
        f"cycle (no FMA, which would change the bits) and {hz / 1e9:.2f} GHz, one core; "
        f"{args.sequences} x {args.steps}, 16 units, median of {args.rounds} x "
        f"{args.epochs - 1} epochs (each process's first left out)"
    )
    header = f"{'cell':5s} {'ops/step':>8s} {'target':8s} {'threads':>7s} {'s/epoch':>8s}"
    print(f"{header} {'floor':>7s} {'x floor':>8s} {'speed-up':>8s}")
    rows = []
    for cell in cells:
        operations = float_operations(cell, 16)["total"]
        floor = floor_seconds(cell, args.sequences, args.steps, hz, per_cycle)
        for cpu in targets:
            one = statistics.median(times[(cell, cpu, thread_counts[0])])
            for threads in thread_counts:
                median = statistics.median(times[(cell, cpu, threads)])
                # the floor of `threads` cores
                ratio = median / (floor / threads)
                print(
                    f"{cell:5s} {operations:8d} {cpu:8s} {threads:7d} {median:8.3f} "
                    f"{floor / threads:7.3f} {ratio:7.2f}x {one / median:7.2f}x"
                )
                rows.append([cell, operations, cpu, threads, median, floor / threads, ratio])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = args.out.with_name(args.out.stem + "_floor.csv")
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["cell", "ops_per_step", "target", "threads", "sec_per_epoch", "floor", "ratio"]
        )
        writer.writerows(rows)
    print(f"\nwrote {out} (machine: {cpu_name()}; flags: {cpu_flags()}; clock {hz / 1e9:.2f} GHz)")


def cpu_flags() -> str:
    """The SIMD flags of this CPU that matter to the kernels."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                wanted = ("sse2", "avx", "avx2", "fma", "avx512f")
                return " ".join(flag for flag in wanted if flag in flags)
    except OSError:
        pass
    return platform.machine()


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
    parser.add_argument(
        "--threads", default="2", help="threads per engine (with --targets: a list)"
    )
    parser.add_argument(
        "--targets",
        default="",
        help="time the fused engine per NUMBA_CPU_NAME, e.g. host,haswell,x86-64",
    )
    parser.add_argument("--cells", default="lstm,gru")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--skip-dry-run", action="store_true", help="skip the Snakemake timing")
    parser.add_argument(
        "--job-overhead",
        metavar="PRESET",
        default="",
        help="measure per-job overhead and memory over a snakemake run of PRESET "
        "(e.g. presets/quick.yaml) instead of epoch times",
    )
    parser.add_argument(
        "--heldout",
        action="store_true",
        help="time the fused engine's held-out evaluation against its epoch",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="time the fused engine per --targets and --threads against the arithmetic floor",
    )
    parser.add_argument(
        "--ops-per-cycle",
        type=float,
        default=32.0,
        help="float32 operations one core retires per cycle without FMA (32: 4 pipes x 8 "
        "lanes, Zen 3 and Zen 4 with AVX2 or AVX-512)",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "training.csv"
    )
    args = parser.parse_args()

    if args.heldout:
        run_heldout(args)
        return

    if args.job_overhead:
        rows = pd.DataFrame(job_overhead(args.job_overhead))
        print(f"machine: {cpu_name()}, {os.cpu_count()} cores, CPU flags: {cpu_flags()}")
        print(rows.to_string(index=False, float_format="%.2f"))
        print(
            f"median per job: overhead {rows.overhead_s.median():.2f} s, "
            f"peak memory {rows.max_rss_mb.median():.0f} MB (max {rows.max_rss_mb.max():.0f})"
        )
        return
    thread_counts = [int(n) for n in args.threads.split(",")]
    args.threads = thread_counts[-1]
    if args.floor:
        args.targets = args.targets or "host,haswell,x86-64"
        run_floor(args, thread_counts)
        return
    if args.targets:
        run_targets(args, thread_counts)
        return
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


def run_heldout(args: argparse.Namespace) -> None:
    """Per cell: the median fused epoch and held-out evaluation, and the cost of evaluating
    every N epochs (one evaluation per N epochs, as a share of their training time)."""
    from rnn_cell_bench.engines import FusedEngine
    from rnn_cell_bench.models import initial_weights

    configure_threads(int(args.threads))
    dataset = make_dataset(DataSettings(n_sequences=args.sequences, n_steps=args.steps))
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, CPU flags: {cpu_flags()}; training "
        f"{dataset.inputs.shape}, held out {dataset.heldout_inputs.shape}; "
        f"{args.threads} threads",
        flush=True,
    )
    for cell in args.cells.split(","):
        settings = TrainSettings(engine="fused")
        weights = initial_weights(cell, settings.units, 0)
        engine = FusedEngine(cell, settings, dataset.inputs, dataset.targets, weights)
        epochs, evaluations = [], []
        for round_ in range(args.rounds * args.epochs + 1):
            started = time.perf_counter()
            engine.run_epoch()
            middle = time.perf_counter()
            engine.evaluate(dataset.heldout_inputs, dataset.heldout_targets, 0)
            ended = time.perf_counter()
            if round_:  # the first of each: workspaces allocated, caches cold
                epochs.append(middle - started)
                evaluations.append(ended - middle)
        epoch, evaluation = statistics.median(epochs), statistics.median(evaluations)
        costs = ", ".join(
            f"every {n}: {100 * evaluation / (n * epoch):.1f}%" for n in (1, 5, 10, 20)
        )
        print(
            f"{cell}: {epoch:.3f} s/epoch, held-out evaluation {evaluation:.3f} s "
            f"(medians of {len(epochs)}); cost {costs}"
        )


def run_targets(args: argparse.Namespace, thread_counts: list[int]) -> None:
    """The fused engine per instruction set and thread count against Keras ``fit``."""
    configure_threads(max(thread_counts))
    cells, targets = args.cells.split(","), args.targets.split(",")
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; flags: {cpu_flags()}", flush=True)
    data = DataSettings(n_sequences=args.sequences, n_steps=args.steps)
    inputs, targets_array, _, _ = make_arrays(data)
    fused: dict[tuple, list[float]] = {}
    compile_seconds: dict[tuple, float] = {}
    baseline: dict[str, list[float]] = {cell: [] for cell in cells}
    with tempfile.TemporaryDirectory() as folder:
        for round_number in range(1, args.rounds + 1):
            for cell in cells:
                seconds = baseline_epoch_seconds(cell, inputs, targets_array, args.epochs)
                baseline[cell].extend(seconds)
                print(f"round {round_number}: {cell} keras fit {seconds}", flush=True)
                for cpu in targets:
                    for threads in thread_counts:
                        timing = fused_target_seconds(
                            cell, cpu, threads, args, Path(folder) / f"cache-{cpu}"
                        )
                        fused.setdefault((cell, cpu, threads), []).extend(timing["seconds"])
                        compile_seconds.setdefault((cell, cpu), timing["first_call"])
                        print(
                            f"round {round_number}: {cell} fused {cpu} {threads} threads "
                            + " ".join(f"{s:.3f}" for s in timing["seconds"]),
                            flush=True,
                        )
    shape = f"{args.sequences} x {args.steps}"
    print(f"\nFused engine, s/epoch at {shape}, median of {args.rounds} x {args.epochs} epochs")
    print(f"{'cell':5s} {'target':8s} {'threads':>7s} {'s/epoch':>8s} {'vs fit':>7s}")
    rows = []
    for cell in cells:
        fit = statistics.median(baseline[cell])
        print(f"{cell:5s} {'keras':8s} {max(thread_counts):7d} {fit:8.3f} {1:6.1f}x")
        for cpu in targets:
            for threads in thread_counts:
                median = statistics.median(fused[(cell, cpu, threads)])
                print(f"{cell:5s} {cpu:8s} {threads:7d} {median:8.3f} {fit / median:6.1f}x")
                rows.append([cell, cpu, threads, median, fit, fit / median])
    print("\nFirst call in a fresh process and cache (numba compile), seconds:")
    for (cell, cpu), seconds in compile_seconds.items():
        print(f"{cell:5s} {cpu:8s} {seconds:6.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = args.out.with_name(args.out.stem + "_targets.csv")
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cell", "target", "threads", "sec_per_epoch", "keras_fit", "speedup"])
        writer.writerows(rows)
        for (cell, cpu), seconds in compile_seconds.items():
            writer.writerow([cell, cpu, "compile", seconds, "", ""])
    print(f"\nwrote {out} (machine: {cpu_name()}; flags: {cpu_flags()})")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
