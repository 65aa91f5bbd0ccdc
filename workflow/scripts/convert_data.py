"""Snakemake adapter: convert a file of the user's into the project's data format."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package sits beside scripts/

from rnn_cell_bench.data import FileDataSettings, file_sha256, write_data_file
from rnn_cell_bench.logs import redirect_output
from rnn_cell_bench.sources import SourceError, make_file_dataset


def main(settings: FileDataSettings, source: str, output: str) -> int:
    if file_sha256(source) != settings.sha256:  # edited since the workflow started
        print(f"error: data.file {source} changed while the workflow ran; run it again")
        return 1
    try:
        dataset = make_file_dataset(source, settings)
    except SourceError as error:
        print(f"error: {error}", flush=True)
        return 2
    write_data_file(dataset, settings, output)
    n, steps, features = dataset.inputs.shape
    print(
        f"wrote {output}: {n} training sequence(s) of {steps} steps x {features} feature(s), "
        f"held out {list(dataset.heldout_inputs.shape)} from step {dataset.heldout_start}; "
        f"{dataset.description['split']}"
    )
    return 0


if "snakemake" in globals():
    terminal = os.fdopen(os.dup(2), "w")  # before the log takes over the descriptor
    redirect_output(snakemake.log[0])
    settings = FileDataSettings.from_attrs(snakemake.params.settings)
    exit_code = main(settings, snakemake.input.source, snakemake.output[0])
    if exit_code:  # the reason on the terminal too, not only in the log
        print(Path(snakemake.log[0]).read_text().splitlines()[-1], file=terminal, flush=True)
    sys.exit(exit_code)
