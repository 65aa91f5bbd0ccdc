"""Snakemake adapter: render the study figure (each cell's ratio to the reference per axis)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package sits beside scripts/

import pandas as pd

from rnn_cell_bench.logs import redirect_output
from rnn_cell_bench.plotting import PlotSettings, plot_study


def main(comparison_path, axes, settings, outputs, reference=None) -> None:
    plot_study(pd.read_csv(comparison_path), axes, outputs, settings, reference=reference)
    print(f"wrote {', '.join(map(str, outputs))}")


if "snakemake" in globals():
    redirect_output(snakemake.log[0])
    main(
        snakemake.input.comparison,
        snakemake.params.axes,
        PlotSettings(**snakemake.params.settings),
        [snakemake.output.png, snakemake.output.svg],
        snakemake.params.reference,
    )
