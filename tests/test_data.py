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
    make_arrays,
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
    assert not np.allclose(read_dataset(tmp_path / "a.h5")[0], read_dataset(tmp_path / "c.h5")[0])


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
        assert set(h5) == {"inputs", "targets"}
        assert set(REQUIRED_ATTRS) <= set(h5.attrs)
        assert h5.attrs["format_version"] == FORMAT_VERSION
    _, _, attrs = read_dataset(path)
    assert DataSettings.from_attrs(attrs) == SMALL
    assert attrs["settings_digest"] == SMALL.digest()
    assert attrs["std"] > 0


def test_distinct_settings_get_distinct_file_names():
    names = {
        SMALL.file_name(),
        dataclasses.replace(SMALL, horizon=51).file_name(),
        dataclasses.replace(SMALL, periods=(250.0, 1000.0)).file_name(),
    }
    assert len(names) == 3
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
    inputs, targets, attrs = read_dataset(good_file, expected=SMALL)
    assert inputs.shape == (6, 3000, 1) and attrs["seed"] == 0


def test_missing_dataset(good_file):
    with h5py.File(good_file, "a") as h5:
        del h5["targets"]
    expect_error(good_file, r"missing dataset\(s\): targets")


def test_missing_attribute(good_file):
    with h5py.File(good_file, "a") as h5:
        del h5.attrs["std"]
        del h5.attrs["horizon"]
    expect_error(good_file, r"missing attribute\(s\): horizon, std")


def test_wrong_shape(good_file):
    with h5py.File(good_file, "a") as h5:
        del h5["inputs"]
        h5["inputs"] = np.zeros((6, 2999, 1), dtype=np.float32)
    expect_error(
        good_file, r"dataset 'inputs' is float32\[6, 2999, 1\], expected float32\[6, 3000, 1\]"
    )


def test_wrong_dtype(good_file):
    with h5py.File(good_file, "a") as h5:
        data = h5["targets"][...]
        del h5["targets"]
        h5["targets"] = data.astype(np.float64)
    expect_error(good_file, r"dataset 'targets' is float64\[6, 3000, 1\], expected float32")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf(good_file, bad):
    with h5py.File(good_file, "a") as h5:
        h5["inputs"][2, 100, 0] = bad
    expect_error(good_file, r"dataset 'inputs' holds 1 NaN or inf value\(s\)")


def test_unknown_format_version(good_file):
    with h5py.File(good_file, "a") as h5:
        h5.attrs["format_version"] = 99
    expect_error(good_file, r"format_version 99 is not known \(this version reads 1\)")


def test_generated_with_other_settings(good_file):
    expected = dataclasses.replace(SMALL, seed=5, noise_std=0.2)
    expect_error(
        good_file,
        r"generated with other settings than the config: noise_std=0.1 \(config: 0.2\), "
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
