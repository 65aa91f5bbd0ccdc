"""Named experiments and studies through the real ``snakemake`` command, on tiny configs."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import copy_project, edit_config, planned_jobs, snakemake

from rnn_cell_bench.metrics import METRIC_COLUMNS
from rnn_cell_bench.models import expected_params

# 2 x 2 conditions, one seed: horizon (a data setting) and per-cell units (a model setting).
STUDY = {"task.horizon": [5, 3], "model.units": [4, {"lstm": 4, "gru": 5}]}
CONDITIONS = [
    "task.horizon~5/model.units~4",
    "task.horizon~5/model.units~gru5_lstm4",
    "task.horizon~3/model.units~4",
    "task.horizon~3/model.units~gru5_lstm4",
]


def mtimes(directory):
    return {path: path.stat().st_mtime_ns for path in directory.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def study_project(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("study") / "project")
    edit_config(project, name="small-study", seeds=[0], study=STUDY)
    snakemake(project, "--resources", "gpu=1")
    return project


def test_a_study_writes_every_conditions_runs_tables_and_figures(study_project):
    results = study_project / "results" / "small-study"
    for condition in CONDITIONS:
        for cell in ("lstm", "gru"):
            run = json.loads(
                (results / "runs" / condition / cell / "seed_0" / "run.json").read_text()
            )
            units = 5 if cell == "gru" and condition.endswith("gru5_lstm4") else 4
            assert run["settings"]["units"] == units
            assert run["params"] == expected_params(cell, units)["total"]
            assert (results / "logs" / "train" / condition / cell / "seed_0.log").exists()
    metrics = pd.read_csv(results / "metrics.csv")
    assert list(metrics.columns) == ["task.horizon", "model.units", *METRIC_COLUMNS]
    assert len(metrics) == 8
    matched = metrics[metrics["model.units"] == "gru5_lstm4"]
    assert dict(zip(matched.cell, matched.params, strict=True)) == {"lstm": 101, "gru": 126}
    summary = pd.read_csv(results / "summary.csv")
    assert len(summary) == 8  # one row per condition x cell
    assert list(summary.columns[:3]) == ["task.horizon", "model.units", "cell"]
    comparison = pd.read_csv(results / "comparison.csv")
    assert len(comparison.groupby(["task.horizon", "model.units"])) == 4
    claims = pd.read_csv(results / "claims.csv")
    assert len(claims) == 4 * 4 and set(claims.verdict) == {"inconclusive"}  # n = 1 per arm
    for figure in ("loss_curves", "study"):
        for suffix in ("png", "svg"):
            assert (results / "figures" / f"{figure}.{suffix}").stat().st_size > 1000
    # Two horizons, two data files: conditions that differ only in units share one.
    assert len(list((study_project / "data").glob("*.h5"))) == 2
    assert not (study_project / "results" / "default").exists()


def test_the_loss_figure_has_a_panel_per_condition(study_project):
    svg = (study_project / "results" / "small-study" / "figures" / "loss_curves.svg").read_text()
    for condition in CONDITIONS:
        horizon, units = (part.split("~")[1] for part in condition.split("/"))
        assert f"task.horizon = {horizon}" in svg and f"model.units = {units}" in svg


def test_adding_an_axis_value_trains_only_its_conditions(study_project, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(study_project, project, symlinks=True)
    edit_config(project, study={**STUDY, "task.horizon": [5, 3, 2]})
    assert planned_jobs(project) == {
        "generate_data": 1,
        "train": 4,  # 2 new conditions x 2 cells x 1 seed
        "aggregate": 1,
        "plot": 1,
        "plot_study": 1,
        "all": 1,
    }
    edit_config(project, study={**STUDY, "task.horizon": [5]})
    assert planned_jobs(project) == {"aggregate": 1, "plot": 1, "plot_study": 1, "all": 1}


def test_two_named_experiments_leave_each_other_alone(study_project, tmp_path):
    """The plain tiny config next to the study: neither retrains or rewrites the other, and
    switching back and forth reruns nothing."""
    project = tmp_path / "project"
    shutil.copytree(study_project, project, symlinks=True)
    study_files = mtimes(project / "results" / "small-study")
    plain = project / "tiny.yaml"
    config = yaml.safe_load(plain.read_text())
    (project / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    del config["study"], config["name"]  # the default name, no study
    config["seeds"] = [0]
    plain.write_text(yaml.safe_dump(config, sort_keys=False))
    snakemake(project, "--resources", "gpu=1")
    assert (project / "results" / "default" / "runs" / "gru" / "seed_0" / "run.json").exists()
    assert mtimes(project / "results" / "small-study") == study_files
    # The plain config's horizon is one of the study's: its data file is shared.
    assert len(list((project / "data").glob("*.h5"))) == 2
    plain_files = mtimes(project / "results" / "default")
    assert planned_jobs(project, "--configfile", "tiny.yaml", "study.yaml") == {}
    assert planned_jobs(project) == {}
    assert mtimes(project / "results" / "default") == plain_files


@pytest.mark.parametrize(
    ("study", "message"),
    [
        ({"task.horizn": [1, 2]}, "study.task.horizn: no such config key"),
        ({"task.horizon": [2, -1]}, "study.task.horizon: value -1: task.horizon: -1 is less than"),
    ],
)
def test_a_bad_axis_stops_before_any_job(tmp_path, study, message):
    project = copy_project(tmp_path / "project")
    edit_config(project, study=study)
    result = snakemake(project, "--resources", "gpu=1", check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (project / "data").exists() and not (project / "results").exists()


def test_a_non_default_initializer_gives_matching_losses_on_both_engines(
    tmp_path, finished_project
):
    """Both engines start from the same numpy-drawn weights whatever the initializers; the
    engine is itself an axis here."""
    project = copy_project(tmp_path / "project")
    edit_config(
        project,
        name="init",
        cells=["lstm"],  # the cell with a forget gate; the GRU draws its kernels the same way
        seeds=[0],
        model={
            "kernel_initializer": "he_normal",
            "recurrent_initializer": "glorot_uniform",
            "unit_forget_bias": False,
        },
        study={"train.engine": ["keras", "fused"]},
    )
    snakemake(project, "--resources", "gpu=1")
    runs = project / "results" / "init" / "runs"
    default = finished_project / "results" / "default" / "runs"
    for cell in ("lstm",):
        keras, fused = (
            pd.read_csv(runs / f"train.engine~{engine}" / cell / "seed_0" / "history.csv")
            for engine in ("keras", "fused")
        )
        np.testing.assert_allclose(fused["loss"], keras["loss"], rtol=1e-3)
        record = json.loads(
            (runs / "train.engine~fused" / cell / "seed_0" / "run.json").read_text()
        )
        assert record["settings"]["kernel_initializer"] == "he_normal"
        assert record["settings"]["unit_forget_bias"] is False
        # The saved model says so too, whichever engine wrote it.
        for engine in ("keras", "fused"):
            path = runs / f"train.engine~{engine}" / cell / "seed_0" / "model.keras"
            with zipfile.ZipFile(path) as archive:
                (layer,) = [
                    item["config"]
                    for item in json.loads(archive.read("config.json"))["config"]["layers"]
                    if item["name"] == cell
                ]
            assert layer["kernel_initializer"]["class_name"] == "HeNormal", engine
            assert layer["recurrent_initializer"]["class_name"] == "GlorotUniform", engine
            assert layer["unit_forget_bias"] is False, engine
        # Other initial weights than the default config's run of the same seed.
        first_default = pd.read_csv(default / cell / "seed_0" / "history.csv")["loss"][0]
        assert abs(fused["loss"][0] - first_default) > 1e-6


def test_the_report_of_a_study_holds_both_figures_and_every_table(study_project, tmp_path):
    from test_report import TABLES, content, embedded

    project = tmp_path / "project"
    shutil.copytree(study_project, project, symlinks=True)
    snakemake(project, "--report", "results/small-study/report.html")
    html = (project / "results" / "small-study" / "report.html").read_text()
    results = embedded(html, "results")
    for name in ("figures/loss_curves.png", "figures/study.png", *TABLES):
        path = f"results/small-study/{name}"
        assert content(results[path]) == (project / path).read_bytes(), name
    runs = [name for name in results if name.endswith("run.json")]
    assert len(runs) == len(CONDITIONS) * 2
