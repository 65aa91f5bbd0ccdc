"""Snakemake adapter: per-run metrics table and per-cell summary."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package sits beside scripts/

import pandas as pd

from rnn_cell_bench.logs import redirect_output
from rnn_cell_bench.metrics import METRIC_COLUMNS, run_metrics, summarize
from rnn_cell_bench.provenance import check_comparable


def main(run_paths, history_paths, cells, metrics_path: str, summary_path: str) -> None:
    runs = {}
    for run_path in run_paths:
        with open(run_path) as handle:
            run = json.load(handle)
        runs[f"{run['cell']}/seed_{run['seed']}"] = run
    check_comparable(runs)
    rows = [
        run_metrics(run, pd.read_csv(history_path))
        for run, history_path in zip(runs.values(), history_paths, strict=True)
    ]
    metrics = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    metrics.to_csv(metrics_path, index=False, float_format="%.9g")
    summary = summarize(metrics, cell_order=cells)
    summary.to_csv(summary_path, index=False, float_format="%.9g")
    print(summary.to_string(index=False))


if "snakemake" in globals():
    redirect_output(snakemake.log[0])
    main(
        snakemake.input.runs,
        snakemake.input.histories,
        snakemake.params.cells,
        snakemake.output.metrics,
        snakemake.output.summary,
    )
