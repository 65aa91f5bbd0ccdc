"""Config validation: the JSON schema, then the checks a schema cannot express.

Every problem is reported at once, each naming its key, before any job starts.
"""

from __future__ import annotations

from pathlib import Path

import yaml

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
            # One number or a mapping (model.units): report what is wrong with the branch of
            # the value's own type, not that it matches neither.
            relevant = [e for e in error.context if e.validator != "type"] or error.context
            for sub in relevant:
                problems.append(f"{_key([*error.path, *sub.path])}: {sub.message}")
        else:
            problems.append(f"{_key(error.path)}: {error.message}")
    return problems


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

    units, cells = model.get("units"), config.get("cells")
    if isinstance(units, dict) and isinstance(cells, list):
        missing = [cell for cell in cells if isinstance(cell, str) and cell not in units]
        if missing:
            problems.append(
                f"model.units: no units for {', '.join(missing)} (given for "
                f"{', '.join(units) or 'no cell'}; list every cell in cells, or give one number)"
            )

    return problems


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_config(config: dict, schema_path: str | Path = SCHEMA_PATH) -> None:
    """Raise :class:`ConfigError` listing every problem in ``config``."""
    problems = schema_problems(config, schema_path) + semantic_problems(config)
    if problems:
        raise ConfigError(problems)
