"""Snakemake adapter: train one cell for one seed and write history, model and run record."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package sits beside scripts/
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # keep TensorFlow's info chatter out of logs

import pandas as pd

from rnn_cell_bench.data import file_sha256, read_dataset
from rnn_cell_bench.logs import redirect_output
from rnn_cell_bench.training import (
    TrainSettings,
    configure_threads,
    run_record,
    train,
    write_json,
)


def main(
    data_path: str,
    cell: str,
    seed: int,
    settings: TrainSettings,
    threads: int,
    log_every: int,
    outputs,
) -> None:
    configure_threads(threads)
    inputs, targets, attrs = read_dataset(data_path)
    print(f"training {cell} seed {seed} on {data_path} {inputs.shape}: {settings}", flush=True)
    result = train(inputs, targets, cell, seed, settings, log_every=log_every)
    history = pd.DataFrame(
        {
            "epoch": range(1, len(result.losses) + 1),
            "loss": result.losses,
            "seconds": result.seconds,
        }
    )
    history.to_csv(outputs.history, index=False, float_format="%.9g")
    result.model.save(outputs.model)
    data = {"file": data_path, "sha256": file_sha256(data_path), "attrs": attrs}
    write_json(run_record(result, cell, seed, settings, threads, data), outputs.run)
    print(f"done: final loss {result.losses[-1]:.6g}, {result.sec_per_epoch:.3f} s/epoch")


if "snakemake" in globals():
    redirect_output(snakemake.log[0])
    main(
        data_path=snakemake.input.data,
        cell=snakemake.wildcards.cell,
        seed=int(snakemake.wildcards.seed),
        settings=TrainSettings(**snakemake.params.settings),
        threads=snakemake.threads,
        # Read from the config, not params: how often to log must not trigger retraining.
        log_every=snakemake.config["train"]["log_every"],
        outputs=snakemake.output,
    )
