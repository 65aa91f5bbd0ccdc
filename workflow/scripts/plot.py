"""Snakemake adapter: render the loss-curve figure, one panel per condition."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package sits beside scripts/

import pandas as pd

from rnn_cell_bench.logs import redirect_output
from rnn_cell_bench.plotting import PlotSettings, plot_conditions


def main(descriptions, history_paths, metrics_path, axes, titles, settings, outputs) -> None:
    """``descriptions``: per run, its condition, axis values, cell and seed."""
    metrics = pd.read_csv(metrics_path)
    panels = {}
    for description, path in zip(descriptions, history_paths, strict=True):
        histories = panels.setdefault(description["condition"], {})
        histories[(description["cell"], int(description["seed"]))] = pd.read_csv(path)
    figures = []
    for condition, histories in panels.items():
        rows = metrics
        axis_values = next(d["axes"] for d in descriptions if d["condition"] == condition)
        for axis in axes:  # this condition's rows of metrics.csv
            rows = rows[rows[axis].astype(str) == str(axis_values[axis])]
        figures.append((titles[condition], histories, rows))
    plot_conditions(figures, outputs, settings)
    print(f"wrote {', '.join(map(str, outputs))}")


if "snakemake" in globals():
    redirect_output(snakemake.log[0])
    main(
        snakemake.params.runs,
        snakemake.input.histories,
        snakemake.input.metrics,
        snakemake.params.axes,
        snakemake.params.titles,
        PlotSettings(**snakemake.params.settings),
        [snakemake.output.png, snakemake.output.svg],
    )
