"""More than two cells through the real ``snakemake`` command: the plain RNN beside LSTM and GRU
on both engines, and a Keras cell of the user's from a file in the project folder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, copy_project, edit_config, planned_jobs, snakemake

from rnn_cell_bench.statistics import claim_columns, comparison_columns

MGU = {"name": "mgu", "class": "my_cells:MinimalGatedUnit"}


def results(project: Path, name: str = "default") -> Path:
    return project / "results" / name


@pytest.fixture(scope="module")
def three_cells(tmp_path_factory) -> Path:
    """lstm, gru and rnn, 3 seeds, on the fused engine (default) and on Keras (``keras``)."""
    project = copy_project(tmp_path_factory.mktemp("three") / "project")
    edit_config(project, cells=["lstm", "gru", "rnn"], seeds=[0, 1, 2])
    edit_config(project, "keras.yaml", name="keras", train={"engine": "keras"})
    snakemake(project, "--resources", "gpu=1")
    snakemake(project, "--resources", "gpu=1", "--configfile", "keras.yaml")
    return project


def test_three_cells_train_on_both_engines_with_matching_losses(three_cells):
    for engine, name in (("fused", "default"), ("keras", "keras")):
        metrics = pd.read_csv(results(three_cells, name) / "metrics.csv")
        assert list(metrics.cell) == ["lstm"] * 3 + ["gru"] * 3 + ["rnn"] * 3
        assert set(metrics.engine) == {engine}
        assert set(metrics[metrics.cell == "rnn"].params) == {305}  # 16 x (1 + 16 + 1) + 17
    for cell in ("lstm", "gru", "rnn"):
        for seed in (0, 1, 2):
            run = f"runs/{cell}/seed_{seed}/history.csv"
            fused = pd.read_csv(results(three_cells) / run)
            keras = pd.read_csv(results(three_cells, "keras") / run)
            np.testing.assert_allclose(fused.loss, keras.loss, rtol=1e-3)
            np.testing.assert_allclose(
                fused.heldout_loss.dropna(), keras.heldout_loss.dropna(), rtol=1e-3
            )


def test_three_cells_comparisons_and_claims(three_cells):
    comparison = pd.read_csv(results(three_cells) / "comparison.csv")
    assert list(comparison.columns) == list(comparison_columns(["gru", "lstm", "rnn"]))
    pairs = list(zip(comparison.cell, comparison.reference, strict=True))
    assert pairs == [("gru", "lstm")] * 8 + [("rnn", "lstm")] * 8
    assert (comparison.n_rnn.dropna() == 3).all() and comparison.n_rnn.isna().sum() == 8
    claims = pd.read_csv(results(three_cells) / "claims.csv")
    assert list(claims.columns) == list(claim_columns(["gru", "lstm", "rnn"]))
    assert list(claims.claim) == [1, 2, 3, 4] * 2
    assert claims.statement[4] == "the RNN reaches a lower loss than the LSTM (tail loss)"
    assert set(claims.verdict) <= {"supported", "contradicted", "inconclusive"}
    text = (results(three_cells) / "claims.md").read_text()
    assert "## GRU against LSTM (the original's claims)" in text and "## RNN against LSTM" in text
    # The family: 2 comparisons x 4 claims; with 3 seeds per arm 2/20 = 0.1 each, so 8 x 0.1.
    assert "8 test(s) (1 condition(s) x 2 comparison(s) x 4 claims" in text
    assert "8 x 0.100 = 0.800 >= 0.05" in text
    summary = pd.read_csv(results(three_cells) / "summary.csv")
    assert list(summary.cell) == ["lstm", "gru", "rnn"]
    assert (results(three_cells) / "figures" / "loss_curves.svg").read_text().count("RNN") >= 1


def test_a_gru_reference_compares_every_cell_against_it(three_cells, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(three_cells, project, symlinks=True)
    edit_config(project, compare={"reference": "gru"})
    assert planned_jobs(project, "--resources", "gpu=1") == {"aggregate": 1, "all": 1, "plot": 1}
    snakemake(project, "--resources", "gpu=1")
    comparison = pd.read_csv(results(project) / "comparison.csv")
    assert list(dict.fromkeys(zip(comparison.cell, comparison.reference, strict=True))) == [
        ("lstm", "gru"),
        ("rnn", "gru"),
    ]
    claims = pd.read_csv(results(project) / "claims.csv")
    assert list(dict.fromkeys(zip(claims.cell, claims.reference, strict=True))) == [
        ("gru", "lstm"),  # the original's claims, whatever the reference
        ("rnn", "gru"),
    ]
    edit_config(project, compare={"reference": "mgu"})
    failed = snakemake(project, "--dry-run", check=False)
    assert failed.returncode != 0
    assert "compare.reference: 'mgu' is not one of the cells (lstm, gru, rnn)" in (
        failed.stdout + failed.stderr
    )


# --- a cell of the user's ----------------------------------------------------------------


@pytest.fixture(scope="module")
def custom_project(tmp_path_factory) -> Path:
    """LSTM and the example's minimal gated unit, copied into the project as my_cells.py."""
    project = copy_project(tmp_path_factory.mktemp("custom") / "project")
    shutil.copy2(REPO / "examples" / "mgu.py", project / "my_cells.py")
    edit_config(project, cells=["lstm", MGU], seeds=[0, 1, 2])
    snakemake(project, "--resources", "gpu=1")
    return project


