"""A user's own file: formats, the split, standardization on the training part only, no leak of
held-out values into training, and a message naming the file and the place for bad input."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pandas as pd
import pytest

from rnn_cell_bench.data import FileDataSettings, file_sha256, read_dataset, write_data_file
from rnn_cell_bench.sources import SourceError, make_file_dataset

STEPS, HORIZON = 50, 4


def frame(steps: int = STEPS, sequences=("a", "b"), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for name in sequences:
        parts.append(
            pd.DataFrame(
                {
                    "site": name,
                    "load": rng.normal(10, 2, steps).round(4),
                    "temp": rng.normal(0, 1, steps).round(4),
                    "sun": rng.uniform(0, 1, steps).round(4),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def settings(path, **changes) -> FileDataSettings:
    base = FileDataSettings(
        file=str(path),
        sha256=file_sha256(path),
        sequence_column="site",
        target="load",
        inputs=("load", "temp", "sun"),
        split="time",
        heldout_fraction=0.2,
        horizon=HORIZON,
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "series.csv"
    frame().to_csv(path, index=False)
    return path


def test_csv_time_split_shapes_targets_and_standardization(csv):
    dataset = make_file_dataset(csv, settings(csv))
    held_steps = round(0.2 * STEPS)  # 10
    train_steps = STEPS - held_steps  # T0 = 40
    assert dataset.inputs.shape == (2, train_steps - HORIZON, 3)
    assert dataset.targets.shape == (2, train_steps - HORIZON, 1)
    assert dataset.heldout_inputs.shape == (2, STEPS - HORIZON, 3)
    assert dataset.heldout_start == train_steps - HORIZON
    raw = frame()
    load = raw["load"].to_numpy().reshape(2, STEPS)
    train_part = load[:, :train_steps]
    mean, std = train_part.mean(), train_part.std()
    # the target at step t is the load HORIZON steps ahead, standardized with training stats
    expected = ((load[:, HORIZON:train_steps] - mean) / std).astype(np.float32)
    np.testing.assert_array_equal(dataset.targets[..., 0], expected)
    np.testing.assert_array_equal(
        dataset.inputs[..., 0], ((load[:, : train_steps - HORIZON] - mean) / std).astype(np.float32)
    )
    # the held-out targets that count are exactly the held-out part's loads
    counted = dataset.heldout_targets[:, dataset.heldout_start :, 0]
    np.testing.assert_array_equal(
        counted, ((load[:, train_steps:] - mean) / std).astype(np.float32)
    )
    assert dataset.description["target"] == {"name": "load", "mean": mean, "std": std}
    assert [f["name"] for f in dataset.description["inputs"]] == ["load", "temp", "sun"]


def test_changing_only_the_heldout_part_leaves_training_bit_identical(tmp_path, csv):
    """No held-out value reaches training: not as an input, a target or a statistic."""
    before = make_file_dataset(csv, settings(csv))
    changed = frame()
    held = np.zeros(len(changed), dtype=bool)
    for start in (0, STEPS):  # the last 10 steps of each sequence
        held[start + STEPS - 10 : start + STEPS] = True
    changed.loc[held, ["load", "temp", "sun"]] *= 100.0  # wildly different held-out values
    other = tmp_path / "changed.csv"
    changed.to_csv(other, index=False)
    after = make_file_dataset(other, settings(other))
    np.testing.assert_array_equal(before.inputs, after.inputs)
    np.testing.assert_array_equal(before.targets, after.targets)
    assert before.description["inputs"] == after.description["inputs"]
    assert before.description["target"] == after.description["target"]
    assert not np.array_equal(before.heldout_targets, after.heldout_targets)
    # ... and one step earlier is training data: changing it changes the training targets
    changed.loc[STEPS - 11, "load"] += 1.0
    changed.to_csv(other, index=False)
    moved = make_file_dataset(other, settings(other))
    assert not np.array_equal(before.targets, moved.targets)


def test_sequence_split_holds_out_whole_sequences(tmp_path):
    path = tmp_path / "five.csv"
    frame(sequences=("a", "b", "c", "d", "e")).to_csv(path, index=False)
    dataset = make_file_dataset(path, settings(path, split="sequence", heldout_fraction=0.4))
    assert dataset.inputs.shape == (3, STEPS - HORIZON, 3)
    assert dataset.heldout_inputs.shape == (2, STEPS - HORIZON, 3)
    assert dataset.heldout_start == 0
    assert "(d, e)" in dataset.description["split"]
    # changing a held-out sequence changes nothing of training
    changed = frame(sequences=("a", "b", "c", "d", "e"))
    changed.loc[changed["site"].isin(["d", "e"]), "load"] += 50
    other = tmp_path / "other.csv"
    changed.to_csv(other, index=False)
    after = make_file_dataset(other, settings(other, split="sequence", heldout_fraction=0.4))
    np.testing.assert_array_equal(dataset.inputs, after.inputs)
    np.testing.assert_array_equal(dataset.targets, after.targets)


def test_npy_and_hdf5_read_arrays_by_feature_index(tmp_path):
    array = np.random.default_rng(1).normal(size=(3, STEPS, 2))
    np.save(tmp_path / "series.npy", array)
    with h5py.File(tmp_path / "series.h5", "w") as h5:
        h5["group/values"] = array
    results = []
    for name, extra in (("series.npy", {}), ("series.h5", {"dataset": "group/values"})):
        path = tmp_path / name
        chosen = settings(path, sequence_column=None, target=1, inputs=None, **extra)
        results.append(make_file_dataset(path, chosen))
    np.testing.assert_array_equal(results[0].inputs, results[1].inputs)
    assert results[0].inputs.shape == (3, 36, 2)
    expected = (array[:, HORIZON:40, 1] - array[:, :40, 1].mean()) / array[:, :40, 1].std()
    np.testing.assert_array_equal(results[0].targets[..., 0], expected.astype(np.float32))


def test_converted_file_reads_back_and_its_name_covers_the_content(tmp_path, csv):
    chosen = settings(csv)
    write_data_file(make_file_dataset(csv, chosen), chosen, tmp_path / chosen.file_name())
    back = read_dataset(tmp_path / chosen.file_name(), expected=chosen)
    assert back.heldout_start == 36 and back.inputs.shape == (2, 36, 3)
    moved = dataclasses.replace(chosen, file="elsewhere/series.csv")
    assert moved.file_name() == chosen.file_name()  # where the file lies does not matter
    frame(seed=1).to_csv(csv, index=False)
    assert settings(csv).file_name() != chosen.file_name()  # its content does
    assert dataclasses.replace(chosen, heldout_fraction=0.3).file_name() != chosen.file_name()


def write_csv(tmp_path, text: str):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return path


def expect(path, match, **changes):
    with pytest.raises(SourceError, match=match) as raised:
        make_file_dataset(path, settings(path, **changes))
    assert str(raised.value).startswith(f"data.file {path}: ")


def test_unknown_target_input_and_sequence_columns(csv):
    expect(
        csv,
        r"data.target 'price' is not a column \(feature columns: load, temp, sun\)",
        target="price",
    )
    expect(csv, r"data.inputs 'wind' is not a column", inputs=("load", "wind"))
    expect(csv, r"data.sequence_column 'city' is not a column", sequence_column="city")
    expect(csv, r"data.target is needed: the file has 3 features", target=None)


def test_non_numeric_cell_names_line_and_column(tmp_path):
    text = "site,load,temp,sun\n" + "a,1,2,3\n" * 3 + "a,1,warm,3\n" + "a,1,2,3\n" * 40
    expect(write_csv(tmp_path, text), r"line 5, column 'temp': 'warm' is not a number")
    text = "site,load,temp,sun\n" + "a,1,2,3\n" * 6 + "a,,2,3\n" + "a,1,2,3\n" * 40
    expect(write_csv(tmp_path, text), r"line 8, column 'load': an empty cell")


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_nan_or_inf_names_line_and_column(tmp_path, bad):
    text = "site,load,temp,sun\n" + "a,1,2,3\n" * 9 + f"a,1,2,{bad}\n" + "a,1,2,3\n" * 40
    expect(write_csv(tmp_path, text), r"line 11, column 'sun': .* \(NaN or inf; 1 such value")


def test_nan_in_an_array_names_its_index(tmp_path):
    array = np.ones((2, STEPS, 2))
    array[1, 7, 0] = np.nan
    path = tmp_path / "a.npy"
    np.save(path, array)
    expect(
        path,
        r"the array\[1, 7, 0\] \(sequence, step, feature\): nan",
        sequence_column=None,
        target=0,
        inputs=None,
    )


def test_sequences_of_different_lengths(tmp_path):
    rows = frame()
    path = tmp_path / "ragged.csv"
    rows.drop(index=[3, 4]).to_csv(path, index=False)
    expect(path, r"sequences of different lengths \(rows per 'site' value: 'a': 48, 'b': 50\)")


def test_too_short_for_the_horizon_and_the_split(csv):
    expect(
        csv,
        r"too short for task.horizon 40 and data.heldout_fraction 0.2 \(time split\)",
        horizon=40,
    )
    expect(csv, r"holds out 0: each part needs at least one sequence", split="sequence")


def test_constant_target_or_input(tmp_path):
    rows = frame()
    rows["load"] = 5.0
    path = tmp_path / "flat.csv"
    rows.to_csv(path, index=False)
    expect(path, r"the target 'load' is constant in the training part \(5\): standardization")
    rows = frame()
    rows.loc[rows.index < 40, "sun"] = 0.0  # constant over sequence a's training part only
    rows.loc[(rows.index >= 50) & (rows.index < 90), "sun"] = 0.0
    rows.to_csv(path, index=False)
    expect(path, r"the input 'sun' is constant in the training part")


def test_missing_file_wrong_type_and_bad_arrays(tmp_path):
    expect_missing = tmp_path / "nowhere.csv"
    with pytest.raises(SourceError, match="no such file"):
        make_file_dataset(
            expect_missing,
            dataclasses.replace(settings(write_csv(tmp_path, "a\n1\n")), file=str(expect_missing)),
        )
    path = tmp_path / "series.parquet"
    path.write_bytes(b"x")
    expect(path, r"unknown file type '.parquet'")
    flat = tmp_path / "flat.npy"
    np.save(flat, np.ones((4, 5)))
    expect(flat, r"shape \[4, 5\]: expected sequences x steps x features", sequence_column=None)
    h5 = tmp_path / "d.h5"
    with h5py.File(h5, "w") as handle:
        handle["x"] = np.ones((1, 5, 1))
    expect(
        h5, r"data.dataset is needed for an HDF5 file \(datasets in it: x\)", sequence_column=None
    )
    expect(h5, r"data.dataset 'y' is not in the file", sequence_column=None, dataset="y")
