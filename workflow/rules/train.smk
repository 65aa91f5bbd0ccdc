rule train:
    input:
        data=data_file,
        code=package_code(*TRAIN_MODULES),
        cell_code=cell_source,
    output:
        history=f"{RUN_DIR}/history.csv",
        model=f"{RUN_DIR}/model.keras",
        run=report(
            f"{RUN_DIR}/run.json",
            caption="../report/run.rst",
            category="Provenance",
            subcategory="{cell}",
            labels=RUN_LABELS,
        ),
    log:
        f"{RESULTS}/logs/train/{RUN_NAME}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{RUN_NAME}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        # One GPU slot per training job: --resources gpu=N locally runs N at once, each on a
        # GPU of its own (train.jobs_per_gpu slots per GPU; rnn_cell_bench/gpu_slots.py).
        gpu=1,
        # Minutes, for cluster schedulers: enough for the configured epochs and data size.
        runtime=train_runtime_minutes,
    params:
        settings=lambda wildcards: vars(train_settings(wildcards)),
        data_settings=lambda wildcards: data_settings(wildcards).as_attrs(),
        # Outside the outputs: Snakemake deletes declared outputs before a rerun.
        checkpoint=lambda wildcards: run_path(f"{RESULTS}/checkpoints/{RUN_NAME}.npz", wildcards),
        # Written to only with train.tensorboard: true, which the script reads from the config:
        # a live view changes no result, so toggling it reruns nothing. Not an output either.
        tensorboard=lambda wildcards: run_path(f"{RESULTS}/tensorboard/{RUN_NAME}", wildcards),
    script:
        "../scripts/train.py"
