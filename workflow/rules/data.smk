rule generate_data:
    input:
        code=package_code("data"),
    output:
        "data/sines_{data_digest}.h5",
    log:
        "data/logs/sines_{data_digest}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        settings=lambda wildcards: DATA_SETTINGS[wildcards.data_digest].as_attrs(),
    script:
        "../scripts/generate_data.py"
