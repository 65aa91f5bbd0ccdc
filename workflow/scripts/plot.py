"""Snakemake adapter: render the loss-curve comparison figure."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package sits beside scripts/

import pandas as pd

from rnn_cell_bench.logs import redirect_output
from rnn_cell_bench.plotting import PlotSettings, plot_loss_curves


def main(runs, history_paths, metrics_path: str, settings: PlotSettings, outputs) -> None:
    histories = {
        (cell, int(seed)): pd.read_csv(path)
        for (cell, seed), path in zip(runs, history_paths, strict=True)
    }
    plot_loss_curves(histories, pd.read_csv(metrics_path), outputs, settings)
    print(f"wrote {', '.join(map(str, outputs))}")


if "snakemake" in globals():
    redirect_output(snakemake.log[0])
    main(
        snakemake.params.runs,
        snakemake.input.histories,
        snakemake.input.metrics,
        PlotSettings(**snakemake.params.settings),
        list(snakemake.output),
    )
