rule plot:
    input:
        histories=all_runs("history.csv"),
        metrics=rules.aggregate.output.metrics,
        code=package_code("plotting", "statistics"),
    output:
        png=report(
            "results/figures/loss_curves.png",
            caption="../report/loss_curves.rst",
            category="Figures",
        ),
        svg="results/figures/loss_curves.svg",
    log:
        "results/logs/plot.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        runs=[[cell, seed] for cell in CELLS for seed in SEEDS],
        settings=vars(PLOT_SETTINGS),
    script:
        "../scripts/plot.py"