def test_a_users_cell_trains_on_keras_and_records_its_source(custom_project):
    metrics = pd.read_csv(results(custom_project) / "metrics.csv")
    assert list(metrics.cell) == ["lstm"] * 3 + ["mgu"] * 3
    engines = dict(zip(metrics.cell, metrics.engine, strict=False))
    assert engines == {"lstm": "fused", "mgu": "keras"}  # engine auto, no GPU
    assert set(metrics[metrics.cell == "mgu"].params) == {593}  # 2 x 16 x (1 + 16 + 1) + 17
    run = json.loads((results(custom_project) / "runs/mgu/seed_0/run.json").read_text())
    digest = hashlib.sha256((custom_project / "my_cells.py").read_bytes())
    assert run["cell_class"] == {
        "class": "my_cells:MinimalGatedUnit",
        "file": "my_cells.py",
        "sha256": digest.hexdigest(),
    }
    assert run["settings"]["cell_class"] == "my_cells:MinimalGatedUnit"
    lstm = json.loads((results(custom_project) / "runs/lstm/seed_0/run.json").read_text())
    assert lstm["cell_class"] is None and lstm["code_digest"] != run["code_digest"]
    # Different seeds start from different weights, so their losses differ from epoch 1.
    first = [
        pd.read_csv(results(custom_project) / f"runs/mgu/seed_{seed}/history.csv").loss[0]
        for seed in (0, 1, 2)
    ]
    assert len(set(first)) == 3
    claims = pd.read_csv(results(custom_project) / "claims.csv")
    assert list(claims.cell) == ["mgu"] * 4 and list(claims.reference) == ["lstm"] * 4
    speed = claims[claims.metric == "sec_per_epoch"].iloc[0]
    assert "the fused and keras engines" in speed.statement and speed.verdict == "inconclusive"
    assert speed.reason.startswith("not comparable")


def test_a_users_cell_model_loads_back_in_safe_mode(custom_project):
    code = (
        "import sys, json, numpy as np, keras\n"
        "sys.path.insert(0, '.')\n"
        "import my_cells\n"
        "model = keras.saving.load_model('results/default/runs/mgu/seed_0/model.keras', "
        "safe_mode=True)\n"
        "x = np.zeros((1, 7, 1), 'float32')\n"
        "print(json.dumps({'shape': list(model(x).shape), 'layers': [type(l).__name__ for l in "
        "model.layers], 'cell': type(model.layers[1].cell).__name__, "
        "'params': int(model.count_params())}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=custom_project,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == {
        "shape": [1, 7, 1],
        "layers": ["InputLayer", "RNN", "Dense"],
        "cell": "MinimalGatedUnit",
        "params": 593,
    }


def test_editing_a_users_cell_reruns_only_its_runs(custom_project, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(custom_project, project, symlinks=True)
    source = project / "my_cells.py"
    source.write_text(source.read_text() + "\n# a comment: the file is code, so it reruns\n")
    later = time.time() + 5
    os.utime(source, (later, later))
    assert planned_jobs(project, "--resources", "gpu=1") == {
        "aggregate": 1,
        "all": 1,
        "plot": 1,
        "train": 3,  # mgu seeds 0-2, not the LSTM's
    }
    result = snakemake(project, "--dry-run", "--resources", "gpu=1")
    assert "cell=mgu" in result.stdout and "cell=lstm" not in result.stdout


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"name": "mgu", "class": "no_such_module:Cell"},
            "cells[1] (mgu): no module 'no_such_module' in the project folder",
        ),
        (
            {"name": "mgu", "class": "my_cells:NoSuchClass"},
            "cells[1] (mgu): module 'my_cells'",
        ),
        (
            {"name": "mgu", "class": "json:JSONDecoder"},
            "cells[1] (mgu): <class 'json.decoder.JSONDecoder'> is not a Keras RNN cell class",
        ),
        (
            {"name": "dense", "class": "keras.layers:Dense"},
            "cells[1] (dense): Dense has no state_size, so it is not a Keras RNN cell class",
        ),
        (
            {"name": "gru", "class": "my_cells:MinimalGatedUnit"},
            "cells[1] (gru): the name of a built-in cell",
        ),
    ],
)
def test_a_bad_users_cell_stops_before_any_job_naming_the_entry(tmp_path, entry, message):
    project = copy_project(tmp_path / "project")
    shutil.copy2(REPO / "examples" / "mgu.py", project / "my_cells.py")
    edit_config(project, cells=["lstm", entry])
    failed = snakemake(project, "--resources", "gpu=1", check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0 and message in output, output
    assert not (project / "data").exists() and not (project / "results").exists()


def test_a_users_cell_on_the_fused_engine_is_an_error_before_any_job(tmp_path):
    project = copy_project(tmp_path / "project")
    shutil.copy2(REPO / "examples" / "mgu.py", project / "my_cells.py")
    edit_config(project, cells=["lstm", MGU], train={"engine": "fused"})
    failed = snakemake(project, "--resources", "gpu=1", check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "cells[1] (mgu): a cell of your own trains on the Keras engine only" in output
    assert not (project / "results").exists()


def test_adding_a_cell_trains_only_its_runs(project_copy):
    edit_config(project_copy, cells=["lstm", "gru", "rnn"])
    assert planned_jobs(project_copy) == {"train": 2, "aggregate": 1, "plot": 1, "all": 1}
    result = snakemake(project_copy, "--dry-run")
    assert "cell=rnn" in result.stdout and "cell=lstm" not in result.stdout
