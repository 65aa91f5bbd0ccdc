import os
import sys
from pathlib import Path

# The package sits beside rules/; import it from here so a copy of the workflow uses its own code.
WORKFLOW_DIR = Path(workflow.current_basedir).parent
sys.path.insert(0, str(WORKFLOW_DIR))

from rnn_cell_bench.config import validate_config
from rnn_cell_bench.data import DataSettings
from rnn_cell_bench.plotting import PlotSettings
from rnn_cell_bench.provenance import TRAIN_MODULES
from rnn_cell_bench.runtime import time_limit_minutes
from rnn_cell_bench.settings import TrainSettings

# Fail before the DAG is built: every problem at once, each naming its key.
validate_config(config, WORKFLOW_DIR / "schemas" / "config.schema.yaml")

DATA_SETTINGS = DataSettings.from_config(config)
TRAIN_SETTINGS = TrainSettings.from_config(config)
# Dataclasses give params a fixed key order: reordering keys in a config file reruns nothing.
PLOT_SETTINGS = PlotSettings.from_config(config["plot"])
CELLS = config["cells"]
SEEDS = config["seeds"]
RUN_DIR = "results/runs/{cell}/seed_{seed}"


wildcard_constraints:
    cell="|".join(CELLS),
    seed=r"\d+",


def package_code(*modules):
    """The package modules a rule's script imports. Snakemake does not track imports, so
    declaring them as inputs is what makes a code change rerun exactly the dependent stages.
    Relative paths keep the recorded input set valid when the project folder moves."""
    package = WORKFLOW_DIR / "rnn_cell_bench"
    return [os.path.relpath(package / f"{module}.py") for module in modules]


def all_runs(name):
    """One file per cell x seed, in config order."""
    return expand(f"{RUN_DIR}/{name}", cell=CELLS, seed=SEEDS)


def train_runtime_minutes():
    """Minutes for a cluster's time limit, from the engine that will run (see the README)."""
    return time_limit_minutes(
        TRAIN_SETTINGS.engine,
        DATA_SETTINGS.n_sequences,
        DATA_SETTINGS.n_steps,
        TRAIN_SETTINGS.units,
        TRAIN_SETTINGS.epochs,
    )
