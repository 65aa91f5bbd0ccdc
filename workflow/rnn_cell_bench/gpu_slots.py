"""One GPU of its own for each training job on a local multi-GPU machine.

Snakemake's ``--resources gpu=N`` caps how many training jobs run at once, but it does not tell
a job *which* GPU is its own: every TensorFlow process would see every GPU and place its model
on GPU 0. Before TensorFlow is imported, :func:`claim_gpu` therefore takes one free *slot* and
narrows ``CUDA_VISIBLE_DEVICES`` to that slot's GPU.

Slots
    Each GPU has ``train.jobs_per_gpu`` slots (1 by default). A slot is a lock file,
    ``<lock dir>/<host>-gpu<id>-slot<k>.lock``, held with ``flock`` for as long as the job's
    process lives. The kernel drops the lock when the process ends, however it ends (a
    SIGKILLed job, a killed Snakemake), so no stale claim can block a GPU; a retried job is a
    new process and claims a slot afresh. A job that finds every slot held waits (saying so in
    its log) until one is free. Slots are filled across GPUs first: with two GPUs and two jobs
    per GPU, the first two jobs get a GPU each.

The lock directory
    ``RNN_CELL_BENCH_GPU_LOCK_DIR`` if set, else ``rnn-cell-bench-gpu-slots`` in the system's
    temporary directory (``/tmp``): one per machine, so that two experiments (two checkouts,
    two users) running at once never share a GPU either. The directory is created writable by
    all (like ``/tmp`` itself); a lock file only needs to be readable to be locked.

Which GPUs
    ``RNN_CELL_BENCH_FAKE_GPUS`` (comma-separated ids; for tests on machines without a GPU) if
    set; otherwise the GPUs ``nvidia-smi -L`` lists, or those under ``/proc/driver/nvidia/gpus``.
    A job on a machine without an NVIDIA GPU claims nothing. If the user set
    ``CUDA_VISIBLE_DEVICES`` (``2,3``, or GPU UUIDs), only those GPUs are handed out, and each
    job gets one of the user's entries as written. An empty value or ``-1`` means no GPU.

Schedulers
    Inside a batch scheduler's job (``SLURM_JOB_ID``, ``PBS_JOBID`` or ``LSB_JOBID`` is set) the
    scheduler decides which GPUs the job may use: ``CUDA_VISIBLE_DEVICES`` is left exactly as
    it is (set by the scheduler, or unset for a job that asked for no GPU) and no slot is
    taken. A ``CUDA_VISIBLE_DEVICES`` without one of these variables is the user's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FAKE_GPUS = "RNN_CELL_BENCH_FAKE_GPUS"
LOCK_DIR = "RNN_CELL_BENCH_GPU_LOCK_DIR"
SCHEDULER_JOB_VARIABLES = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID")
POLL_SECONDS = 0.5
_NVIDIA_SMI_GPU = re.compile(r"^GPU (\d+): (.*?) \(UUID: ([^)\s]+)\)")


class SlotsBusy(RuntimeError):
    """Every slot is held (only raised when not waiting)."""


@dataclass(frozen=True)
class Gpu:
    """A GPU as the machine lists it: ``index`` (as nvidia-smi numbers it; None when unknown),
    ``name`` (None when unknown) and ``visible`` (the value CUDA_VISIBLE_DEVICES gets)."""

    index: int | None
    name: str | None
    visible: str

    @property
    def key(self) -> str:
        """The part of a lock file's name that stands for this GPU."""
        label = str(self.index) if self.index is not None else self.visible
        return re.sub(r"[^A-Za-z0-9_.-]", "_", label)


