# rnn-cell-bench: LSTM vs GRU on long non-stationary sequences, over seeds.
# The stages live in workflow/rules/, the science in workflow/rnn_cell_bench/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/plot.smk"


localrules:
    all,
    generate_data,
    convert_data,
    aggregate,
    plot,
    plot_study,


rule all:
    default_target: True
    input:
        rules.aggregate.output,
        rules.plot.output,
        rules.plot_study.output if STUDY_AXES else [],
