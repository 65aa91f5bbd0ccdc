"""A cell of the user's is checked before any job: what counts as a Keras RNN cell, what its
constructor gets, and the colours and labels every cell is shown with."""

from __future__ import annotations

import pytest

from rnn_cell_bench.cells import (
    CellError,
    CustomCell,
    cell_colors,
    cell_label,
    cell_names,
    custom_cells,
)

ENTRY = "cells[2] (mine)"


def load(class_path: str):
    return CustomCell("mine", class_path, ENTRY).load()


@pytest.mark.parametrize(
    ("class_path", "message"),
    [
        ("keras.layers:LSTM", f"{ENTRY}: LSTM is a recurrent layer, not a cell: name its cell"),
        ("keras.layers:Dense", f"{ENTRY}: Dense has no state_size"),
        ("keras.layers:Layer", f"{ENTRY}: Layer's constructor takes no units argument"),
        ("collections:OrderedDict", f"{ENTRY}: <class 'collections.OrderedDict'> is not"),
        ("keras.layers:NoSuchCell", f"{ENTRY}: module 'keras.layers'"),
        ("no_such_package.cells:Cell", f"{ENTRY}: no module 'no_such_package.cells'"),
    ],
)
def test_what_is_not_a_keras_rnn_cell_is_named(class_path, message):
    with pytest.raises(CellError) as error:
        load(class_path)
    assert str(error.value).startswith(message)


def test_a_module_that_fails_on_import_is_named_with_its_error(tmp_path):
    (tmp_path / "broken_cells.py").write_text("import no_such_dependency\n")
    with pytest.raises(CellError, match=r"importing 'broken_cells' failed: No module named"):
        CustomCell("mine", "broken_cells:Cell", ENTRY).load(tmp_path)


def test_keras_own_cells_load_and_get_the_initializers_they_name():
    cls = load("keras.layers:GRUCell")
    cell = CustomCell("mine", "keras.layers:GRUCell")
    init = {"kernel_initializer": "he_uniform", "recurrent_initializer": "orthogonal"}
    assert cell.arguments(cls, 8, {**init, "unused": 1}) == {"units": 8, **init}
    plain = load("keras.layers:SimpleRNNCell")
    assert set(cell.arguments(plain, 8, init)) == {"units", *init}


def test_names_labels_and_colours_of_every_cell():
    entries = ["lstm", {"name": "mgu", "class": "m:C"}, "rnn", {"name": "b", "class": "m:D"}]
    assert cell_names(entries) == ["lstm", "mgu", "rnn", "b"]
    assert [cell.entry for cell in custom_cells(entries).values()] == [
        "cells[1] (mgu)",
        "cells[3] (b)",
    ]
    assert [cell_label(name) for name in cell_names(entries)] == ["LSTM", "MGU", "RNN", "B"]
    # Built-in cells keep their colour wherever they are listed; the user's come in order.
    assert cell_colors(cell_names(entries)) == {
        "lstm": "#1f77b4",
        "rnn": "#2ca02c",
        "mgu": "#d62728",
        "b": "#9467bd",
    }
    assert cell_colors(["gru", "mgu"])["gru"] == "#ff7f0e"
