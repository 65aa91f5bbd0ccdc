"""``snakemake --report`` on the finished tiny project: every figure and table, with captions,
the config used and each run's provenance, in one self-contained HTML file."""

from __future__ import annotations

import base64
import json
import re

import pytest
from conftest import snakemake

TABLES = ("metrics.csv", "summary.csv", "comparison.csv", "claims.csv", "claims.md")
RUNS = [
    f"results/default/runs/{cell}/seed_{seed}/run.json"
    for cell in ("lstm", "gru")
    for seed in (0, 1)
]


def embedded(html: str, name: str) -> dict:
    """The JSON object a Snakemake report assigns to ``var <name>``."""
    match = re.search(rf"var {name} = (\{{.*?\}});\n", html, re.DOTALL)
    assert match, f"no {name} in the report"
    return json.loads(match.group(1))


def content(item: dict) -> bytes:
    return base64.b64decode(item["data_uri"].split("base64,", 1)[1])


@pytest.fixture(scope="module")
def report(finished_project, tmp_path_factory):
    """The report built from a copy of the finished project (nothing is retrained)."""
    import shutil

    project = tmp_path_factory.mktemp("report") / "project"
    shutil.copytree(finished_project, project, symlinks=True)
    result = snakemake(project, "--report", "results/default/report.html")
    assert "Report created" in result.stdout + result.stderr
    return project, (project / "results" / "default" / "report.html").read_text()


def test_report_holds_the_figure_and_every_table_with_its_content(report):
    project, html = report
    results = embedded(html, "results")
    figure = results["results/default/figures/loss_curves.png"]
    assert figure["mime_type"] == "image/png"
    assert (
        content(figure)
        == (project / "results" / "default" / "figures" / "loss_curves.png").read_bytes()
    )
    for table in TABLES:
        item = results[f"results/default/{table}"]
        assert content(item) == (project / "results" / "default" / table).read_bytes(), table
        assert len(item["caption"]) > 200, f"{table} has no caption saying how to read it"
    assert "Holm" in results["results/default/comparison.csv"]["caption"]
    assert "inconclusive" in results["results/default/claims.csv"]["caption"]


def test_report_holds_the_heldout_numbers(report):
    _, html = report
    results = embedded(html, "results")
    tables = {name: content(results[f"results/default/{name}"]).decode() for name in TABLES}
    assert "heldout_loss,best_heldout_loss,best_heldout_epoch" in tables["metrics.csv"]
    assert "heldout_loss_gmean" in tables["summary.csv"]
    assert "\ngru,lstm,heldout_loss,ratio," in tables["comparison.csv"]
    assert "on held-out data" in tables["claims.csv"] and "on held-out data" in tables["claims.md"]
    for name in ("metrics.csv", "claims.csv", "comparison.csv"):
        assert "held-out" in results[f"results/default/{name}"]["caption"], name
    assert "held-out" in results["results/default/figures/loss_curves.png"]["caption"]


def test_report_holds_each_runs_provenance(report):
    project, html = report
    results = embedded(html, "results")
    for run in RUNS:
        record = json.loads(content(results[run]))
        assert record == json.loads((project / run).read_text())
        assert record["versions"]["tensorflow"]
    categories = embedded(html, "categories")
    assert set(categories) >= {"Figures", "Tables", "Claims", "Provenance"}


def test_report_shows_the_config_used(report):
    _, html = report
    # The merged config (tiny.yaml over config.yaml), rendered in the report's description.
    assert "Configuration used" in html
    assert "tail_epochs: 50" in html and "seeds: [0, 1]" in html and "epochs: 4" in html
