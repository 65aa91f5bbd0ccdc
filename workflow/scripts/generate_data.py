"""Snakemake adapter: write one synthetic data file."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package sits beside scripts/

from rnn_cell_bench.data import DataSettings, write_dataset
from rnn_cell_bench.logs import redirect_output


def main(settings: DataSettings, output: str) -> None:
    write_dataset(settings, output)
    print(f"wrote {output}: {settings}")


if "snakemake" in globals():
    redirect_output(snakemake.log[0])
    main(DataSettings.from_attrs(snakemake.params.settings), snakemake.output[0])
