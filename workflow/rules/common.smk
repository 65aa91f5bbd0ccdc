import os
import re
import sys
from pathlib import Path

# The package sits beside rules/; import it from here so a copy of the workflow uses its own code.
WORKFLOW_DIR = Path(workflow.current_basedir).parent
sys.path.insert(0, str(WORKFLOW_DIR))

from rnn_cell_bench.cells import cell_names, custom_cells
from rnn_cell_bench.config import validate_config
from rnn_cell_bench.data import DataSettings, FileDataSettings, settings_from_config
from rnn_cell_bench.plotting import PlotSettings
from rnn_cell_bench.provenance import TRAIN_MODULES
from rnn_cell_bench.runtime import time_limit_minutes
from rnn_cell_bench.settings import TrainSettings
from rnn_cell_bench.statistics import default_reference
from rnn_cell_bench.study import expand_study, study_axes

# Fail before the DAG is built: every problem at once, each naming its key, axis or value.
validate_config(config, WORKFLOW_DIR / "schemas" / "config.schema.yaml")
CONDITIONS = {condition.directory: condition for condition in expand_study(config)}
STUDY_AXES = list(study_axes(config))

NAME = config["name"]
RESULTS = f"results/{NAME}"
CELLS = cell_names(config["cells"])
# A user's cell is code: its module's source file is an input of its training jobs, so an edit
# reruns its runs (and what they feed) and no other cell's. validate_config imported it.
CUSTOM_CELLS = custom_cells(config["cells"])
CELL_SOURCES = {name: os.path.relpath(cell.source_file()) for name, cell in CUSTOM_CELLS.items()}
REFERENCE = (config.get("compare") or {}).get("reference") or default_reference(CELLS)
SEEDS = config["seeds"]
# A study's runs sit in one directory per condition; a plain config's directly under runs/.
CONDITION_DIR = "{condition}/" if STUDY_AXES else ""
RUN_DIR = f"{RESULTS}/runs/{CONDITION_DIR}{{cell}}/seed_{{seed}}"
RUN_NAME = f"{CONDITION_DIR}{{cell}}/seed_{{seed}}"  # for logs, benchmarks and checkpoints
RUN_LABELS = {"condition": "{condition}"} if STUDY_AXES else {}
RUN_LABELS.update(cell="{cell}", seed="{seed}")
# Data files are named by their settings (a file of the user's by its SHA-256, read once
# here), so conditions (and experiments) share equal data.
CONDITION_DATA = {name: settings_from_config(c.config) for name, c in CONDITIONS.items()}
DATA_SETTINGS = {settings.digest(): settings for settings in CONDITION_DATA.values()}
# Dataclasses give params a fixed key order: reordering keys in a config file reruns nothing.
PLOT_SETTINGS = PlotSettings.from_config(config["plot"])


wildcard_constraints:
    cell="|".join(CELLS),
    seed=r"\d+",
    condition="|".join(re.escape(name) for name in CONDITIONS) or "(?!)",
    data_digest="[0-9a-f]{12}",


def package_code(*modules):
    """The package modules a rule's script imports. Snakemake does not track imports, so
    declaring them as inputs is what makes a code change rerun exactly the dependent stages.
    Relative paths keep the recorded input set valid when the project folder moves."""
    package = WORKFLOW_DIR / "rnn_cell_bench"
    return [os.path.relpath(package / f"{module}.py") for module in modules]


def condition_of(wildcards):
    return CONDITIONS[wildcards.get("condition", "")]


def data_settings(wildcards) -> DataSettings | FileDataSettings:
    return CONDITION_DATA[wildcards.get("condition", "")]


def train_settings(wildcards) -> TrainSettings:
    return TrainSettings.from_config(condition_of(wildcards).config, wildcards.cell)


def cell_source(wildcards) -> list[str]:
    """A user's cell's source file (nothing for a built-in cell)."""
    return [CELL_SOURCES[wildcards.cell]] if wildcards.cell in CELL_SOURCES else []


def data_file(wildcards) -> str:
    return f"data/{data_settings(wildcards).file_name()}"


def source_file(wildcards):
    """The user's file behind a converted data file. Its content is in the data file's name,
    so only that counts: ancient() keeps a touched but unchanged file from rerunning it."""
    return ancient(DATA_SETTINGS[wildcards.data_digest].file)


def run_path(template: str, wildcards) -> str:
    """``template`` (with {condition}, {cell} and {seed}) for the job's wildcards."""
    return template.format(
        condition=wildcards.get("condition", ""), cell=wildcards.cell, seed=wildcards.seed
    )


def run_list():
    """Every run as (condition, cell, seed), condition by condition in study order."""
    return [(condition, cell, seed) for condition in CONDITIONS for cell in CELLS for seed in SEEDS]


def all_runs(name):
    """One file per condition x cell x seed, in the order of :func:`run_list`."""
    template = f"{RUN_DIR}/{name}"
    return [
        template.format(condition=condition, cell=cell, seed=seed)
        for condition, cell, seed in run_list()
    ]


def run_descriptions():
    """Per run, in the order of :func:`all_runs`: its condition's axis values, cell and seed."""
    return [
        {"condition": condition, "axes": CONDITIONS[condition].labels(), "cell": cell, "seed": seed}
        for condition, cell, seed in run_list()
    ]


def train_runtime_minutes(wildcards):
    """Minutes for a cluster's time limit, from the engine that will run (see the README)."""
    settings, data = train_settings(wildcards), data_settings(wildcards)
    if isinstance(data, FileDataSettings):
        # The size is known only once the file is read: bound it by the file's bytes (at
        # least 4 per value in every format), which errs on the long side.
        sequences, steps = 1, max(1, os.path.getsize(data.file) // 4)
    else:
        # Held-out evaluation is a forward pass every train.eval_every epochs: about 1% of the
        # training time at the defaults (see the README), well inside the safety factor.
        sequences, steps = data.n_sequences, data.n_steps
    engine = "keras" if settings.cell_class else settings.engine  # a user's cell: Keras only
    return time_limit_minutes(engine, sequences, steps, settings.units, settings.epochs)
