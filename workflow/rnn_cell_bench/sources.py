"""A user's own series: read, check, split into training and held-out parts, standardize.

The data rule runs this once per distinct file content and settings and writes the result in
the project's own format (:mod:`rnn_cell_bench.data`); training never reads the user's file.

Formats (``data.file``): a CSV file (a header row, then one row per time step and one column
per feature; with ``data.sequence_column``, that column names each row's sequence, so several
sequences sit in one file, their rows in time order), a ``.npy`` array or an HDF5 dataset
(``data.dataset``) of shape sequences x steps x features. CSV features are named by their
column, array features by their index.

The split (``data.split``), with ``f = data.heldout_fraction`` and horizon ``h``:

- ``time``: the last ``round(f * steps)`` steps of every sequence are held out, from step
  ``T0`` on. Training reads inputs ``x[0 : T0 - h]`` against targets ``y[h : T0]``: no target
  past the split, so the last ``h`` steps before it are inputs of no training target. The
  held-out loss reads each sequence from its start (inputs ``x[0 : steps - h]``) and counts
  only the targets at ``T0`` and after.
- ``sequence``: the last ``round(f * sequences)`` sequences (in file order) are held out whole.

Every feature is standardized with the mean and standard deviation of its training part only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnn_cell_bench.data import Dataset, FileDataSettings

SUFFIXES = {".csv": "csv", ".npy": "npy", ".h5": "hdf5", ".hdf5": "hdf5"}
NAN_WORDS = {"nan", "+nan", "-nan"}


class SourceError(ValueError):
    """The user's data file cannot be used; the message names the file and the place."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"data.file {path}: {problem}")


@dataclass
class RawSeries:
    """A file's values before the split: (sequences, steps, features), float64."""

    values: np.ndarray
    features: list[str]  # column names (CSV) or indices as text (arrays)
    sequences: list[str]  # sequence names (CSV) or indices as text
    locate: object = None  # locate(sequence, step, feature) -> where, for messages
    named: bool = True  # features have names (CSV columns), else indices (arrays)


