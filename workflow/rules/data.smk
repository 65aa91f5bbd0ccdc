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


# A file of the user's, checked, split and standardized into the project's own format: training
# reads only the result, never the user's file.
rule convert_data:
    input:
        source=source_file,
        code=package_code("data", "sources"),
    output:
        "data/series_{data_digest}.h5",
    log:
        "data/logs/series_{data_digest}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        settings=lambda wildcards: DATA_SETTINGS[wildcards.data_digest].as_attrs(),
    script:
        "../scripts/convert_data.py"
