"""Snakemake adapter: per-run metrics, per-cell summary, the comparisons and the claims."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package sits beside scripts/

import pandas as pd

from rnn_cell_bench.logs import redirect_output
from rnn_cell_bench.metrics import METRIC_COLUMNS, condition_columns, run_metrics
from rnn_cell_bench.provenance import check_comparable
from rnn_cell_bench.statistics import claims, claims_markdown, compare, summarize

FLOAT_FORMAT = "%.9g"


def main(
    descriptions, run_paths, history_paths, axes, cells, reference, tail_epochs: int, outputs
) -> None:
    """``descriptions``: per run, its condition (directory), axis values, cell and seed."""
    records = []
    for run_path in run_paths:
        with open(run_path) as handle:
            records.append(json.load(handle))
    for condition in dict.fromkeys(d["condition"] for d in descriptions):
        check_comparable(
            {
                "/".join(filter(None, (d["condition"], f"{d['cell']}/seed_{d['seed']}"))): run
                for d, run in zip(descriptions, records, strict=True)
                if d["condition"] == condition
            }
        )
    rows = [
        {**d["axes"], **run_metrics(run, pd.read_csv(history_path), tail_epochs)}
        for d, run, history_path in zip(descriptions, records, history_paths, strict=True)
    ]
    # One column per study axis (named by its dotted key), then today's columns.
    metrics = pd.DataFrame(rows, columns=[*axes, *METRIC_COLUMNS])
    metrics.to_csv(outputs.metrics, index=False, float_format=FLOAT_FORMAT)

    conditions = condition_columns(metrics)  # none for a plain config: one condition
    summary = summarize(metrics, conditions, cells=cells)
    summary.to_csv(outputs.summary, index=False, float_format=FLOAT_FORMAT)
    comparison = compare(metrics, conditions, cells=cells, reference=reference)
    comparison.to_csv(outputs.comparison, index=False, float_format=FLOAT_FORMAT)
    # The speed claim names the devices and engines each pair's runs were timed on.
    verdicts = claims(comparison, condition_columns=conditions, runs=metrics)
    verdicts.to_csv(outputs.claims, index=False, float_format=FLOAT_FORMAT)
    text = claims_markdown(verdicts, conditions, comparison=comparison)
    Path(outputs.claims_md).write_text(text)

    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(summary.to_string(index=False), comparison.to_string(index=False), sep="\n\n")
    print(f"\n{text}")


if "snakemake" in globals():
    redirect_output(snakemake.log[0])
    main(
        snakemake.params.runs,
        snakemake.input.runs,
        snakemake.input.histories,
        snakemake.params.axes,
        snakemake.params.cells,
        snakemake.params.reference,
        snakemake.params.tail_epochs,
        snakemake.output,
    )
