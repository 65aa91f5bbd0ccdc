"""GPU slots: each training job on a GPU of its own, tested with fake GPU ids on any machine."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_project, planned_jobs, snakemake

from rnn_cell_bench import gpu_slots
from rnn_cell_bench.gpu_slots import (
    FAKE_GPUS,
    LOCK_DIR,
    SCHEDULER_JOB_VARIABLES,
    SlotsBusy,
    claim_gpu,
    parse_nvidia_smi,
)
from rnn_cell_bench.runtime import nvidia_devices_present

# A training job in miniature: claim a slot, prove no other process holds the same one (an
# O_EXCL marker per slot), record the claim, hold it until the test says release.
WORKER = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from rnn_cell_bench.gpu_slots import claim_gpu
state, jobs_per_gpu, mark = Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "mark"
claim = claim_gpu(jobs_per_gpu)
marker = state / f"busy-{claim.gpu.visible}-{claim.slot}"
if mark:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        print("SHARED", flush=True)
        sys.exit(3)
with open(state / "claims", "a") as claims:
    claims.write(f"{os.getpid()} {claim.gpu.visible} {claim.slot} "
                 f"{os.environ['CUDA_VISIBLE_DEVICES']}\\n")
release = state / f"release-{os.getpid()}"
while not release.exists():
    time.sleep(0.02)
if mark:
    marker.unlink()
"""


def clean_env(tmp_path, fake: str, **extra) -> dict:
    """This process's environment with fake GPUs, a private lock directory, and no GPU
    setting or scheduler job of the machine the tests run on."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in (*SCHEDULER_JOB_VARIABLES, "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")
    }
    env.update({FAKE_GPUS: fake, LOCK_DIR: str(tmp_path / "locks"), **extra})
    return env


def wait_until(condition, what: str, limit: float = 120):
    """Poll ``condition`` (no test depends on how long it takes, only on it coming true)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


class Workers:
    def __init__(self, tmp_path, env, jobs_per_gpu=1, mark=True):
        self.state = tmp_path / "state"
        self.state.mkdir()
        self.env, self.jobs_per_gpu, self.mark = env, jobs_per_gpu, mark
        self.processes: list[subprocess.Popen] = []

    def start(self, count: int):
        for _ in range(count):
            out = self.state / f"out-{len(self.processes)}"
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        WORKER,
                        str(REPO / "workflow"),
                        str(self.state),
                        str(self.jobs_per_gpu),
                        "mark" if self.mark else "no",
                    ],
                    env=self.env,
                    stdout=out.open("w"),
                    stderr=subprocess.STDOUT,
                )
            )

    def claims(self) -> list[tuple[int, str, int, str]]:
        path = self.state / "claims"
        lines = path.read_text().splitlines() if path.exists() else []
        return [(int(p), gpu, int(slot), cvd) for p, gpu, slot, cvd in map(str.split, lines)]

    def output(self, process) -> str:
        return (self.state / f"out-{self.processes.index(process)}").read_text()

    def holders(self) -> list[int]:
        return [pid for pid, *_ in self.claims()]

    def release(self, pids):
        for pid in pids:
            (self.state / f"release-{pid}").touch()

    def waiting(self) -> list[subprocess.Popen]:
        claimed = set(self.holders())
        return [p for p in self.processes if p.pid not in claimed]

    def finish(self):
        self.release(p.pid for p in self.processes)
        for process in self.processes:
            process.wait(timeout=120)

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_more_jobs_than_slots_wait_never_share_and_reuse_every_slot(tmp_path):
    workers = Workers(tmp_path, clean_env(tmp_path, "0,1"))
    try:
        workers.start(5)
        wait_until(lambda: len(workers.claims()) == 2, "two jobs hold the two slots")
        first = workers.claims()
        assert {(gpu, slot) for _, gpu, slot, _ in first} == {("0", 0), ("1", 0)}
        assert all(gpu == cvd for _, gpu, _, cvd in first)  # CUDA_VISIBLE_DEVICES narrowed
        for process in workers.waiting():
            wait_until(
                lambda p=process: "waiting for a free GPU slot" in workers.output(p),
                "the other three say they wait",
            )
        assert len(workers.claims()) == 2  # still: nobody took a held slot

        workers.release(pid for pid, *_ in first)
        wait_until(lambda: len(workers.claims()) == 4, "two waiting jobs take the freed slots")
        second = workers.claims()[2:]
        assert {(gpu, slot) for _, gpu, slot, _ in second} == {("0", 0), ("1", 0)}

        workers.release(pid for pid, *_ in second)
        wait_until(lambda: len(workers.claims()) == 5, "the last job gets a slot")
        workers.finish()
        assert [p.returncode for p in workers.processes] == [0] * 5
        assert not any("SHARED" in workers.output(p) for p in workers.processes)
    finally:
        workers.stop()


