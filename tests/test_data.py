"""The synthetic data generator and its HDF5 files."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from rnn_cell_bench.data import (
    FORMAT_VERSION,
    REQUIRED_ATTRS,
    DataFileError,
    DataSettings,
    file_sha256,
    generate_series,
    heldout_series,
    make_arrays,
    make_dataset,
    read_dataset,
    write_dataset,
)

SMALL = DataSettings(n_sequences=6, n_steps=3000, horizon=50)


def test_shapes_and_dtypes():
    inputs, targets, _, _ = make_arrays(SMALL)
    assert inputs.shape == targets.shape == (6, 3000, 1)
    assert inputs.dtype == targets.dtype == np.float32


def test_targets_are_the_series_horizon_steps_ahead():
    inputs, targets, _, _ = make_arrays(SMALL)
    np.testing.assert_array_equal(targets[:, : -SMALL.horizon], inputs[:, SMALL.horizon :])


def test_inputs_are_standardized():
    inputs, targets, mean, std = make_arrays(SMALL)
    both = np.concatenate([inputs[:, :, 0], targets[:, -SMALL.horizon :, 0]], axis=1)
    assert abs(both.mean()) < 1e-3
    assert both.std() == pytest.approx(1.0, abs=1e-3)
    assert mean == pytest.approx(SMALL.bias, abs=0.2)


def test_same_seed_same_bytes_different_seed_different_data(tmp_path):
    write_dataset(SMALL, tmp_path / "a.h5")
    write_dataset(SMALL, tmp_path / "b.h5")
    write_dataset(dataclasses.replace(SMALL, seed=1), tmp_path / "c.h5")
    assert file_sha256(tmp_path / "a.h5") == file_sha256(tmp_path / "b.h5")
    assert file_sha256(tmp_path / "a.h5") != file_sha256(tmp_path / "c.h5")
    a, c = read_dataset(tmp_path / "a.h5"), read_dataset(tmp_path / "c.h5")
    assert not np.allclose(a.inputs, c.inputs)
    assert not np.allclose(a.heldout_inputs, c.heldout_inputs)


def test_heldout_sequences_leave_the_training_data_bit_identical():
    """The training sequences are those of the generator before it had a held-out part:
    generated from the seed's own stream, whatever the held-out count."""
    dataset = make_dataset(SMALL)
    inputs, targets, mean, std = make_arrays(SMALL)
    more = make_dataset(dataclasses.replace(SMALL, heldout_sequences=20))
    np.testing.assert_array_equal(dataset.inputs, inputs)
    np.testing.assert_array_equal(more.inputs, inputs)
    np.testing.assert_array_equal(more.targets, targets)
    # the training stream itself, as it always was: default_rng(seed) drives the generator
    rng = np.random.default_rng(SMALL.seed)
    theta0 = rng.uniform(-np.pi, np.pi, size=(SMALL.n_sequences, 1))
    np.testing.assert_array_equal(generate_series(SMALL).theta[:, :1], theta0)
    assert dataset.heldout_inputs.shape == (8, 3000, 1) and dataset.heldout_start == 0
    # the first 8 of 20 held-out sequences are the 8: one stream, drawn further
    assert more.heldout_inputs.shape[0] == 20


def test_heldout_stream_is_independent_of_the_training_stream():
    settings = dataclasses.replace(SMALL, n_sequences=8, heldout_sequences=8)
    train, held = generate_series(settings), heldout_series(settings)
    noise_train = (train.raw - train.clean).ravel()
    noise_held = (held.raw - held.clean).ravel()
    assert abs(np.corrcoef(noise_train, noise_held)[0, 1]) < 0.01
    assert not np.isin(held.theta[:, 0], train.theta[:, 0]).any()
    # the same process: same noise level and bias
    assert noise_held.std() == pytest.approx(settings.noise_std, rel=0.02)
    assert held.raw.mean() == pytest.approx(settings.bias, abs=0.05)


def test_heldout_part_is_standardized_with_the_training_statistics():
    dataset = make_dataset(SMALL)
    _, _, mean, std = make_arrays(SMALL)
    raw = heldout_series(SMALL).raw
    expected = ((raw[:, : SMALL.n_steps] - mean) / std).astype(np.float32)
    np.testing.assert_array_equal(dataset.heldout_inputs[..., 0], expected)
    np.testing.assert_array_equal(
        dataset.heldout_targets[:, : -SMALL.horizon], dataset.heldout_inputs[:, SMALL.horizon :]
    )


def test_residual_variance_is_the_noise_and_mean_is_the_bias():
    settings = DataSettings(n_sequences=20, n_steps=5000, horizon=10, noise_std=0.1, bias=100.0)
    series = generate_series(settings)
    residual = series.raw - series.clean  # the known amplitudes and sinusoids removed
    assert residual.var() == pytest.approx(settings.noise_std**2, rel=0.02)
    assert series.raw.mean() == pytest.approx(settings.bias, abs=0.05)


def test_amplitude_angle_is_a_bounded_random_walk():
    settings = DataSettings(n_sequences=50, n_steps=2000, horizon=1, noise_std=0.0, bias=0.0)
    series = generate_series(settings)
    steps = np.diff(series.theta, axis=1)
    assert np.abs(steps).max() <= settings.angle_step
    assert steps.std() == pytest.approx(settings.angle_step / np.sqrt(3), rel=0.02)  # U(-a, a)
    assert np.abs(series.theta[:, 0]).max() <= np.pi
    # Without noise and bias the series is exactly the two amplitude-modulated sinusoids.
    t = np.arange(series.clean.shape[1])
    p1, p2 = settings.periods
    expected = np.abs(np.cos(series.theta)) * np.sin(2 * np.pi * t / p1) + np.abs(
        np.sin(series.theta)
    ) * np.sin(2 * np.pi * t / p2)
    np.testing.assert_allclose(series.clean, expected, atol=1e-12)
    np.testing.assert_array_equal(series.raw, series.clean)