def read_source(path: str | Path, settings: FileDataSettings) -> RawSeries:
    """Read ``path`` as ``settings`` say, checking that every value is a finite number and
    that every sequence has the same length."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(path, "no such file")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise SourceError(
            path, f"unknown file type {path.suffix!r}: expected {', '.join(SUFFIXES)}"
        )
    if kind != "csv" and settings.sequence_column is not None:
        raise SourceError(path, "data.sequence_column is for CSV files only")
    if kind != "hdf5" and settings.dataset is not None:
        raise SourceError(path, "data.dataset is for HDF5 files only")
    raw = {"csv": _read_csv, "npy": _read_npy, "hdf5": _read_hdf5}[kind](path, settings)
    bad = ~np.isfinite(raw.values)
    if bad.any():
        sequence, step, feature = (int(i) for i in np.argwhere(bad)[0])
        value = raw.values[sequence, step, feature]
        raise SourceError(
            path,
            f"{raw.locate(sequence, step, feature)}: {value} (NaN or inf; "
            f"{int(bad.sum())} such value(s) in the file)",
        )
    return raw


def _read_csv(path: Path, settings: FileDataSettings) -> RawSeries:
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise SourceError(path, f"not a readable CSV file ({error})") from error
    columns = [str(c) for c in table.columns]
    if table.empty:
        raise SourceError(path, "no data rows below the header")
    sequence_column = settings.sequence_column
    if sequence_column is not None and sequence_column not in columns:
        raise SourceError(
            path,
            f"data.sequence_column {sequence_column!r} is not a column "
            f"(columns: {', '.join(columns)})",
        )
    features = [c for c in columns if c != sequence_column]
    if not features:
        raise SourceError(path, "no feature columns")
    values = np.empty((len(table), len(features)))
    for j, name in enumerate(features):
        text = table[name].str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        failed = numbers.isna() & ~text.str.lower().isin(NAN_WORDS)
        if failed.any():
            row = int(np.flatnonzero(failed.to_numpy())[0])
            cell = text.iloc[row]
            what = "an empty cell" if cell == "" else f"{cell!r} is not a number"
            raise SourceError(
                path,
                f"line {row + 2}, column {name!r}: {what} "
                f"({int(failed.sum())} non-numeric cell(s) in this column)",
            )
        values[:, j] = numbers.to_numpy(dtype=float)
    # rows of each sequence in file order; sequences in order of first appearance
    if sequence_column is None:
        names, rows = ["all rows"], [np.arange(len(table))]
    else:
        labels = table[sequence_column].to_numpy()
        names = list(dict.fromkeys(labels))
        rows = [np.flatnonzero(labels == name) for name in names]
    lengths = {name: len(r) for name, r in zip(names, rows, strict=True)}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name!r}: {n}" for name, n in lengths.items())
        raise SourceError(
            path,
            f"sequences of different lengths (rows per {sequence_column!r} value: {listed}); "
            f"every sequence needs the same number of steps",
        )

    def locate(sequence: int, step: int, feature: int) -> str:
        line = int(rows[sequence][step]) + 2  # the header is line 1
        return f"line {line}, column {features[feature]!r}"

    return RawSeries(np.stack([values[r] for r in rows]), features, [str(n) for n in names], locate)


def _array_series(path: Path, array: np.ndarray, what: str) -> RawSeries:
    if array.ndim != 3 or 0 in array.shape:
        raise SourceError(
            path,
            f"{what} has shape {list(array.shape)}: expected sequences x steps x features "
            f"(one feature of a 2-D array a is a[..., None])",
        )
    if array.dtype.kind not in "biuf":
        raise SourceError(path, f"{what} holds {array.dtype} values, not numbers")

    def locate(sequence: int, step: int, feature: int) -> str:
        return f"{what}[{sequence}, {step}, {feature}] (sequence, step, feature)"

    features = [str(i) for i in range(array.shape[2])]
    sequences = [str(i) for i in range(array.shape[0])]
    return RawSeries(np.asarray(array, dtype=float), features, sequences, locate, named=False)


def _read_npy(path: Path, settings: FileDataSettings) -> RawSeries:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise SourceError(path, f"not a readable .npy array ({error})") from error
    if not isinstance(array, np.ndarray):
        raise SourceError(path, "not a single .npy array")
    return _array_series(path, array, "the array")


def _read_hdf5(path: Path, settings: FileDataSettings) -> RawSeries:
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            names = []
            h5.visititems(lambda name, item: names.append(name) if hasattr(item, "shape") else None)
            if settings.dataset is None:
                raise SourceError(
                    path,
                    f"data.dataset is needed for an HDF5 file (datasets in it: "
                    f"{', '.join(names) or 'none'})",
                )
            if settings.dataset not in names:
                raise SourceError(
                    path,
                    f"data.dataset {settings.dataset!r} is not in the file (datasets in it: "
                    f"{', '.join(names) or 'none'})",
                )
            array = h5[settings.dataset][...]
    except SourceError:
        raise
    except (OSError, KeyError, RuntimeError, TypeError) as error:
        raise SourceError(path, f"not a readable HDF5 file ({error})") from error
    return _array_series(path, array, f"dataset {settings.dataset!r}")


def _feature_index(path, raw: RawSeries, key: str, feature) -> int:
    """The position of ``feature`` (a column name, or an index of an array's features)."""
    names = raw.features
    if not raw.named:
        if not isinstance(feature, int) or isinstance(feature, bool):
            raise SourceError(path, f"{key} {feature!r}: name an array's feature by its index")
        if not 0 <= feature < len(names):
            raise SourceError(
                path, f"{key} {feature!r} is not a feature index (the file has {len(names)})"
            )
        return feature
    if str(feature) not in names:
        raise SourceError(
            path, f"{key} {feature!r} is not a column (feature columns: {', '.join(names)})"
        )
    return names.index(str(feature))


def select_features(path, raw: RawSeries, settings: FileDataSettings) -> tuple[list[int], int]:
    """Positions of the input features and of the target feature."""
    if settings.target is None:
        if len(raw.features) != 1:
            raise SourceError(
                path,
                f"data.target is needed: the file has {len(raw.features)} features "
                f"({', '.join(raw.features)})",
            )
        target = 0
    else:
        target = _feature_index(path, raw, "data.target", settings.target)
    if settings.inputs is None:
        inputs = list(range(len(raw.features)))
    else:
        inputs = [_feature_index(path, raw, "data.inputs", f) for f in settings.inputs]
    return inputs, target


def split_bounds(path, steps: int, sequences: int, settings: FileDataSettings):
    """(training steps T0, held-out sequences): T0 = steps for a sequence split, 0 held-out
    sequences for a time split. Checks that both parts have at least one target."""
    h, f = settings.horizon, settings.heldout_fraction
    if settings.split == "time":
        heldout_steps = round(f * steps)
        train_steps = steps - heldout_steps
        if heldout_steps < 1 or train_steps - h < 1:
            raise SourceError(
                path,
                f"sequences of {steps} steps are too short for task.horizon {h} and "
                f"data.heldout_fraction {f} (time split): the last {heldout_steps} steps are "
                f"held out, which leaves {max(train_steps - h, 0)} training target(s); both "
                f"parts need at least one (more steps, a smaller horizon or another fraction)",
            )
        return train_steps, 0
    if settings.split != "sequence":
        raise SourceError(path, f"data.split {settings.split!r} is not time or sequence")
    held = round(f * sequences)
    if sequences < 2 or not 1 <= held <= sequences - 1:
        raise SourceError(
            path,
            f"a sequence split of {sequences} sequence(s) with data.heldout_fraction {f} "
            f"holds out {held}: each part needs at least one sequence (data.split: time "
            f"splits every sequence instead)",
        )
    if steps - h < 1:
        raise SourceError(path, f"sequences of {steps} steps are too short for task.horizon {h}")
    return steps, held


def _standardize(path, values: np.ndarray, feature: str, kind: str):
    mean, std = float(values.mean()), float(values.std())
    if not std > 0 or not math.isfinite(std):
        raise SourceError(
            path,
            f"{kind} {feature!r} is constant in the training part ({mean:g}): standardization "
            f"would divide by zero",
        )
    return mean, std


def make_file_dataset(path: str | Path, settings: FileDataSettings) -> Dataset:
    """The :class:`~rnn_cell_bench.data.Dataset` of the user's file at ``path``."""
    raw = read_source(path, settings)
    input_features, target_feature = select_features(path, raw, settings)
    n, steps, _ = raw.values.shape
    h = settings.horizon
    train_steps, held = split_bounds(path, steps, n, settings)
    train_values = raw.values[: n - held, :train_steps]  # nothing held out is in here
    stats = {}
    for index in dict.fromkeys([*input_features, target_feature]):
        kind = "the target" if index == target_feature else "the input"
        stats[index] = _standardize(path, train_values[..., index], raw.features[index], kind)

    def scaled(values: np.ndarray, index: int) -> np.ndarray:
        mean, std = stats[index]
        return ((values[..., index] - mean) / std).astype(np.float32)

    def pairs(values: np.ndarray, length: int):
        inputs = np.stack([scaled(values[:, : length - h], i) for i in input_features], axis=-1)
        targets = scaled(values[:, h:length], target_feature)[..., None]
        return np.ascontiguousarray(inputs), np.ascontiguousarray(targets)

    inputs, targets = pairs(train_values, train_steps)
    if settings.split == "time":
        heldout_inputs, heldout_targets = pairs(raw.values, steps)
        start = train_steps - h  # the first input whose target lies in the held-out part
        split = (
            f"time: the last {steps - train_steps} of {steps} steps of each of the {n} "
            f"sequence(s) held out"
        )
    else:
        heldout_inputs, heldout_targets = pairs(raw.values[n - held :], steps)
        start = 0
        names = ", ".join(raw.sequences[n - held :])
        split = f"sequence: the last {held} of {n} sequences held out ({names})"
    description = {
        "inputs": [
            {"name": raw.features[i], "mean": stats[i][0], "std": stats[i][1]}
            for i in input_features
        ],
        "target": {
            "name": raw.features[target_feature],
            "mean": stats[target_feature][0],
            "std": stats[target_feature][1],
        },
        "split": split,
        "sequences": raw.sequences,
    }
    return Dataset(inputs, targets, heldout_inputs, heldout_targets, start, description)
