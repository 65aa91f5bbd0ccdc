"""The arithmetic floor's operation count, against counts done by hand."""

from __future__ import annotations

import pytest

from rnn_cell_bench.costs import float_operations, floor_seconds


def test_a_one_unit_rnn_counted_by_hand():
    # forward: b + x w (2), h R (2), tanh (23), prediction += h w (2), err and loss (3) = 32;
    # backward: dy and dense bias (2), part_dense, dh, dz (7), R dz (2), kernel (2), bias (1)
    # and recurrent kernel (2) gradients = 16
    assert float_operations("rnn", 1) == {"forward": 32, "backward": 16, "total": 48}


def test_the_default_cells_and_their_floor():
    counts = {cell: float_operations(cell, 16)["total"] for cell in ("lstm", "gru", "rnn")}
    assert counts == {"lstm": 9333, "gru": 6597, "rnn": 2133}
    # 9,333 operations x 40 x 20,000 at 32 per cycle and 3.0 GHz: the 0.078 s of the README
    assert floor_seconds("lstm", 40, 20000, 3.0e9, 32) == pytest.approx(0.0778, abs=5e-5)


def test_the_products_grow_with_the_square_of_the_units_and_features_add_columns():
    small, large = float_operations("gru", 16)["total"], float_operations("gru", 32)["total"]
    assert 3.3 < large / small < 4  # the three (H, 3H) products dominate, the rest is linear
    one, three = float_operations("lstm", 16, 1), float_operations("lstm", 16, 3)
    # each further feature: a multiply and an add per gate forward, and per kernel gradient
    assert three["total"] - one["total"] == 2 * (2 * 2 * 64)
    with pytest.raises(ValueError, match="unknown cell 'mgu'"):
        float_operations("mgu", 16)
