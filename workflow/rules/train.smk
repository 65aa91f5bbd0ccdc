rule train:
    input:
        data=rules.generate_data.output[0],
        code=package_code(*TRAIN_MODULES),
    output:
        history=f"{RUN_DIR}/history.csv",
        model=f"{RUN_DIR}/model.keras",
        run=report(
            f"{RUN_DIR}/run.json",
            caption="../report/run.rst",
            category="Provenance",
            subcategory="{cell}",
            labels={"cell": "{cell}", "seed": "{seed}"},
        ),
    log:
        "results/logs/train/{cell}/seed_{seed}.log",
    benchmark:
        "results/benchmarks/train/{cell}/seed_{seed}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        # One GPU slot per training job: --resources gpu=N locally runs N at once, each on a
        # GPU of its own (train.jobs_per_gpu slots per GPU; rnn_cell_bench/gpu_slots.py).
        gpu=1,
        # Minutes, for cluster schedulers: enough for the configured epochs and data size.
        runtime=train_runtime_minutes(),
    params:
        settings=vars(TRAIN_SETTINGS),
        data_settings=DATA_SETTINGS.as_attrs(),
        # Outside the outputs: Snakemake deletes declared outputs before a rerun.
        checkpoint=lambda wildcards: f"results/checkpoints/{wildcards.cell}/seed_{wildcards.seed}.npz",
        # Written to only with train.tensorboard: true, which the script reads from the config:
        # a live view changes no result, so toggling it reruns nothing. Not an output either.
        tensorboard=lambda wildcards: f"results/tensorboard/{wildcards.cell}/seed_{wildcards.seed}",
    script:
        "../scripts/train.py"