def test_a_sigkilled_holder_frees_its_slot(tmp_path):
    workers = Workers(tmp_path, clean_env(tmp_path, "7"), mark=False)
    try:
        workers.start(1)
        wait_until(lambda: len(workers.claims()) == 1, "the first job holds the only slot")
        holder = workers.processes[0]
        workers.start(1)
        waiter = workers.processes[1]
        wait_until(lambda: "waiting for a free GPU slot" in workers.output(waiter), "it waits")
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        wait_until(lambda: len(workers.claims()) == 2, "the waiting job gets the slot")
        assert workers.claims()[1][:3] == (waiter.pid, "7", 0)
        workers.finish()
        assert waiter.returncode == 0
    finally:
        workers.stop()


def test_slots_fill_across_gpus_first_and_jobs_per_gpu_share_a_gpu(tmp_path):
    env = clean_env(tmp_path, "0,1")
    claims = []
    try:
        for _ in range(4):
            job_env = dict(env)
            claims.append(claim_gpu(2, env=job_env, wait=False))
            assert job_env["CUDA_VISIBLE_DEVICES"] == claims[-1].gpu.visible
        assert [(c.gpu.visible, c.slot) for c in claims] == [("0", 0), ("1", 0), ("0", 1), ("1", 1)]
        with pytest.raises(SlotsBusy):
            claim_gpu(2, env=dict(env), wait=False)
        claims[2].release()
        claims[2] = claim_gpu(2, env=dict(env), wait=False)
        assert (claims[2].gpu.visible, claims[2].slot) == ("0", 1)
        record = claims[0].record()
        assert record["index"] == 0 and record["name"] == "fake GPU 0"
        assert record["cuda_visible_devices"] == "0" and record["assigned_by"] == "gpu_slots"
        assert dt.datetime.fromisoformat(record["claimed_at"]).tzinfo is not None
        json.dumps(record)
    finally:
        for claim in claims:
            claim.release()


def test_the_users_cuda_visible_devices_limits_the_gpus_handed_out(tmp_path):
    env = clean_env(tmp_path, "0,1,2,3", CUDA_VISIBLE_DEVICES="3,1")
    claims = []
    try:
        for expected in ("3", "1"):
            job_env = dict(env)
            claims.append(claim_gpu(1, env=job_env, wait=False))
            assert job_env["CUDA_VISIBLE_DEVICES"] == expected
            assert claims[-1].record()["index"] == int(expected)
            assert "CUDA_DEVICE_ORDER" not in job_env  # the user's numbering, unchanged
        with pytest.raises(SlotsBusy):
            claim_gpu(1, env=dict(env), wait=False)
    finally:
        for claim in claims:
            claim.release()
    for hidden in ("", "-1"):
        job_env = clean_env(tmp_path, "0,1", CUDA_VISIBLE_DEVICES=hidden)
        assert claim_gpu(1, env=job_env) is None
        assert job_env["CUDA_VISIBLE_DEVICES"] == hidden


@pytest.mark.parametrize("scheduler", SCHEDULER_JOB_VARIABLES)
def test_a_schedulers_choice_is_left_alone(tmp_path, scheduler):
    env = clean_env(tmp_path, "0,1", CUDA_VISIBLE_DEVICES="1", **{scheduler: "42"})
    claim = claim_gpu(1, env=env)
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert claim.record()["assigned_by"] == "scheduler"
    assert (claim.slot, claim.lock, claim.gpu.index) == (None, None, 1)
    assert not (tmp_path / "locks").exists()
    # A scheduler's job that asked for no GPU does not take one
    env = clean_env(tmp_path, "0,1", **{scheduler: "42"})
    assert claim_gpu(1, env=env) is None
    assert "CUDA_VISIBLE_DEVICES" not in env


