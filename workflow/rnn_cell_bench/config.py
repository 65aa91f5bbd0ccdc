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
        else:
            problems.append(f"{_key(error.path)}: {error.message}")
    return problems


def semantic_problems(config: dict) -> list[str]:
    """Cross-key checks; assumes the schema's types hold."""
    problems = []
    data, task = config["data"], config["task"]
    if task["horizon"] >= data["n_steps"]:
        problems.append(
            f"task.horizon: {task['horizon']} must be smaller than data.n_steps ({data['n_steps']})"
        )
    return problems


def validate_config(config: dict, schema_path: str | Path = SCHEMA_PATH) -> None:
    """Raise :class:`ConfigError` listing every problem in ``config``."""
    problems = schema_problems(config, schema_path)
    if not problems:
        problems = semantic_problems(config)
    if problems:
        raise ConfigError(problems)
