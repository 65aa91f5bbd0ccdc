"""What an epoch of the fused engine costs in arithmetic: its float32 operations per sequence
and step, read off the kernels of :mod:`rnn_cell_bench.fused` line by line, and the floor they
set on an epoch's time. Kept apart from the kernels so that the count can be refined without
touching the training code (which would rerun every training job).

Each multiply, add, subtract, divide, min and max counts one operation; the rational tanh
counts ``TANH_OPERATIONS`` (the clamp 2, ``v^2`` 1, the 13/6 polynomials 18, ``v p / q`` 2)
and the sigmoid built on it ``SIGMOID_OPERATIONS`` (2 more). Adam, the chunk sums and the
held-out loss are per epoch, not per step, and left out.
"""

from __future__ import annotations

from rnn_cell_bench.cells import cell_spec

TANH_OPERATIONS, SIGMOID_OPERATIONS = 23, 26


def float_operations(cell: str, units: int, input_dim: int = 1) -> dict[str, int]:
    """Float32 operations per sequence and step: ``forward``, ``backward`` and ``total``."""
    h, d, t, s = units, input_dim, TANH_OPERATIONS, SIGMOID_OPERATIONS
    g = cell_spec(cell).width * h
    product = 2 * h * g  # one (h, g) product: a multiply and an add per weight
    read_out, error, error_grad = 2 * h, 3, 2  # prediction += h w; err, loss; dy, dense bias
    if cell == "lstm":
        # 3 sigmoids and a tanh per unit; c = f c + i g (3), h = o tanh(c) (1 + tanh)
        forward = 2 * d * g + product + (3 * s + t + 3 + 1 + t) * h + read_out + error
        # part_dense, dh, tanh(c), dc, the four dz, dc_next
        per_unit = 2 + 2 + t + 5 + 4 * 4 + 1
        weights = 2 * d * g + g + product  # kernel, bias, recurrent kernel
    elif cell == "gru":
        # x W (a multiply for the first feature), z and r (2 adds and a sigmoid each), the
        # candidate (2 adds, a multiply, a tanh), h = z h + (1 - z) h~ (4)
        forward = (2 * d - 1) * g + product + (2 * (2 + s) + 3 + t + 4) * h + read_out + error
        # part_dense, dh, da_h, da_z, da_r, da_h r, dh z, dh += (R da) after the product
        per_unit = 2 + 2 + 5 + 5 + 4 + 1 + 1 + 1
        weights = 2 * d * g + 2 * g + product  # kernel, both bias rows, recurrent kernel
    elif cell == "rnn":
        forward = 2 * d * g + product + t * h + read_out + error
        per_unit = 2 + 2 + 3  # part_dense, dh, dz = dh (1 - h^2)
        weights = 2 * d * g + g + product
    else:
        raise ValueError(f"the fused engine has no kernels for {cell!r}")
    backward = error_grad + per_unit * h + product + weights
    return {"forward": forward, "backward": backward, "total": forward + backward}


def floor_seconds(
    cell: str,
    sequences: int,
    steps: int,
    hz: float,
    operations_per_cycle: float,
    units: int = 16,
    input_dim: int = 1,
) -> float:
    """The least time an epoch's arithmetic can take on one core that retires
    ``operations_per_cycle`` float32 operations per cycle at ``hz``."""
    total = float_operations(cell, units, input_dim)["total"] * sequences * steps
    return total / (operations_per_cycle * hz)
