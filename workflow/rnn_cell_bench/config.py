"""Config validation: the JSON schema, then the checks a schema cannot express.

Every problem is reported at once, each naming its key, before any job starts.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from rnn_cell_bench.cells import NAMES as BUILT_IN
from rnn_cell_bench.cells import CellError, custom_cells

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The config is invalid; the message lists every problem, one per line."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid {source} ({len(problems)} problem(s)):\n{lines}")


def _key(path) -> str:
    return ".".join(str(part) for part in path) or "<top level>"


def schema_problems(config: dict, schema_path: str | Path = SCHEMA_PATH) -> list[str]:
    import jsonschema

    with open(schema_path) as handle:
        schema = yaml.safe_load(handle)
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path))):
        if error.validator == "additionalProperties":
            allowed = sorted(error.schema.get("properties", {}))
            extra = sorted(set(error.instance) - set(allowed))
            for name in extra:
                problems.append(
                    f"{_key([*error.path, name])}: unknown key (allowed here: {', '.join(allowed)})"
                )
        elif error.validator == "oneOf" and error.context:
            # One number or a mapping (model.units), a name or a {name, class} entry (cells):
            # report what is wrong with the branch of the value's own type, not that it
            # matches neither.
            own, types = _branches_of_type(validator, error.validator_value, error.instance)
            relevant = [
                e for e in error.context if e.schema_path[0] in own and e.validator != "type"
            ]
            if not relevant:
                problems.append(
                    f"{_key(error.path)}: {error.instance!r} is not of type {' or '.join(types)}"
                )
            for sub in relevant:
                problems.append(f"{_key([*error.path, *sub.path])}: {sub.message}")
        else:
            problems.append(f"{_key(error.path)}: {error.message}")
    return problems


def _branches_of_type(validator, branches: list, instance) -> tuple[set[int], list[str]]:
    """The indices of the ``oneOf`` branches whose type the instance has, and every branch's
    type."""
    own, types = set(), []
    for index, branch in enumerate(branches):
        kinds = branch.get("type", [])
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        types += [kind for kind in kinds if kind not in types]
        if not kinds or any(validator.is_type(instance, kind) for kind in kinds):
            own.add(index)
    return own, types


def semantic_problems(config: dict) -> list[str]:
    """Cross-key checks the schema cannot express. Each check runs only where the values it
    needs have the right types, so these problems are reported together with schema ones."""
    problems = []
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    task = config.get("task") if isinstance(config.get("task"), dict) else {}
    model = config.get("model") if isinstance(config.get("model"), dict) else {}

    horizon, n_steps, file = task.get("horizon"), data.get("n_steps"), data.get("file")
    if isinstance(file, str):
        # The file's own checks (columns, values, lengths) run in the data job, before training.
        if not Path(file).is_file():
            problems.append(
                f"data.file: {file!r} is not a file (relative paths start in the project "
                f"folder, {Path.cwd()})"
            )
    elif _is_int(horizon) and _is_int(n_steps) and horizon >= n_steps:
        problems.append(f"task.horizon: {horizon} must be smaller than data.n_steps ({n_steps})")

    entries = config.get("cells") if isinstance(config.get("cells"), list) else []
    names = [
        entry.get("name") if isinstance(entry, dict) else entry
        for entry in entries
        if isinstance(entry, str)
        or (isinstance(entry, dict) and isinstance(entry.get("name"), str))
    ]
    units = model.get("units")
    if isinstance(units, dict):
        missing = [cell for cell in names if cell not in units]
        if missing:
            problems.append(
                f"model.units: no units for {', '.join(missing)} (given for "
                f"{', '.join(units) or 'no cell'}; list every cell in cells, or give one number)"
            )
        unknown = [key for key in units if key not in names and key not in BUILT_IN]
        if unknown:
            problems.append(
                f"model.units: {', '.join(unknown)} is not a cell (cells: {', '.join(names)})"
            )
    for i, entry in enumerate(entries):
        if isinstance(entry, dict) and entry.get("name") in BUILT_IN:
            problems.append(
                f"cells[{i}] ({entry['name']}): the name of a built-in cell; give your cell "
                f"another name"
            )
    if len(names) != len(set(names)):
        repeated = sorted({name for name in names if names.count(name) > 1})
        problems.append(f"cells: {', '.join(repeated)} named more than once")

    compare = config.get("compare") if isinstance(config.get("compare"), dict) else {}
    reference = compare.get("reference")
    if isinstance(reference, str) and names and reference not in names:
        problems.append(
            f"compare.reference: {reference!r} is not one of the cells ({', '.join(names)})"
        )

    problems += _custom_cell_problems(config, entries)
    return problems


def _custom_cell_problems(config: dict, entries: list) -> list[str]:
    """A user's cell must import, be a Keras RNN cell, and train on the Keras engine: checked
    here, before any job, each problem naming the entry."""
    custom = {
        name: cell
        for name, cell in custom_cells(entries).items()
        if name not in BUILT_IN and ":" in cell.class_path
    }
    if not custom:
        return []
    problems = []
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    study = config.get("study") if isinstance(config.get("study"), dict) else {}
    engines = {train.get("engine")} | set(study.get("train.engine") or [])
    if "fused" in engines:
        where = "train.engine" if train.get("engine") == "fused" else "study axis train.engine"
        for cell in custom.values():
            problems.append(
                f"{cell.entry}: a cell of your own trains on the Keras engine only, and "
                f"{where} asks for fused (use keras or auto, which picks Keras for it)"
            )
    for cell in custom.values():
        try:
            cell.load()
        except CellError as error:
            problems.append(str(error))
    return problems


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_config(config: dict, schema_path: str | Path = SCHEMA_PATH) -> None:
    """Raise :class:`ConfigError` listing every problem in ``config``."""
    problems = schema_problems(config, schema_path) + semantic_problems(config)
    if problems:
        raise ConfigError(problems)
