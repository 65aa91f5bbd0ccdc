"""Studies: the conditions a config asks for, their directories, and bad axes named early."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import REPO

from rnn_cell_bench.config import validate_config
from rnn_cell_bench.settings import TrainSettings
from rnn_cell_bench.study import StudyError, expand_study, format_value


@pytest.fixture
def config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_without_a_study_the_config_is_the_one_condition(config):
    (condition,) = expand_study(config)
    assert condition.directory == "" and condition.axes == {}
    assert condition.config["task"] == config["task"]


def test_a_study_is_the_product_of_its_axes_in_order(config):
    config["study"] = {"task.horizon": [1, 25, 200], "model.units": [8, {"lstm": 16, "gru": 18}]}
    conditions = expand_study(config)
    assert [c.directory for c in conditions] == [
        "task.horizon~1/model.units~8",
        "task.horizon~1/model.units~gru18_lstm16",
        "task.horizon~25/model.units~8",
        "task.horizon~25/model.units~gru18_lstm16",
        "task.horizon~200/model.units~8",
        "task.horizon~200/model.units~gru18_lstm16",
    ]
    last = conditions[-1]
    assert last.config["task"]["horizon"] == 200
    assert last.config["model"]["units"] == {"lstm": 16, "gru": 18}
    assert last.labels() == {"task.horizon": 200, "model.units": "gru18_lstm16"}
    assert "study" not in last.config
    # Each condition is a valid config in its own right, and the input config is unchanged.
    for condition in conditions:
        validate_config(condition.config)
    assert config["model"]["units"] == 16


def test_per_cell_units_give_each_cell_its_own_width(config):
    config["model"]["units"] = {"lstm": 16, "gru": 18}
    assert TrainSettings.from_config(config, "lstm").units == 16
    assert TrainSettings.from_config(config, "gru").units == 18
    assert TrainSettings.from_config(config, "gru").unit_forget_bias is None


def test_a_mapping_of_units_must_name_every_cell(config):
    config["model"]["units"] = {"lstm": 16}
    with pytest.raises(ValueError, match=r"model.units: no units for gru"):
        validate_config(config)


@pytest.mark.parametrize(
    ("axis", "values", "message"),
    [
        (
            "task.horizn",
            [1, 2],
            r"study.task.horizn: no such config key \(keys of task: task.horizon\)",
        ),
        ("horizon", [1], r"study.horizon: not an axis"),
        ("cells", [["lstm"]], r"study.cells: not an axis"),
        ("plot.dpi", [10, 20], r"study.plot.dpi: not an axis"),
        ("train.threads", [1, 2], r"study.train.threads: .*does not change a run's result"),
        ("task.horizon", [25, 0], r"study.task.horizon: value 0: task.horizon: 0 is less than"),
        ("model.units", [{"lstm": 0, "gru": 4}], r"study.model.units: value .*model.units.lstm: 0"),
        (
            "train.engine",
            ["fast"],
            r"study.train.engine: value 'fast': train.engine: 'fast' is not one of",
        ),
        ("task.horizon", [1, 1], r"study.task.horizon: values 1 and 1 are the same"),
        (
            "task.horizon",
            [20000],
            r"study condition task.horizon~20000: task.horizon: 20000 must be smaller",
        ),
    ],
)
def test_a_bad_axis_or_value_is_named(config, axis, values, message):
    config["study"] = {axis: values}
    with pytest.raises(StudyError, match=message):
        expand_study(config)


def test_every_problem_is_reported_at_once(config):
    config["study"] = {"task.horizn": [1], "train.epochs": [0, 10]}
    with pytest.raises(StudyError) as raised:
        expand_study(copy.deepcopy(config))
    assert len(raised.value.problems) == 2


def test_directory_names_are_stable_and_safe():
    assert format_value(0.001) == "0.001"
    assert format_value(True) == "true"
    assert format_value([250, 1100]) == "250-1100"
    assert format_value({"lstm": 16, "gru": 18}) == format_value({"gru": 18, "lstm": 16})
    with pytest.raises(ValueError, match="cannot name a directory"):
        format_value("a/b")


def test_an_axis_the_data_source_ignores_is_refused(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.csv").write_text("x\n" + "1\n2\n" * 20)
    config["study"] = {"data.split": ["time", "sequence"]}  # the generator has no split
    with pytest.raises(StudyError, match=r"study.data.split: a key for data.file, which no"):
        expand_study(copy.deepcopy(config))
    config["data"]["file"] = "mine.csv"
    config["study"] = {"data.n_steps": [100, 200]}  # a file has its own length
    with pytest.raises(StudyError, match=r"study.data.n_steps: the generator's key has no"):
        expand_study(copy.deepcopy(config))
    config["study"] = {"data.heldout_fraction": [0.2, 0.3], "data.file": ["mine.csv"]}
    assert len(expand_study(copy.deepcopy(config))) == 2
