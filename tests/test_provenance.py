"""Provenance: what run.json records, and the refusal to compare runs of different origin."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rnn_cell_bench.models import initial_weights
from rnn_cell_bench.provenance import (
    TRAIN_MODULES,
    check_comparable,
    code_digest,
    cpu_info,
    run_record,
    settings_hash,
)
from rnn_cell_bench.settings import RunResult, TrainSettings


def fake_run(cell, seed, sha="a" * 64, settings_hash="s1", engine="fused", **settings):
    return {
        "cell": cell,
        "seed": seed,
        "data": {"sha256": sha},
        "settings": {"units": 16, "epochs": 10, **settings},
        "settings_hash": settings_hash,
        "engine": engine,
    }


def test_comparable_runs_pass():
    check_comparable({f"{c}/seed_{s}": fake_run(c, s) for c in ("lstm", "gru") for s in (0, 1)})


def test_runs_on_other_data_are_named():
    runs = {"lstm/seed_0": fake_run("lstm", 0), "gru/seed_0": fake_run("gru", 0, sha="b" * 64)}
    with pytest.raises(
        ValueError, match=r"same data .*aaaaaaaaaaaa: lstm/seed_0; bbbbbbbbbbbb: gru/seed_0"
    ):
        check_comparable(runs)


def test_runs_of_one_cell_with_other_settings_are_named():
    runs = {
        "lstm/seed_0": fake_run("lstm", 0),
        "lstm/seed_1": fake_run("lstm", 1, settings_hash="s2"),
        "gru/seed_0": fake_run("gru", 0),
    }
    with pytest.raises(ValueError, match=r"same lstm settings .*s1: lstm/seed_0; s2: lstm/seed_1"):
        check_comparable(runs)


def test_cells_may_differ_in_units_only():
    """model.units per cell (equal parameter counts) is like for like; other settings are not."""
    matched = {
        "lstm/seed_0": fake_run("lstm", 0, settings_hash="l", units=16, unit_forget_bias=True),
        "gru/seed_0": fake_run("gru", 0, settings_hash="g", units=18, unit_forget_bias=None),
    }
    check_comparable(matched)
    other = {**matched, "gru/seed_0": fake_run("gru", 0, settings_hash="g", units=18, epochs=9)}
    with pytest.raises(
        ValueError, match=r"same settings \(apart from per-cell units\).*gru/seed_0"
    ):
        check_comparable(other)


def record(engine: str, configured: str = "auto") -> dict:
    """run.json of a tiny run that ``engine`` computed under ``train.engine: configured``."""
    result = RunResult(weights=initial_weights("gru", 4, 0), engine=engine)
    result.losses, result.seconds = [1.0, 0.5], [0.1, 0.1]
    settings = dataclasses.replace(TrainSettings(units=4, engine=configured), engine=engine)
    return run_record(result, "gru", 0, settings, 1, {"sha256": "a" * 64}, "CPU")


def test_auto_resolved_to_different_engines_is_not_like_for_like():
    """engine: auto may pick cuDNN on one node and the fused engine on another: the records
    hash the engine that ran, and aggregation refuses the mix, naming the runs."""
    keras_run, fused_run = record("keras"), record("fused")
    assert keras_run["settings"]["engine"] == "keras" and fused_run["settings"]["engine"] == "fused"
    assert keras_run["settings_hash"] != fused_run["settings_hash"]
    with pytest.raises(
        ValueError, match=r"same gru engine\b.*keras: gru/seed_0; fused: gru/seed_1"
    ):
        check_comparable({"gru/seed_0": keras_run, "gru/seed_1": fused_run})


def test_cells_may_differ_in_engine():
    """engine: auto trains a user's cell on Keras and the built-in cells on the fused engine:
    their losses compare (the engines agree to 1e-3), and the speed claim is left
    inconclusive (tests/test_statistics.py), so aggregation accepts it."""
    runs = {
        "lstm/seed_0": fake_run("lstm", 0, engine="fused", settings_hash="l", engine_="fused"),
        "mgu/seed_0": fake_run("mgu", 0, engine="keras", settings_hash="m", engine_="keras"),
    }
    for run in runs.values():  # the settings name the engine too, as run_record writes them
        run["settings"]["engine"] = run["settings"].pop("engine_")
    runs["mgu/seed_0"]["settings"]["cell_class"] = "my_cells:MinimalGatedUnit"
    check_comparable(runs)


def test_a_record_never_says_auto():
    result = RunResult(weights=initial_weights("gru", 4, 0), engine="fused", losses=[1.0])
    result.seconds = [0.1]
    with pytest.raises(ValueError, match="not the engine that ran"):
        run_record(result, "gru", 0, TrainSettings(units=4), 1, {}, "CPU")


def test_record_holds_cpu_and_code():
    run = record("fused")
    assert run["code_digest"] == code_digest() and len(run["code_digest"]) == 16
    assert run["cpu"] == cpu_info()
    assert run["params"] == 3 * (4 + 16 + 8) + 5
    assert run["settings_hash"] == settings_hash(TrainSettings(units=4, engine="fused"))


def test_cpu_info_names_the_vector_extensions():
    info = cpu_info()
    text = Path("/proc/cpuinfo").read_text()
    assert ("avx2" in info["flags"]) == (" avx2" in text)
    assert ("avx512f" in info["flags"]) == (" avx512f" in text)
    assert info["model"] and info["machine"]


def test_code_digest_follows_every_training_module(tmp_path):
    from rnn_cell_bench.provenance import PACKAGE_DIR

    for module in TRAIN_MODULES:
        (tmp_path / f"{module}.py").write_bytes((PACKAGE_DIR / f"{module}.py").read_bytes())
    base = code_digest(package_dir=tmp_path)
    assert base == code_digest()
    for module in TRAIN_MODULES:
        path = tmp_path / f"{module}.py"
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        assert code_digest(package_dir=tmp_path) != base, module
        path.write_bytes(original)
    assert code_digest(package_dir=tmp_path) == base
