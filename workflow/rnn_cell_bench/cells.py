"""The recurrent cells: one description each, read by every module that needs to know a cell.

A cell's tensors are those of its Keras 3 layer, in Keras order: ``kernel`` (input_dim, G),
``recurrent_kernel`` (H, G), ``bias`` ((G,) or (2, G): an input and a recurrent bias), then the
read-out's ``kernel`` (H, 1) and ``bias`` (1,), with G = gates x H. Adding a cell means adding
its :class:`Cell` here (and, for the fused engine, its kernels in :mod:`rnn_cell_bench.fused`).
"""

from __future__ import annotations

from dataclasses import dataclass


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
