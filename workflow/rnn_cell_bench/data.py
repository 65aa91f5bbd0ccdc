"""The data a run trains on and is judged on, in the project's own HDF5 format.

Two sources fill the same format:

- The synthetic generator (the default): two sinusoids with random-walk amplitudes. Each
  sequence is ``|cos(theta_t)| sin(2 pi t / P1) + |sin(theta_t)| sin(2 pi t / P2)``, plus
  Gaussian noise and a constant bias, where ``theta`` starts at ``U(-pi, pi)`` and takes a
  random walk with steps ``angle_step * U(-1, 1)``. Inputs are ``s[t]`` and targets
  ``s[t + horizon]``, standardized with the mean and standard deviation of the training
  sequences. The held-out part is ``heldout_sequences`` more sequences of the same process from
  an independent random stream (a child of the seed's ``SeedSequence``), so the training
  sequences are exactly those of a generator without a held-out part.
- A file of the user's own (CSV, ``.npy`` or HDF5), converted by :mod:`rnn_cell_bench.sources`,
  which splits it into a training and a held-out part (by time or by sequence) and
  standardizes both with the training part's statistics.

A data file holds ``inputs`` ``(n, steps, features)`` and ``targets`` ``(n, steps, 1)`` for
training and ``heldout_inputs``/``heldout_targets`` (``m`` sequences, maybe of another length),
all float32 and standardized. ``heldout_start`` is the first step of a held-out sequence whose
target counts in the held-out loss: 0, except for a time split, where the model reads each
sequence from its start (building up its state on the training part) and only the targets that
lie in the held-out part count.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import numpy as np

FORMAT_VERSION = 2  # 1: training data only, no held-out part
DATASETS = ("inputs", "targets", "heldout_inputs", "heldout_targets")
SPLITS = ("time", "sequence")
HELDOUT_STREAM = 1  # spawn key of the generator's held-out stream (a SeedSequence child)


def _digest(payload: dict) -> str:
    canonical = json.dumps({"format_version": FORMAT_VERSION, **payload}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class DataSettings:
    """Everything that determines a generated data file's bytes."""

    source: ClassVar[str] = "generator"
    prefix: ClassVar[str] = "sines"

    n_sequences: int = 40
    n_steps: int = 20000
    periods: tuple[float, float] = (250.0, 1100.0)
    angle_step: float = 0.01
    noise_std: float = 0.1
    bias: float = 100.0
    seed: int = 0
    horizon: int = 200
    heldout_sequences: int = 8

    @classmethod
    def from_config(cls, config: dict) -> DataSettings:
        """Build from the workflow config's ``data`` and ``task`` sections."""
        data = config["data"]
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        return cls.from_attrs({**values, "horizon": config["task"]["horizon"]})

    @classmethod
    def from_attrs(cls, attrs: dict) -> DataSettings:
        """Inverse of :meth:`as_attrs` (also accepts HDF5 attributes with extra keys)."""
        values = {f.name: attrs[f.name] for f in fields(cls) if f.name in attrs}
        values["periods"] = tuple(float(p) for p in values["periods"])
        for name in ("n_sequences", "n_steps", "seed", "horizon", "heldout_sequences"):
            if name in values:
                values[name] = int(values[name])
        for name in ("angle_step", "noise_std", "bias"):
            values[name] = float(values[name])
        return cls(**values)

    def as_attrs(self) -> dict:
        attrs = asdict(self)
        attrs["periods"] = list(self.periods)
        return {"source": self.source, **attrs}

    def identity(self) -> dict:
        """What the file's bytes depend on (and its name covers)."""
        return self.as_attrs()

    def digest(self) -> str:
        """A short stable hash: one data file per distinct setting."""
        return _digest(self.identity())

    def file_name(self) -> str:
        return f"{self.prefix}_{self.digest()}.h5"


