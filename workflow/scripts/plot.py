"""Snakemake adapter: render the loss-curve figure, one panel per condition."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package sits beside scripts/

import pandas as pd

from rnn_cell_bench.logs import redirect_output
from rnn_cell_bench.plotting import PlotSettings, plot_conditions


def main(descriptions, history_paths, metrics_path, titles, settings, outputs) -> None:
    """``descriptions``: per run, its condition, axis values, cell and seed, in the order of
    ``history_paths`` and of the rows of ``metrics.csv``."""
    metrics = pd.read_csv(metrics_path)
    if len(metrics) != len(descriptions):
        raise ValueError(f"{metrics_path} has {len(metrics)} rows for {len(descriptions)} runs")
    panels = {}
    for row, (description, path) in enumerate(zip(descriptions, history_paths, strict=True)):
        histories, rows = panels.setdefault(description["condition"], ({}, []))
        histories[(description["cell"], int(description["seed"]))] = pd.read_csv(path)
        rows.append(row)
    figures = [
        (titles[condition], histories, metrics.iloc[rows])
        for condition, (histories, rows) in panels.items()
    ]
    plot_conditions(figures, outputs, settings)
    print(f"wrote {', '.join(map(str, outputs))}")


if "snakemake" in globals():
    redirect_output(snakemake.log[0])
    main(
        snakemake.params.runs,
        snakemake.input.histories,
        snakemake.input.metrics,
        snakemake.params.titles,
        PlotSettings(**snakemake.params.settings),
        [snakemake.output.png, snakemake.output.svg],
    )
