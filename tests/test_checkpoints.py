"""Checkpoints are data only: nothing in one can run code, and anything odd is ignored."""

from __future__ import annotations

import io
import json
import math
import pickle

import numpy as np
import pytest

from rnn_cell_bench.checkpoints import FORMAT, Checkpointer

WEIGHTS = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, dtype=np.float32)]
STATE = [np.array(4, dtype=np.int64), np.float32(0.001), np.zeros((2, 3), np.float32)]


class CreatesAFile:
    """Unpickling this creates ``path``: the harm a planted checkpoint could do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def planted_checkpoint(path, fingerprint: str, marker) -> None:
    """A checkpoint with a valid header whose RNG entry is a malicious pickle (format 1 style)
    and whose weights are an object array."""
    header = {"fingerprint": fingerprint, "epoch": 1, "format": FORMAT, "weights": 1}
    header["optimizer"] = 0
    payload = pickle.dumps(CreatesAFile(marker))
    buffer = io.BytesIO()
    np.savez(
        buffer,
        losses=np.array([1.0]),
        seconds=np.array([0.1]),
        header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
        rng=np.frombuffer(payload, dtype=np.uint8),
        weight_0=np.array([CreatesAFile(marker)], dtype=object),
    )
    path.write_bytes(buffer.getvalue())


def test_save_then_load_round_trips(tmp_path):
    checkpointer = Checkpointer(tmp_path / "c.npz", every=2, fingerprint="f", log=print)
    checkpointer.save(WEIGHTS, STATE, [3.0, 2.0], [0.1, 0.2], [math.nan, 1.5], 0.25)
    loaded = checkpointer.load(expected_shapes=[(2, 3), (3,)])
    assert loaded.epoch == 2 and loaded.losses == [3.0, 2.0] and loaded.seconds == [0.1, 0.2]
    assert math.isnan(loaded.heldout_losses[0]) and loaded.heldout_losses[1] == 1.5
    assert loaded.heldout_seconds == 0.25
    for got, want in zip(loaded.weights + loaded.optimizer_state, WEIGHTS + STATE, strict=True):
        np.testing.assert_array_equal(got, want)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]


def test_a_planted_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    lines = []
    checkpointer = Checkpointer(tmp_path / "c.npz", 2, "f", log=lines.append)
    planted_checkpoint(checkpointer.path, "f", marker)
    assert checkpointer.load() is None
    assert not marker.exists()
    (line,) = lines
    assert line.startswith(f"ignoring unreadable checkpoint {checkpointer.path}: ")
    assert "allow_pickle=False" in line


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: h.update(fingerprint="other"), "it belongs to other settings, data or code"),
        (lambda h: h.update(format=1), "an old or foreign format"),
        (lambda h: h.update(epoch=5), "its history does not have 5 epochs"),
    ],
)
def test_foreign_or_inconsistent_checkpoints_are_ignored(tmp_path, mutate, reason):
    path = tmp_path / "c.npz"
    Checkpointer(path, 2, "f").save(WEIGHTS, STATE, [3.0], [0.1], [math.nan])
    with np.load(path) as archive:
        content = {key: archive[key] for key in archive.files}
    header = json.loads(content["header"].tobytes())
    mutate(header)
    content["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **content)
    lines = []
    assert Checkpointer(path, 2, "f", log=lines.append).load() is None
    assert lines == [f"ignoring checkpoint {path}: {reason}"]


def test_checkpoints_of_other_shapes_are_ignored(tmp_path):
    lines = []
    checkpointer = Checkpointer(tmp_path / "c.npz", 2, "f", log=lines.append)
    checkpointer.save(WEIGHTS, STATE, [3.0], [0.1], [1.0])
    assert checkpointer.load(expected_shapes=[(3, 2), (3,)]) is None
    assert "its weights have shapes [(2, 3), (3,)]" in lines[0]


def test_temporaries_of_a_killed_write_are_removed(tmp_path):
    lines = []
    checkpointer = Checkpointer(tmp_path / "seed_0.npz", 2, "f", log=lines.append)
    stale = tmp_path / ".seed_0.npz.12345.tmp"
    stale.write_bytes(b"half a checkpoint")
    other_run = tmp_path / ".seed_1.npz.12345.tmp"
    other_run.write_bytes(b"")
    assert checkpointer.remove_stale_temporaries() == [stale]
    assert not stale.exists() and other_run.exists()
    assert lines == [f"removed {stale}, left by an interrupted checkpoint write"]
