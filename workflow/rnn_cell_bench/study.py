"""Named experiments and studies: the conditions one config asks for.

A config without ``study`` is one condition, the config itself. With ``study``, every point of
the product of its axes is a condition: a full config with the axis values applied. An axis is a
dotted ``section.key`` path to an existing key of ``data``, ``task``, ``model`` or ``train``; its
values are each validated against the schema at that key, and every condition is validated as a
whole (cross-key checks such as ``task.horizon < data.n_steps``) before any job starts.

Each condition's runs live in a directory named ``key~value`` per axis, joined by ``/`` in
study order (Snakemake's ``Paramspace`` convention), e.g.
``task.horizon~25/model.units~16``; the plain config's runs have no condition directory.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rnn_cell_bench.config import SCHEMA_PATH, schema_problems, semantic_problems

DEFAULT_NAME = "default"
AXIS_SECTIONS = ("data", "task", "model", "train")
# Keys that never change a run's result: an axis over them would train identical runs.
NO_RESULT_KEYS = (
    "train.log_every",
    "train.threads",
    "train.jobs_per_gpu",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.tensorboard",
)
# Keys that only one data source reads: an axis over one the other source ignores would train
# the same runs once per value.
GENERATOR_ONLY_KEYS = tuple(
    f"data.{key}"
    for key in (
        "n_sequences",
        "n_steps",
        "periods",
        "angle_step",
        "noise_std",
        "bias",
        "seed",
        "heldout_sequences",
    )
)
FILE_ONLY_KEYS = tuple(
    f"data.{key}"
    for key in ("dataset", "sequence_column", "target", "inputs", "split", "heldout_fraction")
)
_SAFE_LABEL = re.compile(r"^[A-Za-z0-9_.+-]+$")


class StudyError(ValueError):
    """The study is invalid; the message lists every problem, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid study ({len(problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class Condition:
    """One point of a study: its directory, its axis values and the full config."""

    directory: str  # "" for a config without study
    axes: dict = field(default_factory=dict)  # dotted key -> value, in study order
    config: dict = field(default_factory=dict)

    def labels(self) -> dict[str, object]:
        """Axis values for tables: scalars as they are, lists and mappings as their label."""
        return {
            key: value if isinstance(value, int | float | str) else format_value(value)
            for key, value in self.axes.items()
        }

    def title(self) -> str:
        """``key = value`` per axis, one per line, for figure panels ("" without axes)."""
        return "\n".join(f"{key} = {format_value(value)}" for key, value in self.axes.items())


def format_value(value) -> str:
    """A value as a path segment: readable, stable and free of separators."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        label = str(value)
    elif isinstance(value, float):
        label = repr(value)
    elif isinstance(value, list | tuple):
        label = "-".join(format_value(item) for item in value)
    elif isinstance(value, Mapping):
        label = "_".join(f"{key}{format_value(value[key])}" for key in sorted(value))
    else:
        raise TypeError(f"cannot name a condition after a {type(value).__name__}: {value!r}")
    if not _SAFE_LABEL.match(label):
        raise ValueError(f"{value!r} cannot name a directory (allowed: letters, digits, _.+-)")
    return label


def get_dotted(config: Mapping, key: str):
    section, name = key.split(".", 1)
    return config[section][name]


def with_value(config: Mapping, key: str, value) -> dict:
    """A deep copy of ``config`` with ``key`` (``section.name``) set to ``value``."""
    changed = copy.deepcopy(dict(config))
    section, name = key.split(".", 1)
    changed[section] = {**changed[section], name: copy.deepcopy(value)}
    return changed


def _axis_problems(base: dict, key: str, values, schema_path) -> list[str]:
    where = f"study.{key}"
    parts = key.split(".")
    if len(parts) != 2 or parts[0] not in AXIS_SECTIONS:
        return [
            f"{where}: not an axis; an axis is section.key with section one of "
            f"{', '.join(AXIS_SECTIONS)} (cells and seeds already are the inner dimensions)"
        ]
    section, name = parts
    if name not in base.get(section, {}):
        known = ", ".join(f"{section}.{known}" for known in sorted(base.get(section, {})))
        return [f"{where}: no such config key (keys of {section}: {known})"]
    if key in NO_RESULT_KEYS:
        return [f"{where}: {key} does not change a run's result, so it cannot be an axis"]
    if not isinstance(values, list) or not values:
        return [f"{where}: must be a non-empty list of values, got {values!r}"]
    problems, labels = [], {}
    for value in values:
        value_problems = schema_problems(with_value(base, key, value), schema_path)
        # The base config is valid, so every problem comes from this value.
        problems += [f"{where}: value {value!r}: {problem}" for problem in value_problems]
        if value_problems:
            continue
        label = format_value(value)
        if label in labels:
            problems.append(f"{where}: values {labels[label]!r} and {value!r} are the same")
        labels[label] = value
    return problems


def study_axes(config: Mapping) -> dict[str, list]:
    return dict(config.get("study") or {})


def expand_study(config: Mapping, schema_path: str | Path = SCHEMA_PATH) -> list[Condition]:
    """Every condition of ``config`` (already validated without its study), in study order;
    raises :class:`StudyError` naming each bad axis, value or condition."""
    axes = study_axes(config)
    base = {key: value for key, value in config.items() if key != "study"}
    if not axes:
        return [Condition("", {}, base)]
    problems = []
    for key, values in axes.items():
        problems += _axis_problems(base, key, values, schema_path)
    if problems:
        raise StudyError(problems)
    conditions = []
    for point in itertools.product(*axes.values()):
        condition_config = base
        for key, value in zip(axes, point, strict=True):
            condition_config = with_value(condition_config, key, value)
        values = dict(zip(axes, point, strict=True))
        directory = "/".join(f"{key}~{format_value(value)}" for key, value in values.items())
        for problem in semantic_problems(condition_config):
            problems.append(f"study condition {directory}: {problem}")
        conditions.append(Condition(directory, values, condition_config))
    with_file = [bool(c.config["data"].get("file")) for c in conditions]
    for key in axes:
        if key in GENERATOR_ONLY_KEYS and all(with_file):
            problems.append(
                f"study.{key}: the generator's key has no effect with data.file set, so its "
                f"conditions would train identical runs"
            )
        if key in FILE_ONLY_KEYS and not any(with_file):
            problems.append(
                f"study.{key}: a key for data.file, which no condition sets (the generator "
                f"ignores it), so its conditions would train identical runs"
            )
    if problems:
        raise StudyError(problems)
    return conditions