@dataclass(frozen=True)
class FileDataSettings:
    """A data file converted from the user's own file: its checksum and how it is read and
    split. The configured path is recorded but is not part of the identity: the same bytes
    read the same way give the same data file wherever they lie."""

    source: ClassVar[str] = "file"
    prefix: ClassVar[str] = "series"

    file: str
    sha256: str
    dataset: str | None = None
    sequence_column: str | None = None
    target: str | int | None = None
    inputs: tuple[str | int, ...] | None = None
    split: str = "time"
    heldout_fraction: float = 0.2
    horizon: int = 200

    @classmethod
    def from_config(cls, config: dict, sha256: str) -> FileDataSettings:
        data = config["data"]
        return cls.from_attrs(
            {
                "file": data["file"],
                "sha256": sha256,
                **{key: data.get(key) for key in ("dataset", "sequence_column", "target")},
                "inputs": data.get("inputs"),
                "split": data.get("split", "time"),
                "heldout_fraction": data.get("heldout_fraction", 0.2),
                "horizon": config["task"]["horizon"],
            }
        )

    @classmethod
    def from_attrs(cls, attrs: dict) -> FileDataSettings:
        inputs = attrs.get("inputs")
        return cls(
            file=str(attrs["file"]),
            sha256=str(attrs["sha256"]),
            dataset=attrs.get("dataset"),
            sequence_column=attrs.get("sequence_column"),
            target=attrs.get("target"),
            inputs=None if inputs is None else tuple(inputs),
            split=str(attrs.get("split", "time")),
            heldout_fraction=float(attrs.get("heldout_fraction", 0.2)),
            horizon=int(attrs["horizon"]),
        )

    def as_attrs(self) -> dict:
        attrs = asdict(self)
        attrs["inputs"] = None if self.inputs is None else list(self.inputs)
        return {"source": self.source, **attrs}

    def identity(self) -> dict:
        return {key: value for key, value in self.as_attrs().items() if key != "file"}

    def digest(self) -> str:
        return _digest(self.identity())

    def file_name(self) -> str:
        return f"{self.prefix}_{self.digest()}.h5"


AnyDataSettings = DataSettings | FileDataSettings


def settings_from_attrs(attrs: dict) -> AnyDataSettings:
    """The settings of either source from :meth:`as_attrs` (rule params, JSON)."""
    if attrs.get("source", "generator") == "file":
        return FileDataSettings.from_attrs(attrs)
    return DataSettings.from_attrs(attrs)


def settings_from_config(config: dict, project_dir: str | os.PathLike = ".") -> AnyDataSettings:
    """The data settings a config asks for: the generator, or ``data.file`` (whose SHA-256
    is read here, so that the data file's name covers the file's content)."""
    path = config["data"].get("file")
    if path is None:
        return DataSettings.from_config(config)
    return FileDataSettings.from_config(config, _current_sha256(Path(project_dir) / path))


def _current_sha256(path: Path) -> str:
    """:func:`file_sha256`, read once per file content: every condition of a study on the same
    file asks for it when the DAG is built."""
    stat = path.stat()
    return _sha256_of_version(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _sha256_of_version(path: str, mtime_ns: int, size: int) -> str:
    return file_sha256(path)


@dataclass
class Dataset:
    """A data file's arrays (standardized float32) and what describes them."""

    inputs: np.ndarray  # (n, steps, features): training
    targets: np.ndarray  # (n, steps, 1)
    heldout_inputs: np.ndarray  # (m, heldout steps, features)
    heldout_targets: np.ndarray  # (m, heldout steps, 1)
    heldout_start: int = 0  # the first held-out step whose target counts
    # per feature: name, mean and std of the training part; how the held-out part was made
    description: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)  # the file's attributes, when read from one


@dataclass(frozen=True)
class Series:
    """Raw series before standardization, with the noise-free signal kept for checks."""

    raw: np.ndarray  # (n_sequences, n_steps + horizon), float64, includes noise and bias
    clean: np.ndarray  # same shape, without the noise
    theta: np.ndarray  # same shape, the amplitude angle


def generate_series(
    settings: DataSettings, n_sequences: int | None = None, rng: np.random.Generator | None = None
) -> Series:
    """Generate ``n_steps + horizon`` values per sequence, vectorized over sequences: the
    training sequences by default, or ``n_sequences`` from ``rng``."""
    rng = np.random.default_rng(settings.seed) if rng is None else rng
    n = settings.n_sequences if n_sequences is None else n_sequences
    length = settings.n_steps + settings.horizon
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


