"""Config validation, through the package API and through the real snakemake command."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import REPO, copy_project, snakemake

from rnn_cell_bench.config import ConfigError, validate_config
from rnn_cell_bench.study import expand_study

DEFAULT = yaml.safe_load((REPO / "config.yaml").read_text())


def problems(config) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        validate_config(config)
    return raised.value.problems


def test_default_config_and_presets_are_valid(monkeypatch):
    monkeypatch.chdir(REPO)  # a preset's data.file is relative to the project folder
    validate_config(DEFAULT)
    for preset in (REPO / "presets").glob("*.yaml"):
        merged = copy.deepcopy(DEFAULT)
        for key, value in yaml.safe_load(preset.read_text()).items():
            merged[key] = {**(merged[key] or {}), **value} if isinstance(value, dict) else value
        validate_config(merged)
        assert expand_study(merged), preset.name


def test_unknown_key_is_named():
    config = copy.deepcopy(DEFAULT)
    config["train"]["epoch"] = 10
    assert problems(config) == [
        "train.epoch: unknown key (allowed here: checkpoint_every, clip, clipnorm, engine, "
        "epochs, eval_every, jobs_per_gpu, keep_checkpoints, learning_rate, log_every, on_nan, "
        "tensorboard, threads)"
    ]


def test_every_problem_is_reported_with_its_key():
    config = copy.deepcopy(DEFAULT)
    config["train"]["epochs"] = "many"
    config["data"]["noise_std"] = -1
    config["cells"] = ["lstm", "rrn"]
    config["plot"]["band"] = "sd"
    found = problems(config)
    assert len(found) == 4
    assert any(p.startswith("train.epochs: 'many' is not of type 'integer'") for p in found)
    assert any(p.startswith("data.noise_std: -1 is less than the minimum") for p in found)
    assert any(p.startswith("cells.1: 'rrn' is not one of ['lstm', 'gru', 'rnn']") for p in found)
    assert any(p.startswith("plot.band: 'sd' is not one of") for p in found)


def test_a_data_file_must_exist_and_frees_the_generator_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = copy.deepcopy(DEFAULT)
    config["data"]["file"] = "mine.csv"
    config["task"]["horizon"] = config["data"]["n_steps"]  # the generator's limit: not checked
    (problem,) = problems(config)
    assert problem.startswith("data.file: 'mine.csv' is not a file (relative paths start in")
    (tmp_path / "mine.csv").write_text("x\n1\n")
    validate_config(config)
    config["data"]["target"] = True
    config["data"]["split"] = "random"
    config["data"]["heldout_fraction"] = 1.0
    found = problems(config)
    assert any(p.startswith("data.split: 'random' is not one of") for p in found)
    assert any(p.startswith("data.heldout_fraction: 1.0 is greater than or equal") for p in found)


def test_horizon_must_fit_in_the_sequence():
    config = copy.deepcopy(DEFAULT)
    config["task"]["horizon"] = config["data"]["n_steps"]
    assert problems(config) == ["task.horizon: 20000 must be smaller than data.n_steps (20000)"]


def test_snakemake_refuses_a_bad_config_before_any_job(tmp_path):
    project = copy_project(tmp_path / "project")
    (project / "tiny.yaml").write_text(
        (project / "tiny.yaml").read_text() + "\nmodel:\n  units: 0\n  layers: 2\n"
    )
    result = snakemake(project, "--resources", "gpu=1", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "model.layers: unknown key" in output
    assert "model.units: 0 is less than the minimum of 1" in output
    assert not (project / "data").exists() and not (project / "results").exists()


def test_semantic_and_schema_problems_are_reported_together():
    config = copy.deepcopy(DEFAULT)
    config["task"]["horizon"] = 30000  # not below n_steps
    config["data"]["periods"] = [0, 1100]
    config["seeds"] = [0, 1, 1]
    config["cells"] = ["lstm", "transformer"]
    found = problems(config)
    assert "task.horizon: 30000 must be smaller than data.n_steps (20000)" in found
    assert any(
        p.startswith("data.periods.0: 0 is less than or equal to the minimum") for p in found
    )
    assert any(p.startswith("seeds: [0, 1, 1] has non-unique elements") for p in found)
    assert any(
        p.startswith("cells.1: 'transformer' is not one of ['lstm', 'gru', 'rnn']") for p in found
    )
    assert len(found) == 4


def test_a_checkpoint_period_beyond_the_run_is_accepted():
    # A user who shortens a run must not have to learn about checkpoint_every.
    config = copy.deepcopy(DEFAULT)
    config["train"]["epochs"] = 4
    validate_config(config)  # raises ConfigError on any problem


def test_a_cell_entry_is_checked_against_its_own_form():
    config = copy.deepcopy(DEFAULT)
    config["cells"] = ["lstm", {"name": "mgu"}, 5, {"name": "Bad Name", "class": "m:C"}]
    config["compare"] = {"reference": "gru"}
    config["model"]["units"] = {"lstm": 16, "mgu": 8, "transformer": 4}
    found = problems(config)
    assert "cells.1: 'class' is a required property" in found
    assert "cells.2: 5 is not of type string or object" in found
    assert any(p.startswith("cells.3.name: 'Bad Name' does not match") for p in found)
    # a mapping is not a misspelt name: no "is not one of ['lstm', 'gru', 'rnn']" for it
    assert not any(p.startswith("cells.") and "is not one of" in p for p in found)
    assert "compare.reference: 'gru' is not one of the cells (lstm, mgu, Bad Name)" in found
    assert any(p.startswith("model.units: transformer is not a cell") for p in found)
    config["cells"] = ["lstm", {"name": "gru", "class": "m:C"}]
    assert "cells[1] (gru): the name of a built-in cell; give your cell another name" in (
        problems(config)
    )
