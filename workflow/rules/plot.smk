rule plot:
    input:
        histories=all_runs("history.csv"),
        metrics=rules.aggregate.output.metrics,
        comparison=rules.aggregate.output.comparison,
        code=package_code("plotting", "statistics"),
    output:
        png=report(
            f"{RESULTS}/figures/loss_curves.png",
            caption="../report/loss_curves.rst",
            category="Figures",
        ),
        svg=f"{RESULTS}/figures/loss_curves.svg",
    log:
        f"{RESULTS}/logs/plot.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        runs=run_descriptions(),
        titles={name: condition.title() for name, condition in CONDITIONS.items()},
        settings=vars(PLOT_SETTINGS),
    script:
        "../scripts/plot.py"


# Only for a study: each cell's ratio to the reference against each axis.
rule plot_study:
    input:
        comparison=rules.aggregate.output.comparison,
        code=package_code("plotting"),
    output:
        png=report(
            f"{RESULTS}/figures/study.png",
            caption="../report/study.rst",
            category="Figures",
        ),
        svg=f"{RESULTS}/figures/study.svg",
    log:
        f"{RESULTS}/logs/plot_study.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        axes=STUDY_AXES,
        reference=REFERENCE,
        settings=vars(PLOT_SETTINGS),
    script:
        "../scripts/plot_study.py"