@dataclass
class GpuClaim:
    """The GPU a job runs on; ``slot`` and ``lock`` are None where a scheduler chose it."""

    gpu: Gpu
    assigned_by: str  # "gpu_slots" or "scheduler"
    slot: int | None = None
    lock: Path | None = None
    claimed_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    )
    waited_seconds: float = 0.0
    _fd: int | None = None

    def record(self) -> dict:
        """What ``run.json`` says about the GPU (``index`` as nvidia-smi numbers the GPUs)."""
        return {
            "index": self.gpu.index,
            "name": self.gpu.name,
            "cuda_visible_devices": self.gpu.visible,
            "assigned_by": self.assigned_by,
            "slot": self.slot,
            "claimed_at": self.claimed_at,
            "waited_seconds": round(self.waited_seconds, 3),
        }

    def describe(self) -> str:
        name = self.gpu.name or "unknown model"
        index = "" if self.gpu.index is None else f"GPU {self.gpu.index}, "
        how = (
            f"slot {self.slot} (lock {self.lock})"
            if self.assigned_by == "gpu_slots"
            else "as the scheduler set it"
        )
        return f"{index}{name}, CUDA_VISIBLE_DEVICES={self.gpu.visible}, {how}"

    def release(self) -> None:
        """Free the slot now (a job never needs to: its end frees it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """The GPUs in ``nvidia-smi -L`` output (MIG devices, listed indented, are not GPUs)."""
    gpus = []
    for line in text.splitlines():
        match = _NVIDIA_SMI_GPU.match(line)
        if match:
            gpus.append(Gpu(int(match[1]), match[2].strip(), match[3]))
    return gpus


def _proc_gpus(driver: Path = Path("/proc/driver/nvidia/gpus")) -> list[Gpu]:
    """The GPUs the NVIDIA driver lists, in PCI bus order (nvidia-smi's order)."""
    gpus = []
    try:
        buses = sorted(driver.iterdir())
    except OSError:
        return []
    for index, bus in enumerate(buses):
        info = {}
        try:
            for line in (bus / "information").read_text().splitlines():
                key, _, value = line.partition(":")
                info[key.strip()] = value.strip()
        except OSError:
            pass
        uuid = info.get("GPU UUID", "")
        gpus.append(Gpu(index, info.get("Model"), uuid if uuid.startswith("GPU-") else str(index)))
    return gpus


def machine_gpus(env=None) -> list[Gpu]:
    """The machine's GPUs: the fake ones of ``RNN_CELL_BENCH_FAKE_GPUS`` if set (tests), else
    those ``nvidia-smi -L`` or ``/proc/driver/nvidia/gpus`` lists; empty without a GPU."""
    env = os.environ if env is None else env
    if FAKE_GPUS in env:
        ids = [part.strip() for part in env[FAKE_GPUS].split(",") if part.strip()]
        return [
            Gpu(int(gpu) if gpu.isdigit() else position, f"fake GPU {gpu}", gpu)
            for position, gpu in enumerate(ids)
        ]
    try:
        listed = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        gpus = parse_nvidia_smi(listed)
        if gpus:
            return gpus
    except (OSError, subprocess.SubprocessError):
        pass
    return _proc_gpus()


def under_scheduler(env=None) -> bool:
    """Whether this process runs inside a batch scheduler's job (SLURM, PBS, LSF)."""
    env = os.environ if env is None else env
    return any(env.get(name) for name in SCHEDULER_JOB_VARIABLES)


def candidate_gpus(env=None) -> list[Gpu]:
    """The GPUs jobs are given: the machine's, narrowed to the user's CUDA_VISIBLE_DEVICES."""
    env = os.environ if env is None else env
    machine = machine_gpus(env)
    if not machine:
        return []
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return machine
    gpus = []
    for entry in (part.strip() for part in visible.split(",")):
        if not entry or entry == "-1":  # CUDA ignores the list from an invalid entry on
            break
        gpus.append(_as_listed(entry, machine))
    return gpus


def _as_listed(entry: str, machine: list[Gpu]) -> Gpu:
    """The GPU a CUDA_VISIBLE_DEVICES entry (an index or a UUID) names, as the machine lists
    it; index and name unknown where the machine lists no such GPU."""
    known = [gpu for gpu in machine if entry in (gpu.visible, str(gpu.index))]
    return Gpu(known[0].index, known[0].name, entry) if known else Gpu(None, None, entry)


def default_lock_dir(env=None) -> Path:
    env = os.environ if env is None else env
    if env.get(LOCK_DIR):
        return Path(env[LOCK_DIR])
    return Path(tempfile.gettempdir()) / "rnn-cell-bench-gpu-slots"


def _make_lock_dir(directory: Path, shared: bool) -> None:
    if directory.is_dir():
        return
    directory.mkdir(parents=True, exist_ok=True)
    if shared:  # the machine-wide default: every user's jobs lock in it, as in /tmp
        with contextlib.suppress(OSError):
            os.chmod(directory, 0o1777)


def _open_lock(path: Path) -> int:
    """A descriptor on ``path``, created if missing. Read-only: flock needs no more, and it
    opens a lock file another user created."""
    while True:
        try:
            return os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            pass
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o644)  # readable by every user, whatever the umask
        return fd


