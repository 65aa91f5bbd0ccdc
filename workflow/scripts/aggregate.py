"""Snakemake adapter: per-run metrics, per-cell summary, GRU-LSTM comparison and claims."""

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


def main(run_paths, history_paths, cells, tail_epochs: int, outputs) -> None:
    runs = {}
    for run_path in run_paths:
        with open(run_path) as handle:
            run = json.load(handle)
        runs[f"{run['cell']}/seed_{run['seed']}"] = run
    check_comparable(runs)
    rows = [
        run_metrics(run, pd.read_csv(history_path), tail_epochs)
        for run, history_path in zip(runs.values(), history_paths, strict=True)
    ]
    metrics = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    metrics.to_csv(outputs.metrics, index=False, float_format=FLOAT_FORMAT)

    conditions = condition_columns(metrics)  # none for a plain config: one condition
    summary = summarize(metrics, conditions, cells=cells)
    summary.to_csv(outputs.summary, index=False, float_format=FLOAT_FORMAT)
    comparison = compare(metrics, conditions)
    comparison.to_csv(outputs.comparison, index=False, float_format=FLOAT_FORMAT)
    # The speed claim names every device and engine the runs were timed on.
    verdicts = claims(comparison, metrics["device"], metrics["engine"], conditions)
    verdicts.to_csv(outputs.claims, index=False, float_format=FLOAT_FORMAT)
    text = claims_markdown(verdicts, conditions, comparison=comparison)
    Path(outputs.claims_md).write_text(text)

    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(summary.to_string(index=False), comparison.to_string(index=False), sep="\n\n")
    print(f"\n{text}")


if "snakemake" in globals():
    redirect_output(snakemake.log[0])
    main(
        snakemake.input.runs,
        snakemake.input.histories,
        snakemake.params.cells,
        snakemake.params.tail_epochs,
        snakemake.output,
    )