def heldout_series(settings: DataSettings) -> Series:
    """The held-out sequences: the same process from an independent stream, so the training
    sequences do not change when their number does."""
    stream = np.random.SeedSequence(settings.seed, spawn_key=(HELDOUT_STREAM,))
    return generate_series(settings, settings.heldout_sequences, np.random.default_rng(stream))


def _standardized_pairs(raw: np.ndarray, horizon: int, n_steps: int, mean: float, std: float):
    scaled = (raw - mean) / std
    inputs = scaled[:, :n_steps, None].astype(np.float32)
    targets = scaled[:, horizon:, None].astype(np.float32)
    return inputs, targets


def make_arrays(settings: DataSettings) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Standardized float32 training ``inputs`` and ``targets`` of shape (n, n_steps, 1), and
    the mean and std of the raw training series."""
    raw = generate_series(settings).raw
    mean, std = float(raw.mean()), float(raw.std())
    inputs, targets = _standardized_pairs(raw, settings.horizon, settings.n_steps, mean, std)
    return inputs, targets, mean, std


def make_dataset(settings: DataSettings) -> Dataset:
    """The training arrays of :func:`make_arrays` and the held-out sequences, standardized
    with the training sequences' statistics."""
    inputs, targets, mean, std = make_arrays(settings)
    heldout = heldout_series(settings).raw
    heldout_inputs, heldout_targets = _standardized_pairs(
        heldout, settings.horizon, settings.n_steps, mean, std
    )
    description = {
        "inputs": [{"name": "series", "mean": mean, "std": std}],
        "target": {"name": "series", "mean": mean, "std": std},
        "split": f"{settings.heldout_sequences} held-out sequences from an independent stream",
    }
    return Dataset(inputs, targets, heldout_inputs, heldout_targets, 0, description)


def write_data_file(dataset: Dataset, settings: AnyDataSettings, path: str | os.PathLike) -> None:
    """Write ``dataset`` atomically: a temporary file in the same folder, then a rename."""
    import h5py

    from rnn_cell_bench import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # track_times=False keeps the bytes identical for the same settings.
        with h5py.File(tmp, "w", track_order=True) as h5:
            for name in DATASETS:
                h5.create_dataset(name, data=getattr(dataset, name), track_times=False)
            h5.attrs["format_version"] = FORMAT_VERSION
            h5.attrs["source"] = settings.source
            h5.attrs["settings"] = json.dumps(settings.as_attrs(), sort_keys=True)
            if isinstance(settings, DataSettings):  # readable one by one, e.g. with h5dump
                for key, value in settings.as_attrs().items():
                    h5.attrs[key] = value
                h5.attrs["mean"] = dataset.description["target"]["mean"]
                h5.attrs["std"] = dataset.description["target"]["std"]
            h5.attrs["heldout_start"] = dataset.heldout_start
            h5.attrs["description"] = json.dumps(dataset.description, sort_keys=True)
            h5.attrs["settings_digest"] = settings.digest()
            h5.attrs["generator"] = f"rnn_cell_bench {__version__}"
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_dataset(settings: DataSettings, path: str | os.PathLike) -> None:
    """Generate the data of ``settings`` and write it to ``path``."""
    write_data_file(make_dataset(settings), settings, path)


REQUIRED_ATTRS = (
    "format_version",
    "source",
    "settings",
    "heldout_start",
    "description",
    "settings_digest",
)


