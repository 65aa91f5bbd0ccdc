"""Shared helpers: run the real ``snakemake`` command on a copy of the project."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "tests" / "configs" / "tiny.yaml"
PROJECT_FILES = ("Snakefile", "config.yaml", "workflow", "envs", "profiles")
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

sys.path.insert(0, str(REPO / "workflow"))

# Tests that share an expensive module fixture run on one pytest-xdist worker, so the fixture
# is built once: the pattern matches a test's node id, the group names the fixture. Every other
# test goes to whichever worker is free. (xdist's own xdist_group marker does not reach the
# scheduler with pytest 9, so the groups are declared here.)
WORKER_GROUPS = {
    r"^tests/test_slurm\.py::": "the SLURM test cluster",
    r"^tests/test_fused_isa\.py::": "the runs per instruction set",
    r"^tests/test_report\.py::": "the report",
    r"^tests/test_study_workflow\.py::": "the finished study",
    r"^tests/test_own_data\.py::(?!test_bad_input)": "the finished project on a file",
    r"^tests/test_cells_workflow\.py::test_(three|a_gru)": "the three cells on both engines",
    r"^tests/test_cells_workflow\.py::test_(a_users_cell_(trains|model)|editing)": (
        "the project with a cell of the user's"
    ),
    r"^tests/test_reliability\.py::(.*\[fused\]|test_a_code_change\w*|test_sigkill\w*)$": (
        "the fused reference run"
    ),
}


def worker_group(nodeid: str) -> str:
    """The scheduling unit of a test: its group, or the test alone."""
    for pattern, group in WORKER_GROUPS.items():
        if re.search(pattern, nodeid):
            return group
    return nodeid


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    return GroupScheduling(config, log)


def copy_project(destination: Path) -> Path:
    """A fresh copy of the workflow (code included, so tests may edit it) and the tiny config."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            # Bytecode stays behind; numba's cache of the compiled kernels (*.nbi, *.nbc) comes
            # along, so the test project's jobs do not compile the kernels again.
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("*.pyc"))
        else:
            shutil.copy2(source, destination / name)
    shutil.copy2(TINY_CONFIG, destination / "tiny.yaml")
    return destination


def snakemake(project: Path, *args: str, check: bool = True, timeout: float = 600):
    """Run ``snakemake`` in ``project`` with the tiny config; returns the CompletedProcess."""
    command = [SNAKEMAKE, "--configfile", "tiny.yaml", "--cores", "2", *args]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        command, cwd=project, capture_output=True, text=True, timeout=timeout, env=env
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def edit_config(project: Path, file: str = "tiny.yaml", **sections) -> None:
    """Merge ``sections`` into the project's config ``file`` (top-level keys replaced, or
    merged where both are mappings; a new file starts as a copy of tiny.yaml)."""
    path = project / file
    config = yaml.safe_load((path if path.exists() else project / "tiny.yaml").read_text())
    for key, value in sections.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def planned_jobs(project: Path, *args: str) -> dict[str, int]:
    """Jobs a dry run would execute, by rule (empty when there is nothing to do)."""
    result = snakemake(project, "--dry-run", *args)
    output = result.stdout + result.stderr
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:", 1)[1]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", table, flags=re.MULTILINE))
    counts.pop("total", None)
    return {rule: int(count) for rule, count in counts.items()}


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels():
    """Compile the fused engine's kernels once, into the package's numba cache, which
    copy_project carries into every test project."""
    from rnn_cell_bench.fused import compile_kernels

    compile_kernels()


@pytest.fixture(scope="session")
def finished_project(tmp_path_factory) -> Path:
    """The tiny config run to completion once; tests copy it rather than change it."""
    project = copy_project(tmp_path_factory.mktemp("finished") / "project")
    snakemake(project, "--resources", "gpu=1")
    return project


@pytest.fixture
def project_copy(finished_project, tmp_path) -> Path:
    """A private copy of the finished project, timestamps and Snakemake metadata included."""
    destination = tmp_path / "project"
    shutil.copytree(finished_project, destination, symlinks=True)
    return destination