def test_file_attributes_are_complete(tmp_path):
    path = tmp_path / "data.h5"
    write_dataset(SMALL, path)
    with h5py.File(path) as h5:
        assert set(h5) == {"inputs", "targets", "heldout_inputs", "heldout_targets"}
        assert set(REQUIRED_ATTRS) <= set(h5.attrs)
        assert h5.attrs["format_version"] == FORMAT_VERSION
    attrs = read_dataset(path).attrs
    assert DataSettings.from_attrs(attrs) == SMALL
    assert DataSettings.from_attrs(attrs["settings"]) == SMALL
    assert attrs["settings_digest"] == SMALL.digest()
    assert attrs["std"] > 0 and attrs["description"]["target"]["std"] == attrs["std"]


def test_distinct_settings_get_distinct_file_names():
    names = {
        SMALL.file_name(),
        dataclasses.replace(SMALL, horizon=51).file_name(),
        dataclasses.replace(SMALL, periods=(250.0, 1000.0)).file_name(),
        dataclasses.replace(SMALL, heldout_sequences=9).file_name(),
    }
    assert len(names) == 4
    assert SMALL.file_name() == DataSettings(**dataclasses.asdict(SMALL)).file_name()


def test_write_leaves_no_temporary_file(tmp_path):
    write_dataset(SMALL, tmp_path / "data.h5")
    assert [p.name for p in tmp_path.iterdir()] == ["data.h5"]


# --- validation: every way a data file can be wrong gets a message naming file and problem ---


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "data.h5"
    write_dataset(SMALL, path)
    return path


def expect_error(path, match, expected=SMALL):
    with pytest.raises(DataFileError, match=match) as raised:
        read_dataset(path, expected=expected)
    assert str(raised.value).startswith(f"data file {path}: ")


def test_valid_file_passes(good_file):
    dataset = read_dataset(good_file, expected=SMALL)
    assert dataset.inputs.shape == (6, 3000, 1) and dataset.attrs["seed"] == 0
    assert dataset.heldout_inputs.shape == (8, 3000, 1)


def test_missing_dataset(good_file):
    with h5py.File(good_file, "a") as h5:
        del h5["targets"]
        del h5["heldout_inputs"]
    expect_error(good_file, r"missing dataset\(s\): targets, heldout_inputs")


def test_missing_attribute(good_file):
    with h5py.File(good_file, "a") as h5:
        del h5.attrs["settings"]
        del h5.attrs["heldout_start"]
    expect_error(good_file, r"missing attribute\(s\): settings, heldout_start")


def test_wrong_shape(good_file):
    with h5py.File(good_file, "a") as h5:
        del h5["inputs"]
        h5["inputs"] = np.zeros((6, 2999, 1), dtype=np.float32)
    expect_error(good_file, r"dataset 'targets' is \[6, 3000, 1\], expected \[6, 2999, 1\]")


def test_wrong_dtype(good_file):
    with h5py.File(good_file, "a") as h5:
        data = h5["targets"][...]
        del h5["targets"]
        h5["targets"] = data.astype(np.float64)
    expect_error(good_file, r"dataset 'targets' is float64\[6, 3000, 1\], expected float32")


def test_heldout_of_other_features_or_start(good_file):
    with h5py.File(good_file, "a") as h5:
        del h5["heldout_inputs"]
        h5["heldout_inputs"] = np.zeros((8, 3000, 2), dtype=np.float32)
    expect_error(good_file, r"'heldout_inputs' has 2 features, 'inputs' 1")
    with h5py.File(good_file, "a") as h5:
        del h5["heldout_inputs"]
        h5["heldout_inputs"] = np.zeros((8, 3000, 1), dtype=np.float32)
        h5.attrs["heldout_start"] = 3000
    expect_error(good_file, r"heldout_start 3000 is not a step of the held-out part")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf(good_file, bad):
    with h5py.File(good_file, "a") as h5:
        h5["heldout_inputs"][2, 100, 0] = bad
    expect_error(good_file, r"dataset 'heldout_inputs' holds 1 NaN or inf value\(s\)")


def test_unknown_format_version(good_file):
    with h5py.File(good_file, "a") as h5:
        h5.attrs["format_version"] = 99
    expect_error(good_file, r"format_version 99 is not known \(this version reads 2\)")


def test_generated_with_other_settings(good_file):
    expected = dataclasses.replace(SMALL, seed=5, noise_std=0.2)
    expect_error(
        good_file,
        r"made with other settings than the config: noise_std=0.1 \(config: 0.2\), "
        r"seed=0 \(config: 5\)",
        expected=expected,
    )


def test_truncated_file(good_file):
    good_file.write_bytes(good_file.read_bytes()[:4096])
    expect_error(good_file, "not a readable HDF5 data file")


def test_garbage_file(good_file):
    good_file.write_bytes(b"\x00garbage" * 1000)
    expect_error(good_file, "not a readable HDF5 data file")


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nowhere.h5", "not a readable HDF5 data file")