class DataFileError(ValueError):
    """A data file is unreadable or not what the config asks for; the message names the file."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"data file {path}: {problem}")


def read_dataset(path: str | os.PathLike, expected: AnyDataSettings | None = None) -> Dataset:
    """Read and validate a data file.

    Raises :class:`DataFileError` for a file that is not valid HDF5, lacks a dataset or an
    attribute, has arrays of inconsistent shapes or another dtype than float32, holds NaN or
    inf, has an unknown format version, or (when ``expected`` is given) was made with other
    settings.
    """
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            attrs = {key: _plain(value) for key, value in h5.attrs.items()}
            missing = [name for name in DATASETS if name not in h5]
            if missing:
                raise DataFileError(path, f"missing dataset(s): {', '.join(missing)}")
            settings = _settings_from_attrs(path, attrs)
            shapes = {name: h5[name].shape for name in DATASETS}
            _check_shapes(path, shapes, settings)
            for name in DATASETS:
                if h5[name].dtype != np.float32:
                    raise DataFileError(
                        path,
                        f"dataset {name!r} is {h5[name].dtype}{list(shapes[name])}, "
                        f"expected float32",
                    )
            arrays = {name: h5[name][...] for name in DATASETS}
    except DataFileError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError) as error:
        # h5py reports truncated or garbage files as OSError deep in its internals.
        raise DataFileError(path, f"not a readable HDF5 data file ({error})") from error
    for name, array in arrays.items():
        if not np.isfinite(array).all():
            bad = int(np.size(array) - np.isfinite(array).sum())
            raise DataFileError(path, f"dataset {name!r} holds {bad} NaN or inf value(s)")
    start = attrs["heldout_start"]
    if not isinstance(start, int) or not 0 <= start < shapes["heldout_targets"][1]:
        raise DataFileError(path, f"heldout_start {start!r} is not a step of the held-out part")
    if expected is not None and settings.identity() != expected.identity():
        mine, theirs = settings.identity(), expected.identity()
        differences = [
            f"{key}={mine.get(key)!r} (config: {theirs.get(key)!r})"
            for key in dict.fromkeys([*mine, *theirs])
            if mine.get(key) != theirs.get(key)
        ]
        raise DataFileError(
            path, f"made with other settings than the config: {', '.join(differences)}"
        )
    try:
        description = json.loads(attrs["description"])
    except (TypeError, ValueError) as error:
        raise DataFileError(path, f"malformed attribute 'description' ({error})") from error
    attrs = {**attrs, "settings": settings.as_attrs(), "description": description}
    return Dataset(**arrays, heldout_start=start, description=description, attrs=attrs)


def _check_shapes(path, shapes: dict, settings: AnyDataSettings) -> None:
    """Training and held-out arrays: 3-D, one target per step, the same input features."""
    inputs, targets = shapes["inputs"], shapes["targets"]
    held_inputs, held_targets = shapes["heldout_inputs"], shapes["heldout_targets"]
    problems = []
    for name, shape in shapes.items():
        if len(shape) != 3 or 0 in shape:
            problems.append(f"dataset {name!r} is {list(shape)}, expected 3 non-empty dimensions")
    if not problems:
        if targets != (*inputs[:2], 1):
            problems.append(f"dataset 'targets' is {list(targets)}, expected {[*inputs[:2], 1]}")
        if held_targets != (*held_inputs[:2], 1):
            problems.append(
                f"dataset 'heldout_targets' is {list(held_targets)}, "
                f"expected {[*held_inputs[:2], 1]}"
            )
        if held_inputs[2] != inputs[2]:
            problems.append(
                f"dataset 'heldout_inputs' has {held_inputs[2]} features, 'inputs' {inputs[2]}"
            )
    if not problems and isinstance(settings, DataSettings):
        expected = (settings.n_sequences, settings.n_steps, 1)
        if inputs != expected:
            problems.append(f"dataset 'inputs' is {list(inputs)}, expected {list(expected)}")
        expected = (settings.heldout_sequences, settings.n_steps, 1)
        if held_inputs != expected:
            problems.append(
                f"dataset 'heldout_inputs' is {list(held_inputs)}, expected {list(expected)}"
            )
    if problems:
        raise DataFileError(path, "; ".join(problems))


def _settings_from_attrs(path, attrs: dict) -> AnyDataSettings:
    """The settings a file's attributes record, once they are checked."""
    if "format_version" in attrs and attrs["format_version"] != FORMAT_VERSION:
        raise DataFileError(
            path,
            f"format_version {attrs['format_version']!r} is not known "
            f"(this version reads {FORMAT_VERSION}); regenerate the file",
        )
    missing = [name for name in REQUIRED_ATTRS if name not in attrs]
    if missing:
        raise DataFileError(path, f"missing attribute(s): {', '.join(missing)}")
    try:
        return settings_from_attrs(json.loads(attrs["settings"]))
    except (TypeError, ValueError, KeyError) as error:
        raise DataFileError(path, f"malformed settings attribute ({error})") from error


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
