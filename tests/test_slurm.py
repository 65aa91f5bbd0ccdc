"""The SLURM profile against a real single-node SLURM cluster (tests/slurm/cluster.sh).

Needs root to start the cluster; without root these tests are skipped, with the reason shown.
A cluster that fails to start fails the tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, SNAKEMAKE, copy_project
from test_reliability import (
    CHECKPOINT,
    LOG,
    RUN,
    SLOW,
    TRAIN_ONLY,
    assert_same_run,
    configure,
)

CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
SLURM_ENV = {key: value for key, value in os.environ.items() if key != "SLURM_CONF"}
# For the test cluster only: it has no accounting database (so ask squeue, not sacct), and
# polling fast keeps the test short.
TEST_FLAGS = (
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--seconds-between-status-checks",
    "1",
    "--latency-wait",
    "5",
)


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("starting the SLURM test cluster needs root (apt-get, munge, slurmd)")
    started = subprocess.run([str(CLUSTER), "start"], capture_output=True, text=True, timeout=300)
    if started.returncode != 0:
        pytest.fail(f"the SLURM test cluster did not start:\n{started.stdout}\n{started.stderr}")
    yield
    subprocess.run([str(CLUSTER), "stop"], capture_output=True, timeout=60)


def slurm_command(*args: str, limit: int = 240) -> list[str]:
    # A plugin that cannot get a job's status can wait forever: SIGINT it after `limit`.
    return [
        "timeout", "-s", "INT", "-k", "30", str(limit),
        SNAKEMAKE, "--profile", "profiles/slurm", "--configfile", "tiny.yaml", *TEST_FLAGS, *args,
    ]  # fmt: skip


def run_on_slurm(project: Path, *args: str, limit: int = 240) -> str:
    result = subprocess.run(
        slurm_command(*args, limit=limit),
        cwd=project,
        capture_output=True,
        text=True,
        env=SLURM_ENV,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def slurm_jobs(project: Path) -> list[dict[str, str]]:
    """SLURM's own record of the recent jobs submitted from ``project``."""
    listing = subprocess.run(
        ["scontrol", "-o", "show", "job"], capture_output=True, text=True, check=True, env=SLURM_ENV
    ).stdout
    jobs = []
    for line in listing.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if fields.get("WorkDir") == str(project):
            jobs.append(fields)
    return jobs


def test_a_study_runs_its_training_jobs_as_gpu_jobs_and_matches_a_local_run(
    cluster, finished_project, tmp_path
):
    """A 2-condition study on the profile unchanged; the condition equal to the tiny config
    gives the local run's metrics."""
    project = copy_project(tmp_path / "project")
    configure(project, {"name": "on-slurm", "seeds": [0], "study": {"task.horizon": [5, 3]}})
    output = run_on_slurm(project)
    assert "submitted with SLURM jobid" in output

    jobs = slurm_jobs(project)
    training = [job for job in jobs if job["Comment"].startswith("rule_train")]
    assert len(training) == 2 * 2  # conditions x cells (one seed)
    for job in training:
        assert job["TresPerJob"] == "gres:gpu:1"  # sbatch --gpus=1
        assert job["JobState"] == "COMPLETED"
        assert job["NumCPUs"] == "2"  # train.threads
    # Cheap rules stay local: nothing else was submitted.
    assert len(jobs) == len(training)

    metrics = pd.read_csv(project / "results" / "on-slurm" / "metrics.csv")
    assert sorted(set(metrics["task.horizon"])) == [3, 5]
    ours = metrics[metrics["task.horizon"] == 5].drop(columns="task.horizon")
    ours = ours.reset_index(drop=True)
    local = pd.read_csv(finished_project / "results" / "default" / "metrics.csv")
    local = local[local["seed"] == 0].reset_index(drop=True)
    columns = ["cell", "seed", "status", "params", "device"]
    pd.testing.assert_frame_equal(ours[columns], local[columns])
    for name in ("final_loss", "best_loss", "volatility"):
        pd.testing.assert_series_equal(ours[name], local[name], rtol=1e-6)


def test_a_signalled_training_job_is_retried_and_resumes_at_the_epoch_in_flight(cluster, tmp_path):
    reference = copy_project(tmp_path / "reference")
    configure(reference, SLOW)
    # The uninterrupted run trains locally while the cluster job waits to start and restart.
    reference_run = subprocess.Popen(
        [SNAKEMAKE, "--configfile", "tiny.yaml", "--cores", "1", *TRAIN_ONLY],
        cwd=reference,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    project = copy_project(tmp_path / "project")
    configure(project, {**SLOW, "train": {**SLOW["train"], "keep_checkpoints": True}})
    process = subprocess.Popen(
        # The training job alone: the tables and the figure are local rules, not under test.
        slurm_command(str(RUN / "run.json"), limit=270),
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=SLURM_ENV,
    )
    try:
        deadline = time.monotonic() + 200
        while True:
            assert time.monotonic() < deadline, "training never got under way"
            assert process.poll() is None, process.stdout.read().decode()
            log = (project / LOG).read_text() if (project / LOG).exists() else ""
            epochs = [int(n) for n in re.findall(r"^epoch (\d+)/", log, re.MULTILINE)]
            if epochs and epochs[-1] >= 12:
                seen = epochs[-1]
                break
            time.sleep(0.05)
        (job,) = [j for j in slurm_jobs(project) if j["JobState"] == "RUNNING"]
        # What the profile's sbatch --signal=TERM@120 makes SLURM do before the time limit:
        # SIGTERM to every process of the job's steps (not to the batch shell).
        subprocess.run(["scancel", "--signal=TERM", job["JobId"]], check=True, env=SLURM_ENV)
        output, _ = process.communicate(timeout=280)
    except BaseException:
        reference_run.kill()
        raise
    finally:
        if process.poll() is None:
            process.kill()
    # Long done by now: the cluster run took two start-ups and the whole run's epochs.
    reference_output, _ = reference_run.communicate(timeout=120)
    assert reference_run.returncode == 0, reference_output
    output = output.decode()
    assert process.returncode == 0, output
    # every training job was submitted with the profile's early SIGTERM
    assert "slurm_extra=--signal=TERM@120" in output

    states = [j["JobState"] for j in slurm_jobs(project)]
    assert len(states) == 2 and states.count("COMPLETED") == 1, states
    log = (project / LOG).read_text()
    saved = int(re.search(r"SIGTERM: saved checkpoint at epoch (\d+)", log).group(1))
    resumed = int(re.search(r"resumed from checkpoint \S+ at epoch (\d+)", log).group(1))
    # The checkpoint holds the epoch in flight when SIGTERM arrived, not the last periodic one
    # (every 5 epochs here), and the retry starts right after it: no epoch is computed twice.
    assert resumed == saved and seen <= saved <= seen + 2, (seen, saved)
    rerun = log.split("resumed from checkpoint", 1)[1]
    assert int(re.search(r"^epoch (\d+)/", rerun, re.MULTILINE).group(1)) == resumed + 1
    assert_same_run(project, reference)
    assert (project / CHECKPOINT).exists()
    assert (project / RUN / "run.json").exists()
