"""The recurrent cells: one description each, read by every module that needs to know a cell.

Built-in cells (:data:`CELLS`) run on both engines. A cell of the user's
(:class:`CustomCell`, ``{name, class: "module:Class"}`` in the config's ``cells``) is a Keras
RNN cell class: it trains on the Keras engine only, and its module's source file is part of
its runs' code.

A built-in cell's tensors are those of its Keras 3 layer, in Keras order: ``kernel`` (input_dim, G),
``recurrent_kernel`` (H, G), ``bias`` ((G,) or (2, G): an input and a recurrent bias), then the
read-out's ``kernel`` (H, 1) and ``bias`` (1,), with G = gates x H. Adding a cell means adding
its :class:`Cell` here (and, for the fused engine, its kernels in :mod:`rnn_cell_bench.fused`).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cell:
    name: str  # as in the config and in paths
    label: str  # as in tables and figures
    keras_class: str  # the layer's class in keras.layers
    keras_path: str  # the layer's name in a .keras file's weights (snake_case class name)
    gates: tuple[str, ...]  # the gates in Keras' column order; G = len(gates) x units
    bias_rows: int  # 1: one bias vector; 2: an input and a recurrent bias (GRU reset_after)
    forget_bias: bool  # has an LSTM forget gate (model.unit_forget_bias applies)
    recurrent_activation: bool  # the layer has a recurrent (gate) activation, sigmoid
    layer_options: tuple[tuple[str, object], ...]  # further layer settings (GRU reset_after)
    color: str  # its colour in every figure

    @property
    def width(self) -> int:
        """G / units: the columns of the kernels per unit."""
        return len(self.gates)

    def params(self, units: int, input_dim: int = 1) -> dict[str, int]:
        """Trainable parameter counts: the recurrent layer, the read-out, both."""
        columns = self.width * units
        recurrent = columns * (input_dim + units + self.bias_rows)
        return {"recurrent": recurrent, "dense": units + 1, "total": recurrent + units + 1}

    def bias_shape(self, units: int) -> tuple[int, ...]:
        columns = self.width * units
        return (columns,) if self.bias_rows == 1 else (self.bias_rows, columns)


# Colours: LSTM blue and GRU orange as in the original figure, then matplotlib's next ones.
CELLS: dict[str, Cell] = {
    cell.name: cell
    for cell in (
        Cell(
            "lstm",
            "LSTM",
            "LSTM",
            "lstm",
            ("i", "f", "c", "o"),
            bias_rows=1,
            forget_bias=True,
            recurrent_activation=True,
            layer_options=(),
            color="#1f77b4",
        ),
        Cell(
            "gru",
            "GRU",
            "GRU",
            "gru",
            ("z", "r", "h"),
            bias_rows=2,
            forget_bias=False,
            recurrent_activation=True,
            layer_options=(("reset_after", True),),
            color="#ff7f0e",
        ),
        Cell(
            "rnn",
            "RNN",
            "SimpleRNN",
            "simple_rnn",
            ("h",),
            bias_rows=1,
            forget_bias=False,
            recurrent_activation=False,
            layer_options=(),
            color="#2ca02c",
        ),
    )
}
NAMES = tuple(CELLS)


def cell_spec(name: str) -> Cell:
    """The description of ``name``, or a ValueError naming the known cells."""
    try:
        return CELLS[name]
    except KeyError:
        raise ValueError(f"unknown cell {name!r}; known cells: {', '.join(NAMES)}") from None


def cell_label(name: str) -> str:
    """How tables and figures name a cell: a built-in cell's label, else its name in capitals
    (a cell of the user's, named in the config)."""
    return CELLS[name].label if name in CELLS else name.upper()


# Colours of the user's cells, in the order the config lists them: matplotlib's next ones.
CUSTOM_COLORS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
# The settings a user's cell's constructor gets when it names them, besides units.
CUSTOM_ARGUMENTS = ("kernel_initializer", "recurrent_initializer")


class CellError(ValueError):
    """A user's cell cannot be used: the message names its config entry and what is wrong."""


@dataclass(frozen=True)
class CustomCell:
    """A Keras RNN cell class of the user's, named in the config as ``{name, class}``."""

    name: str
    class_path: str  # "module:Class", the module a dotted import path
    entry: str = ""  # the config entry, for messages: e.g. "cells[2] (mgu)"

    @property
    def label(self) -> str:
        return cell_label(self.name)

    @property
    def module_name(self) -> str:
        return self.class_path.partition(":")[0]

    def load(self, project_dir: str | Path | None = None):
        """The class; :class:`CellError` naming the entry when its module or class does not
        exist or it is not a Keras RNN cell. The module is looked up in ``project_dir``
        (default: the working directory, Snakemake's project folder) first, then on the
        Python path."""
        folder = str(Path(project_dir or Path.cwd()).resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)
        module_name, _, qualname = self.class_path.partition(":")
        where = f"in the project folder ({folder}) or on the Python path"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                raise CellError(f"{self._entry}: no module {module_name!r} {where}") from None
            raise CellError(f"{self._entry}: importing {module_name!r} failed: {error}") from None
        except Exception as error:  # the user's module raised while it was imported
            raise CellError(
                f"{self._entry}: importing {module_name!r} failed: {type(error).__name__}: {error}"
            ) from None
        found = module
        for part in qualname.split("."):
            if not hasattr(found, part):
                raise CellError(
                    f"{self._entry}: module {module_name!r} ({module.__file__}) has no {qualname!r}"
                )
            found = getattr(found, part)
        check_keras_cell(found, self._entry)
        return found

    def source_file(self, project_dir: str | Path | None = None) -> Path:
        """The file of the class's module (imports it)."""
        self.load(project_dir)
        return Path(sys.modules[self.module_name].__file__).resolve()

    def arguments(self, cls, units: int, settings: dict) -> dict:
        """The constructor's keyword arguments: ``units`` and those of ``settings``
        (``CUSTOM_ARGUMENTS``) that its signature names."""
        accepted = inspect.signature(cls).parameters
        return {"units": units} | {
            key: settings[key] for key in CUSTOM_ARGUMENTS if key in accepted and key in settings
        }

    @property
    def _entry(self) -> str:
        return self.entry or f"cell {self.name!r} ({self.class_path})"


def check_keras_cell(cls, entry: str) -> None:
    """:class:`CellError` unless ``cls`` is a Keras RNN cell class: a ``keras.layers.Layer``
    whose instances have ``state_size`` (what ``keras.layers.RNN`` needs), not a whole
    recurrent layer, and constructible with ``units``."""
    from rnn_cell_bench.runtime import import_keras

    keras = import_keras()
    what = "a Keras RNN cell class (a keras.layers.Layer with state_size and call(inputs, states))"
    if not inspect.isclass(cls) or not issubclass(cls, keras.layers.Layer):
        raise CellError(f"{entry}: {cls!r} is not {what}")
    if issubclass(cls, keras.layers.RNN):
        raise CellError(f"{entry}: {cls.__name__} is a recurrent layer, not a cell: name its cell")
    if "units" not in inspect.signature(cls).parameters:
        raise CellError(f"{entry}: {cls.__name__}'s constructor takes no units argument")
    try:
        cell = cls(units=2)
    except Exception as error:
        raise CellError(f"{entry}: {cls.__name__}(units=2) failed: {error}") from None
    if not hasattr(cell, "state_size"):
        raise CellError(f"{entry}: {cls.__name__} has no state_size, so it is not {what}")


def custom_cells(entries: Iterable) -> dict[str, CustomCell]:
    """The user's cells among the config's ``cells`` entries, by name."""
    return {
        entry["name"]: CustomCell(entry["name"], entry["class"], f"cells[{i}] ({entry['name']})")
        for i, entry in enumerate(entries)
        if isinstance(entry, dict)
        and isinstance(entry.get("name"), str)
        and isinstance(entry.get("class"), str)
    }


def cell_names(entries: Iterable) -> list[str]:
    """Every cell's name, in the config's order."""
    return [entry["name"] if isinstance(entry, dict) else entry for entry in entries]


def cell_colors(names: Iterable[str]) -> dict[str, str]:
    """Each cell's colour: a built-in cell's own, the user's cells the next fixed ones in the
    order given."""
    names = list(names)
    custom = [name for name in names if name not in CELLS]
    colors = {name: CELLS[name].color for name in names if name in CELLS}
    for i, name in enumerate(custom):
        colors[name] = CUSTOM_COLORS[i % len(CUSTOM_COLORS)]
    return colors


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (a user's cell's source)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