def _try_lock(path: Path) -> int | None:
    """The descriptor holding ``path``'s lock, or None if another process holds it."""
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    try:  # a lock file removed and made anew meanwhile: the lock is on a file nobody sees
        same = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        return _try_lock(path)
    return fd


def claim_gpu(
    jobs_per_gpu: int = 1,
    *,
    env=None,
    lock_dir: str | os.PathLike | None = None,
    wait: bool = True,
    log=print,
) -> GpuClaim | None:
    """Claim a GPU slot for the rest of this process and narrow ``CUDA_VISIBLE_DEVICES`` in
    ``env`` (``os.environ`` by default; then before TensorFlow is imported) to its GPU.

    Returns None without a GPU, the scheduler's choice inside a scheduler's job, else the
    claim. Waits (with a line through ``log``) while every slot is held; with ``wait=False``
    raises :class:`SlotsBusy` instead.
    """
    if jobs_per_gpu < 1:
        raise ValueError(f"train.jobs_per_gpu must be at least 1, got {jobs_per_gpu}")
    env = os.environ if env is None else env
    if under_scheduler(env):
        visible = env.get("CUDA_VISIBLE_DEVICES")
        if visible is None or visible.strip() in ("", "-1"):
            return None
        return GpuClaim(_as_listed(visible.strip(), machine_gpus(env)), "scheduler")
    users_choice = "CUDA_VISIBLE_DEVICES" in env
    gpus = candidate_gpus(env)
    if not gpus:
        return None
    if env is os.environ and "tensorflow" in sys.modules:
        raise RuntimeError("claim_gpu must run before TensorFlow is imported")
    directory = Path(lock_dir) if lock_dir is not None else default_lock_dir(env)
    _make_lock_dir(directory, shared=directory == default_lock_dir({}))
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", platform.node() or "localhost")
    slots = [
        (gpu, slot, directory / f"{host}-gpu{gpu.key}-slot{slot}.lock")
        for slot in range(jobs_per_gpu)  # across GPUs first
        for gpu in gpus
    ]
    started = time.monotonic()
    waiting = False
    while True:
        for gpu, slot, path in slots:
            fd = _try_lock(path)
            if fd is not None:
                claim = GpuClaim(gpu, "gpu_slots", slot, path, _fd=fd)
                claim.waited_seconds = time.monotonic() - started
                env["CUDA_VISIBLE_DEVICES"] = gpu.visible
                if not users_choice and not gpu.visible.startswith("GPU-"):
                    # an index from the machine's list: number the GPUs as nvidia-smi does
                    env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
                return claim
        if not wait:
            raise SlotsBusy(f"all {len(slots)} GPU slots in {directory} are held")
        if not waiting:
            names = ",".join(gpu.visible for gpu in gpus)
            log(
                f"gpu: waiting for a free GPU slot: all {len(slots)} are held "
                f"({len(gpus)} GPU(s) [{names}] x {jobs_per_gpu} job(s) per GPU; "
                f"lock files in {directory})",
                flush=True,
            )
            waiting = True
        time.sleep(POLL_SECONDS)
