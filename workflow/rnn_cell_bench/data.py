"""Synthetic non-stationary sequences: two sinusoids with random-walk amplitudes.

Each sequence is ``|cos(theta_t)| sin(2 pi t / P1) + |sin(theta_t)| sin(2 pi t / P2)``, plus
Gaussian noise and a constant bias, where ``theta`` starts at ``U(-pi, pi)`` and takes a random
walk with steps ``angle_step * U(-1, 1)``. Inputs are ``s[t]`` and targets ``s[t + horizon]``,
both standardized with the statistics stored in the HDF5 file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
DATASETS = ("inputs", "targets")


@dataclass(frozen=True)
class DataSettings:
    """Everything that determines a data file's bytes."""

    n_sequences: int = 40
    n_steps: int = 20000
    periods: tuple[float, float] = (250.0, 1100.0)
    angle_step: float = 0.01
    noise_std: float = 0.1
    bias: float = 100.0
    seed: int = 0
    horizon: int = 200

    @classmethod
    def from_config(cls, config: dict) -> DataSettings:
        """Build from the workflow config's ``data`` and ``task`` sections."""
        return cls.from_attrs({**config["data"], "horizon": config["task"]["horizon"]})

    @classmethod
    def from_attrs(cls, attrs: dict) -> DataSettings:
        """Inverse of :meth:`as_attrs` (also accepts HDF5 attributes with extra keys)."""
        values = {name: attrs[name] for name in cls.__dataclass_fields__}
        values["periods"] = tuple(float(p) for p in values["periods"])
        for name in ("n_sequences", "n_steps", "seed", "horizon"):
            values[name] = int(values[name])
        for name in ("angle_step", "noise_std", "bias"):
            values[name] = float(values[name])
        return cls(**values)

    def as_attrs(self) -> dict:
        attrs = asdict(self)
        attrs["periods"] = list(self.periods)
        return attrs

    def digest(self) -> str:
        """A short stable hash: one data file per distinct setting."""
        canonical = json.dumps(
            {"format_version": FORMAT_VERSION, **self.as_attrs()}, sort_keys=True
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def file_name(self) -> str:
        return f"sines_{self.digest()}.h5"


@dataclass(frozen=True)
class Series:
    """Raw series before standardization, with the noise-free signal kept for checks."""

    raw: np.ndarray  # (n_sequences, n_steps + horizon), float64, includes noise and bias
    clean: np.ndarray  # same shape, without the noise
    theta: np.ndarray  # same shape, the amplitude angle


def generate_series(settings: DataSettings) -> Series:
    """Generate ``n_steps + horizon`` values per sequence, vectorized over sequences."""
    rng = np.random.default_rng(settings.seed)
    n, length = settings.n_sequences, settings.n_steps + settings.horizon
    theta0 = rng.uniform(-np.pi, np.pi, size=(n, 1))
    steps = settings.angle_step * rng.uniform(-1.0, 1.0, size=(n, length))
    steps[:, 0] = 0.0  # theta_0 is the starting angle itself
    theta = theta0 + np.cumsum(steps, axis=1)
    t = np.arange(length)
    period_1, period_2 = settings.periods
    clean = (
        np.abs(np.cos(theta)) * np.sin(2 * np.pi * t / period_1)
        + np.abs(np.sin(theta)) * np.sin(2 * np.pi * t / period_2)
        + settings.bias
    )
    raw = clean + rng.normal(0.0, settings.noise_std, size=(n, length))
    return Series(raw=raw, clean=clean, theta=theta)


def make_arrays(settings: DataSettings) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Standardized float32 ``inputs`` and ``targets`` of shape (n, n_steps, 1), mean, std."""
    raw = generate_series(settings).raw
    mean, std = float(raw.mean()), float(raw.std())
    scaled = (raw - mean) / std
    inputs = scaled[:, : settings.n_steps, None].astype(np.float32)
    targets = scaled[:, settings.horizon :, None].astype(np.float32)
    return inputs, targets, mean, std


def write_dataset(settings: DataSettings, path: str | os.PathLike) -> None:
    """Write the data file atomically: a temporary file in the same folder, then a rename."""
    import h5py

    from rnn_cell_bench import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs, targets, mean, std = make_arrays(settings)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # track_times=False keeps the bytes identical for the same settings.
        with h5py.File(tmp, "w", track_order=True) as h5:
            for name, array in (("inputs", inputs), ("targets", targets)):
                h5.create_dataset(name, data=array, track_times=False)
            h5.attrs["format_version"] = FORMAT_VERSION
            for key, value in settings.as_attrs().items():
                h5.attrs[key] = value
            h5.attrs["mean"] = mean
            h5.attrs["std"] = std
            h5.attrs["settings_digest"] = settings.digest()
            h5.attrs["generator"] = f"rnn_cell_bench {__version__}"
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


REQUIRED_ATTRS = (
    "format_version",
    *DataSettings.__dataclass_fields__,
    "mean",
    "std",
    "settings_digest",
)


class DataFileError(ValueError):
    """A data file is unreadable or not what the config asks for; the message names the file."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"data file {path}: {problem}")


def read_dataset(
    path: str | os.PathLike, expected: DataSettings | None = None
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read and validate ``inputs``, ``targets`` and the attributes of a data file.

    Raises :class:`DataFileError` for a file that is not valid HDF5, lacks a dataset or an
    attribute, has the wrong shape or dtype, holds NaN or inf, has an unknown format version,
    or (when ``expected`` is given) was generated with other settings.
    """
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            attrs = {key: _plain(value) for key, value in h5.attrs.items()}
            missing = [name for name in DATASETS if name not in h5]
            if missing:
                raise DataFileError(path, f"missing dataset(s): {', '.join(missing)}")
            settings = _settings_from_attrs(path, attrs)
            shape = (settings.n_sequences, settings.n_steps, 1)
            for name in DATASETS:
                dataset = h5[name]
                if dataset.shape != shape or dataset.dtype != np.float32:
                    raise DataFileError(
                        path,
                        f"dataset {name!r} is {dataset.dtype}{list(dataset.shape)}, "
                        f"expected float32{list(shape)}",
                    )
            inputs = h5["inputs"][...]
            targets = h5["targets"][...]
    except DataFileError:
        raise
    except (OSError, KeyError, RuntimeError) as error:
        # h5py reports truncated or garbage files as OSError deep in its internals.
        raise DataFileError(path, f"not a readable HDF5 data file ({error})") from error
    for name, array in (("inputs", inputs), ("targets", targets)):
        if not np.isfinite(array).all():
            bad = int(np.size(array) - np.isfinite(array).sum())
            raise DataFileError(path, f"dataset {name!r} holds {bad} NaN or inf value(s)")
    if expected is not None and settings != expected:
        differences = [
            f"{key}={getattr(settings, key)!r} (config: {getattr(expected, key)!r})"
            for key in DataSettings.__dataclass_fields__
            if getattr(settings, key) != getattr(expected, key)
        ]
        raise DataFileError(
            path, f"generated with other settings than the config: {', '.join(differences)}"
        )
    return inputs, targets, attrs


def _settings_from_attrs(path, attrs: dict) -> DataSettings:
    """The generator settings a file's attributes record, once they are checked."""
    missing = [name for name in REQUIRED_ATTRS if name not in attrs]
    if missing:
        raise DataFileError(path, f"missing attribute(s): {', '.join(missing)}")
    if attrs["format_version"] != FORMAT_VERSION:
        raise DataFileError(
            path,
            f"format_version {attrs['format_version']!r} is not known "
            f"(this version reads {FORMAT_VERSION}); regenerate the file",
        )
    try:
        return DataSettings.from_attrs(attrs)
    except (TypeError, ValueError) as error:
        raise DataFileError(path, f"malformed generator attributes ({error})") from error


def _plain(value):
    """HDF5 attributes come back as numpy scalars and arrays; make them JSON-friendly."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
