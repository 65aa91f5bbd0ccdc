"""The train rule declares every package module a training job runs."""

from __future__ import annotations

import ast

from conftest import REPO

from rnn_cell_bench.provenance import TRAIN_MODULES

PACKAGE = REPO / "workflow" / "rnn_cell_bench"


def imported_modules(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rnn_cell_bench."):
            found.add(node.module.split(".", 1)[1])
    return found


def test_train_modules_cover_everything_the_train_script_imports():
    seen, todo = set(), imported_modules(REPO / "workflow" / "scripts" / "train.py")
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo |= imported_modules(PACKAGE / f"{module}.py")
    assert seen <= set(TRAIN_MODULES), seen - set(TRAIN_MODULES)
