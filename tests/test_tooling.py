"""Tooling: lint and formatting are clean, and the conda environments agree with the pins."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SNAKEMAKE

BIN = Path(sys.executable).parent


def pinned(requirements) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]+\])?==([^;\s]+)", requirement.strip())
        assert match, f"not an exact pin: {requirement!r}"
        pins[match.group(1).lower()] = match.group(3)
    return pins


PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT_PINS = pinned(PYPROJECT["project"]["dependencies"]) | pinned(
    PYPROJECT["project"]["optional-dependencies"]["dev"]
)
LOCK_PINS = pinned(
    line
    for line in (REPO / "requirements.lock").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


def test_snakemake_lint_is_clean():
    result = subprocess.run(
        [SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_snakefmt_finds_nothing_to_change():
    files = ["Snakefile", *map(str, sorted((REPO / "workflow" / "rules").glob("*.smk")))]
    result = subprocess.run(
        [str(BIN / "snakefmt"), "--check", *files], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean():
    for command in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [str(BIN / "ruff"), *command], cwd=REPO, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_dependencies_are_exact_pins_and_locked():
    for name, version in PROJECT_PINS.items():
        assert LOCK_PINS.get(name) == version, f"requirements.lock disagrees on {name}"


@pytest.mark.parametrize("env_file", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_conda_envs_match_the_python_pins(env_file):
    env = yaml.safe_load(env_file.read_text())
    conda_deps = [dep for dep in env["dependencies"] if isinstance(dep, str)]
    pip_deps = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    python = next(dep for dep in conda_deps if dep.startswith("python="))
    # One of the versions the project supports, the one CI runs.
    assert python == "python=3.11"
    assert PYPROJECT["project"]["requires-python"] == ">=3.11,<3.14"
    for name, version in pinned(pip_deps).items():
        assert name in PROJECT_PINS or name in LOCK_PINS, f"{env_file.name}: {name} is not pinned"
        assert (PROJECT_PINS.get(name) or LOCK_PINS[name]) == version, (
            f"{env_file.name}: {name}=={version} disagrees with the project pins"
        )
    pip_pin = next(dep for dep in conda_deps if dep.startswith("pip="))
    assert pip_pin == f"pip={LOCK_PINS['pip']}"


def test_every_rule_env_exists():
    for rule_file in (REPO / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*"([^"]+)"', rule_file.read_text()):
            assert (rule_file.parent / env).resolve().is_file(), f"{rule_file.name}: {env}"


def test_makefile_supports_the_versions_of_pyproject():
    makefile = (REPO / "Makefile").read_text()
    supported = re.search(r"^SUPPORTED := (.+)$", makefile, re.MULTILINE).group(1).split()
    assert supported == ["3.11", "3.12", "3.13"]
    assert PYPROJECT["project"]["requires-python"] == ">=3.11,<3.14"


def test_setup_stops_at_once_on_an_unsupported_python(tmp_path):
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        (tmp_path / name).write_bytes((REPO / name).read_bytes())
    fake = tmp_path / "python2"
    fake.write_text("#!/bin/sh\nexit 1\n")  # fails the version check, like Python 2 or 3.10
    fake.chmod(0o755)
    result = subprocess.run(
        ["make", "setup", f"PYTHON={fake}"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "needs Python 3.11, 3.12 or 3.13" in result.stderr
    assert not (tmp_path / ".venv").exists()
