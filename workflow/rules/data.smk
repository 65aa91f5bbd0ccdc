rule generate_data:
    input:
        code=package_code("data"),
    output:
        f"data/{DATA_SETTINGS.file_name()}",
    log:
        f"results/logs/generate_data/{DATA_SETTINGS.file_name()}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        settings=DATA_SETTINGS.as_attrs(),
    script:
        "../scripts/generate_data.py"
