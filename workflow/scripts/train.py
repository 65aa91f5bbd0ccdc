"""Snakemake adapter: train one cell for one seed and write history, model and run record."""

import dataclasses
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package sits beside scripts/

import pandas as pd

from rnn_cell_bench.checkpoints import Checkpointer
from rnn_cell_bench.data import (
    AnyDataSettings,
    DataFileError,
    file_sha256,
    read_dataset,
    settings_from_attrs,
)
from rnn_cell_bench.gpu_slots import claim_gpu
from rnn_cell_bench.live_view import tensorboard_scalars
from rnn_cell_bench.logs import redirect_output
from rnn_cell_bench.models import save_model
from rnn_cell_bench.provenance import (
    cell_record,
    code_digest,
    run_fingerprint,
    run_record,
    write_json,
)
from rnn_cell_bench.runtime import configure_threads, device_name, resolve_engine
from rnn_cell_bench.settings import TrainingDiverged, TrainingInterrupted, TrainSettings
from rnn_cell_bench.training import HeldOut, train

EXIT_INTERRUPTED = 128 + 15  # the shell's code for "ended by SIGTERM": the job is retried


def main(
    data_path: str,
    expected_data: AnyDataSettings,
    cell: str,
    seed: int,
    settings: TrainSettings,
    threads: int,
    options: dict,
    checkpoint_path: str,
    outputs,
    source_dir: Path,
    gpu: dict | None = None,
) -> int:
    configure_threads(threads)
    try:  # refuse a damaged file, or one generated with other settings, before any training
        dataset = read_dataset(data_path, expected=expected_data)
    except DataFileError as error:
        print(f"error: {error}", flush=True)
        return 2
    inputs, targets = dataset.inputs, dataset.targets
    heldout = HeldOut(dataset.heldout_inputs, dataset.heldout_targets, dataset.heldout_start)
    data_sha256 = file_sha256(data_path)
    # From here on, settings name the engine that runs: hashes and records never say "auto".
    custom = settings.cell_class is not None  # a user's cell: always the Keras engine
    settings = dataclasses.replace(settings, engine=resolve_engine(settings.engine, custom))
    # A user's cell's source is part of the code: an edit never resumes an old checkpoint.
    custom_record = cell_record(settings)
    code = code_digest(cell_source=custom_record["file"] if custom_record else None)
    device = device_name()
    print(f"device: {device}, engine: {settings.engine}, threads: {threads}", flush=True)
    print(
        f"training {cell} seed {seed} (pid {os.getpid()}) on {data_path} {inputs.shape}, "
        f"held out {heldout.inputs.shape} from step {heldout.start}: {settings}",
        flush=True,
    )
    checkpointer = Checkpointer(
        checkpoint_path,
        every=options["checkpoint_every"],
        fingerprint=run_fingerprint(cell, seed, settings, data_sha256, code),
    )
    tensorboard = options["tensorboard_dir"] if options["tensorboard"] else None
    try:
        with tensorboard_scalars(tensorboard) as on_epoch:
            result = train(
                inputs,
                targets,
                cell,
                seed,
                settings,
                log_every=options["log_every"],
                checkpointer=checkpointer,
                on_nan=options["on_nan"],
                on_epoch=on_epoch,
                heldout=heldout,
            )
    except TrainingInterrupted as stop:
        print(f"interrupted: {stop}", flush=True)
        return EXIT_INTERRUPTED
    except TrainingDiverged as error:
        print(f"failed (train.on_nan: fail): {error}", flush=True)
        return 1
    history = pd.DataFrame(
        {
            "epoch": range(1, len(result.losses) + 1),
            "loss": result.losses,
            "seconds": result.seconds,
            "heldout_loss": result.heldout_losses,  # empty where not measured
        }
    )
    history.to_csv(outputs.history, index=False, float_format="%.9g")
    save_model(
        outputs.model,
        cell,
        result.weights,
        result.optimizer_state,
        settings,
        input_dim=inputs.shape[-1],
    )
    data = {"file": data_path, "sha256": data_sha256, "attrs": dataset.attrs}
    record = run_record(result, cell, seed, settings, threads, data, device, source_dir, gpu)
    write_json(record, outputs.run)
    if not options["keep_checkpoints"]:
        checkpointer.remove()
    print(
        f"done ({result.status}): {len(result.losses)} epochs, {result.sec_per_epoch:.3f} s/epoch"
    )
    return 0


if "snakemake" in globals():
    log_finished = redirect_output(snakemake.log[0], keep_unfinished=True)
    train_config = snakemake.config["train"]
    # Before TensorFlow is imported: a GPU of this job's own, held until the process ends
    # (rnn_cell_bench/gpu_slots.py). From the config, not params: no rerun on change.
    gpu = claim_gpu(train_config["jobs_per_gpu"])
    print(f"gpu: {gpu.describe() if gpu else 'none'}", flush=True)
    exit_code = main(
        data_path=snakemake.input.data,
        expected_data=settings_from_attrs(snakemake.params.data_settings),
        cell=snakemake.wildcards.cell,
        seed=int(snakemake.wildcards.seed),
        settings=TrainSettings(**snakemake.params.settings),
        threads=snakemake.threads,
        # Read from the config, not params: these never change a completed run's result,
        # so changing them must not trigger retraining.
        options={
            **{
                key: train_config[key]
                for key in (
                    "log_every",
                    "checkpoint_every",
                    "keep_checkpoints",
                    "on_nan",
                    "tensorboard",
                )
            },
            "tensorboard_dir": snakemake.params.tensorboard,
        },
        checkpoint_path=snakemake.params.checkpoint,
        outputs=snakemake.output,
        source_dir=Path(snakemake.scriptdir),
        gpu=gpu.record() if gpu else None,
    )
    if exit_code == 0:
        log_finished()
    sys.exit(exit_code)