def test_without_a_gpu_nothing_is_claimed_or_set(tmp_path):
    env = clean_env(tmp_path, "")
    assert claim_gpu(1, env=env) is None
    assert "CUDA_VISIBLE_DEVICES" not in env and not (tmp_path / "locks").exists()
    with pytest.raises(ValueError, match="jobs_per_gpu"):
        claim_gpu(0, env=clean_env(tmp_path, "0"))


def test_machine_gpu_listing(tmp_path):
    listing = (
        "GPU 0: NVIDIA H200 (UUID: GPU-aaaa-1111)\n"
        "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-bbbb-2222)\n"
        "  MIG 1g.5gb     Device  0: (UUID: MIG-cccc-3333)\n"
    )
    gpus = parse_nvidia_smi(listing)
    assert [(g.index, g.name, g.visible) for g in gpus] == [
        (0, "NVIDIA H200", "GPU-aaaa-1111"),
        (1, "NVIDIA A100-SXM4-40GB", "GPU-bbbb-2222"),
    ]
    driver = tmp_path / "gpus"
    for bus, model, uuid in (
        ("0000:41:00.0", "NVIDIA H200", "GPU-bbbb"),
        ("0000:01:00.0", "NVIDIA H200", "GPU-aaaa"),
    ):
        (driver / bus).mkdir(parents=True)
        (driver / bus / "information").write_text(
            f"Model: \t\t {model}\nIRQ:   \t\t 42\nGPU UUID: \t {uuid}\nDevice Minor: \t 0\n"
        )
    assert [(g.index, g.visible) for g in gpu_slots._proc_gpus(driver)] == [
        (0, "GPU-aaaa"),
        (1, "GPU-bbbb"),
    ]


def overlaps(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_snakemake_runs_concurrent_jobs_on_distinct_gpus(tmp_path, monkeypatch):
    # Four fake GPUs of which the user allows two; two training jobs at a time
    for name in (*SCHEDULER_JOB_VARIABLES, "CUDA_DEVICE_ORDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(FAKE_GPUS, "0,1,2,3")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    monkeypatch.setenv(LOCK_DIR, str(tmp_path / "locks"))
    project = copy_project(tmp_path / "project")
    snakemake(project, "--resources", "gpu=2", "--cores", "4")

    spans = []
    for run_file in sorted((project / "results" / "default" / "runs").glob("*/seed_*/run.json")):
        gpu = json.loads(run_file.read_text())["gpu"]
        assert gpu["assigned_by"] == "gpu_slots" and gpu["slot"] == 0
        assert gpu["cuda_visible_devices"] in ("2", "0")
        assert gpu["name"] == f"fake GPU {gpu['cuda_visible_devices']}"
        # The claim, then run.json written while the slot is still held
        start = dt.datetime.fromisoformat(gpu["claimed_at"]).timestamp()
        spans.append(((start, run_file.stat().st_mtime), gpu["cuda_visible_devices"]))
        cell, seed = run_file.parent.parent.name, run_file.parent.name
        log = (
            project / "results" / "default" / "logs" / "train" / cell / f"{seed}.log"
        ).read_text()
        head = log.splitlines()[:3]
        assert any(
            line.startswith(f"gpu: GPU {gpu['index']}, fake GPU") and "slot 0" in line
            for line in head
        ), head
    assert len(spans) == 4
    concurrent = [
        (a, b) for i, a in enumerate(spans) for b in spans[i + 1 :] if overlaps(a[0], b[0])
    ]
    assert concurrent, "no two training jobs ran at the same time"
    assert all(a[1] != b[1] for a, b in concurrent), spans

    # More jobs per GPU is a scheduling choice: it reruns nothing
    path = project / "tiny.yaml"
    config = yaml.safe_load(path.read_text())
    config["train"]["jobs_per_gpu"] = 2
    path.write_text(yaml.safe_dump(config))
    assert planned_jobs(project) == {}


@pytest.mark.skipif(not nvidia_devices_present(), reason="needs an NVIDIA GPU")
def test_tensorflow_grows_gpu_memory_as_needed():
    code = (
        "from rnn_cell_bench.runtime import import_tensorflow\n"
        "tf = import_tensorflow()\n"
        "gpus = tf.config.list_physical_devices('GPU')\n"
        "print(bool(gpus) and all(tf.config.experimental.get_memory_growth(g) for g in gpus))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(REPO) / "workflow")},
        timeout=300,
    )
    assert result.stdout.strip().splitlines()[-1] == "True", result.stderr
