"""Reliability through the real ``snakemake`` command: resume after SIGKILL and SIGTERM,
validated data files, divergence, and the provenance check in aggregation."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import h5py
import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SNAKEMAKE, copy_project, snakemake

from rnn_cell_bench.data import DataSettings, write_dataset
from rnn_cell_bench.provenance import code_digest
from rnn_cell_bench.runtime import device_name, resolve_engine

# Long enough per epoch (~0.1 s on 2 cores) that a signal lands mid-run.
SLOW = {
    "data": {"n_sequences": 16, "n_steps": 2000, "periods": [250, 1100]},
    "task": {"horizon": 20},
    "cells": ["lstm"],
    "seeds": [0],
    "train": {
        "epochs": 24,
        "checkpoint_every": 5,
        "log_every": 1,
        "eval_every": 4,
        "threads": 1,
        "engine": "keras",
    },
}
# The same for the fused engine, which needs the full data size to be as slow (~0.3 s).
SLOW_FUSED = {
    **SLOW,
    "data": {"n_sequences": 40, "n_steps": 20000, "periods": [250, 1100]},
    "train": {**SLOW["train"], "engine": "fused"},
}
SLOW_CONFIGS = {"keras": SLOW, "fused": SLOW_FUSED}
ENGINES = list(SLOW_CONFIGS)
RUN = Path("results/default/runs/lstm/seed_0")
# The training job alone: the resume tests read the run, not the tables or the figure.
TRAIN_ONLY = (str(RUN / "run.json"), "--resources", "gpu=1")
LOG = Path("results/default/logs/train/lstm/seed_0.log")
CHECKPOINT = Path("results/default/checkpoints/lstm/seed_0.npz")


def configure(project: Path, overrides: dict) -> None:
    path = project / "tiny.yaml"
    config = yaml.safe_load(path.read_text())
    for key, value in overrides.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """The slow configs run without interruption, one project per engine (made on demand)."""
    made = {}

    def reference(engine: str) -> Path:
        if engine not in made:
            project = copy_project(tmp_path_factory.mktemp(f"reference_{engine}") / "project")
            configure(project, SLOW_CONFIGS[engine])
            snakemake(project, *TRAIN_ONLY)
            made[engine] = project
        return made[engine]

    return reference


def signal_training(project: Path, signum: int, at_epoch: int, *args: str):
    """Start snakemake, send ``signum`` to the training process once it logged ``at_epoch``,
    and return (snakemake's exit code, its output, the epoch the signal was sent after)."""
    command = [SNAKEMAKE, "--configfile", "tiny.yaml", "--cores", "2", *args]
    process = subprocess.Popen(
        command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    log = project / LOG
    deadline = time.monotonic() + 300
    sent_after = None
    try:
        while sent_after is None:
            assert time.monotonic() < deadline, "training never reached the epoch"
            assert process.poll() is None, "snakemake ended before the signal"
            text = log.read_text() if log.exists() else ""
            pid = re.search(r"\(pid (\d+)\)", text)
            epochs = [int(n) for n in re.findall(r"^epoch (\d+)/", text, re.MULTILINE)]
            if pid and epochs and epochs[-1] >= at_epoch:
                os.kill(int(pid.group(1)), signum)
                sent_after = epochs[-1]
            time.sleep(0.02)
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, output, sent_after


def train_logs(project: Path) -> str:
    """Every training log (the first job to fail stops the others from starting)."""
    return "".join(p.read_text() for p in (project / "results/default/logs/train").rglob("*.log"))


def assert_same_run(project: Path, reference: Path) -> None:
    history = pd.read_csv(project / RUN / "history.csv")
    expected = pd.read_csv(reference / RUN / "history.csv")
    # The seconds column is wall time; epochs, losses and held-out losses must be bit-identical.
    columns = ["epoch", "loss", "heldout_loss"]
    pd.testing.assert_frame_equal(history[columns], expected[columns])
    assert list(history.dropna().epoch) == [4, 8, 12, 16, 20, 24]
    weights = keras.saving.load_model(project / RUN / "model.keras").get_weights()
    expected_weights = keras.saving.load_model(reference / RUN / "model.keras").get_weights()
    for got, want in zip(weights, expected_weights, strict=True):
        np.testing.assert_array_equal(got, want)


def test_sigkill_then_rerun_resumes_from_the_checkpoint(references, tmp_path):
    """A hard kill; the rerun resumes from the last periodic checkpoint. With the fused engine
    only: what a kill adds (the periodic checkpoint outliving the process, the killed attempt's
    log, --rerun-incomplete) belongs to the epoch loop both engines share, which saves and
    restores either engine through the same snapshot() and restore(); the Keras engine's own
    checkpoint and resume are proven by the SIGTERM test below."""
    reference = references("fused")
    project = copy_project(tmp_path / "project")
    configure(project, SLOW_FUSED)
    code, output, killed_after = signal_training(project, signal.SIGKILL, 12, *TRAIN_ONLY)
    assert code != 0, output
    assert (project / CHECKPOINT).exists()
    assert not (project / RUN / "history.csv").exists()

    snakemake(project, *TRAIN_ONLY, "--rerun-incomplete")
    log = (project / LOG).read_text()
    resumed = int(re.search(r"resumed from checkpoint \S+ at epoch (\d+)", log).group(1))
    assert resumed % 5 == 0 and killed_after - 5 < resumed <= killed_after
    # The killed attempt's log is kept; the rerun computed no epoch before the checkpoint.
    killed_attempt, rerun = log.split("=== attempt 2", 1)
    assert f"epoch {killed_after}/24" in killed_attempt
    assert f"epoch {resumed}/24" not in rerun
    assert_same_run(project, reference)
    assert not (project / CHECKPOINT).exists()  # removed once the run completed
    assert json.loads((project / RUN / "run.json").read_text())["resumed_from_epoch"] == resumed


@pytest.mark.parametrize("engine", ENGINES)
def test_sigterm_checkpoints_at_once_and_the_retry_resumes(references, tmp_path, engine):
    reference = references(engine)
    project = copy_project(tmp_path / "project")
    config = SLOW_CONFIGS[engine]
    configure(project, {**config, "train": {**config["train"], "keep_checkpoints": True}})
    code, output, sent_after = signal_training(
        project, signal.SIGTERM, 12, *TRAIN_ONLY, "--retries", "1"
    )
    assert code == 0, output
    log = (project / LOG).read_text()
    saved = int(re.search(r"SIGTERM: saved checkpoint at epoch (\d+)", log).group(1))
    resumed = int(re.search(r"resumed from checkpoint \S+ at epoch (\d+)", log).group(1))
    # The checkpoint holds the epoch in flight when SIGTERM arrived, not the last multiple of
    # 5, and the retry starts right after it: no epoch is computed twice.
    assert resumed == saved and sent_after <= saved <= sent_after + 1
    after_resume = log.split("resumed from checkpoint", 1)[1]
    first_epoch = int(re.search(r"^epoch (\d+)/", after_resume, re.MULTILINE).group(1))
    assert first_epoch == resumed + 1
    # Both attempts are in the log, the interrupted one first.
    assert log.count("=== attempt") == 2
    assert log.index("=== attempt 1") < log.index("SIGTERM") < log.index("=== attempt 2")
    assert_same_run(project, reference)
    assert (project / CHECKPOINT).exists()  # keep_checkpoints: true


def test_a_code_change_never_resumes_the_old_checkpoint(references, tmp_path):
    reference = references("fused")
    project = copy_project(tmp_path / "project")
    configure(project, SLOW_FUSED)
    code, output, _ = signal_training(project, signal.SIGKILL, 12, *TRAIN_ONLY)
    assert code != 0, output
    assert (project / CHECKPOINT).exists()
    models = project / "workflow/rnn_cell_bench/models.py"
    models.write_text(models.read_text() + "\n# a change that keeps the numbers\n")
    snakemake(project, *TRAIN_ONLY, "--rerun-incomplete")
    log = (project / LOG).read_text()
    assert f"ignoring checkpoint {CHECKPOINT}: it belongs to other settings, data or code" in log
    assert "resumed" not in log
    assert_same_run(project, reference)


def test_a_checkpoint_of_other_settings_is_never_resumed(tmp_path):
    """A real checkpoint of a shorter run is in place when the learning rate changes."""
    project = copy_project(tmp_path / "project")
    train = {**SLOW["train"], "epochs": 10, "keep_checkpoints": True, "engine": "fused"}
    configure(project, {**SLOW, "train": train})
    snakemake(project, *TRAIN_ONLY)
    assert (project / CHECKPOINT).exists()
    configure(project, {"train": {"epochs": 20, "learning_rate": 0.002}})
    snakemake(project, *TRAIN_ONLY)
    log = (project / LOG).read_text()
    assert f"ignoring checkpoint {CHECKPOINT}: it belongs to other settings, data or code" in log
    assert "resumed" not in log
    assert list(pd.read_csv(project / RUN / "history.csv").epoch) == list(range(1, 21))


def test_a_planted_pickle_checkpoint_never_runs(tmp_path):
    """Whoever can write into results/ must not be able to run code through a checkpoint."""
    from test_checkpoints import planted_checkpoint

    project = copy_project(tmp_path / "project")
    configure(project, {"cells": ["lstm"], "seeds": [0]})
    marker = tmp_path / "marker"
    (project / CHECKPOINT).parent.mkdir(parents=True)
    planted_checkpoint(project / CHECKPOINT, "any fingerprint", marker)
    stale = project / CHECKPOINT.parent / f".{CHECKPOINT.name}.999999.tmp"
    stale.write_bytes(b"left by a write that was killed")
    snakemake(project, *TRAIN_ONLY)
    assert not marker.exists()
    log = (project / LOG).read_text()
    assert f"ignoring unreadable checkpoint {CHECKPOINT}:" in log
    assert "allow_pickle=False" in log
    assert f"removed {stale.relative_to(project)}, left by an interrupted checkpoint write" in log
    assert not stale.exists()
    assert (project / RUN / "history.csv").exists()


def test_a_short_run_needs_no_checkpoint_setting(tmp_path):
    """Only train.epochs shortened: checkpoint_every (50) is beyond the run, which means no
    periodic checkpoint, not an error."""
    project = copy_project(tmp_path / "project")
    config = yaml.safe_load((project / "tiny.yaml").read_text())
    config["train"] = {"epochs": 4}
    config["seeds"] = [0]
    (project / "tiny.yaml").write_text(yaml.safe_dump(config))
    snakemake(project, "--resources", "gpu=1")
    metrics = pd.read_csv(project / "results/default/metrics.csv")
    assert len(metrics) == 2 and set(metrics.status) == {"completed"}
    assert not (project / "results/default/checkpoints").exists() or not any(
        (project / "results/default/checkpoints").rglob("*.npz")
    )


def test_training_refuses_a_corrupted_data_file(tmp_path):
    project = copy_project(tmp_path / "project")
    snakemake(project, "--resources", "gpu=1", "--until", "generate_data")
    (data_file,) = (project / "data").glob("*.h5")
    data_file.write_bytes(data_file.read_bytes()[:5000])  # bytes chopped off
    result = snakemake(project, "--resources", "gpu=1", check=False)
    assert result.returncode != 0
    log = train_logs(project)
    assert f"data file {data_file.relative_to(project)}: not a readable HDF5 data file" in log


def test_training_refuses_data_generated_with_other_settings(tmp_path):
    project = copy_project(tmp_path / "project")
    snakemake(project, "--resources", "gpu=1", "--until", "generate_data")
    (data_file,) = (project / "data").glob("*.h5")
    with h5py.File(data_file) as h5:
        settings = DataSettings.from_attrs(dict(h5.attrs))
    write_dataset(dataclasses.replace(settings, noise_std=0.3), data_file)
    result = snakemake(project, "--resources", "gpu=1", check=False)
    assert result.returncode != 0
    log = train_logs(project)
    assert "made with other settings than the config: noise_std=0.3 (config: 0.1)" in log


def test_diverged_runs_are_recorded_and_the_pipeline_completes(tmp_path):
    project = copy_project(tmp_path / "project")
    # A learning rate this large blows the read-out weights up to inf within an epoch or two.
    configure(project, {"train": {"learning_rate": 1.0e20}})
    snakemake(project, "--resources", "gpu=1")
    metrics = pd.read_csv(project / "results/default/metrics.csv")
    assert set(metrics.status) == {"diverged"}
    assert metrics.final_loss.isna().all()
    summary = pd.read_csv(project / "results/default/summary.csv")
    assert list(summary.n_diverged) == [2, 2]
    run = json.loads((project / "results/default/runs/gru/seed_1/run.json").read_text())
    assert run["status"] == "diverged" and run["final_loss"] is None
    assert (project / "results/default/figures/loss_curves.png").stat().st_size > 1000
    history = pd.read_csv(project / "results/default/runs/gru/seed_1/history.csv")
    assert not np.isfinite(history.loss.iloc[-1]) and len(history) < 4


def test_on_nan_fail_fails_the_job(tmp_path):
    project = copy_project(tmp_path / "project")
    configure(project, {"cells": ["gru"], "seeds": [0], "train": {"learning_rate": 1.0e20}})
    configure(project, {"train": {"on_nan": "fail"}})
    result = snakemake(project, "--resources", "gpu=1", check=False)
    assert result.returncode != 0
    log = (project / "results/default/logs/train/gru/seed_0.log").read_text()
    assert "failed (train.on_nan: fail): gru seed 0: loss" in log
    assert not (project / "results/default/metrics.csv").exists()


def test_aggregation_refuses_runs_with_different_settings(project_copy):
    configure(project_copy, {"train": {"epochs": 5}})
    # Retrain one run only, ignoring the params change elsewhere: the runs now disagree.
    result = snakemake(
        project_copy,
        "--resources",
        "gpu=1",
        "--rerun-triggers",
        "mtime",
        "--forcerun",
        "results/default/runs/gru/seed_0/run.json",
        check=False,
    )
    assert result.returncode != 0
    log = (project_copy / "results/default/logs/aggregate.log").read_text()
    assert "not trained on the same settings (apart from per-cell units)" in log
    assert re.search(r"\w+: gru/seed_0\.", log)


def test_run_records_provenance(finished_project):
    run = json.loads((finished_project / "results/default/runs/lstm/seed_0/run.json").read_text())
    assert run["status"] == "completed"
    assert len(run["settings_hash"]) == 16
    assert len(run["data"]["sha256"]) == 64
    assert run["host"] and run["device"] == device_name()
    assert run["engine"] == run["settings"]["engine"] == resolve_engine("auto")
    versions = run["versions"]
    for library in ("python", "numpy", "tensorflow", "keras", "h5py", "numba"):
        assert re.fullmatch(r"\d+\.\d+[\w.]*", versions[library]), library
    assert run["git_commit"] is None  # the test project is not a git checkout
    assert run["cpu"]["model"] and run["cpu"]["numba_cpu_name"] == "host"
    assert run["code_digest"] == code_digest()
    (other,) = {
        json.loads(p.read_text())["data"]["sha256"]
        for p in (finished_project / "results/default/runs").rglob("run.json")
    }
    assert other == run["data"]["sha256"]
