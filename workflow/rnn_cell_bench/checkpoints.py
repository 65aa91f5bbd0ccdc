"""Checkpoints of a training run: data only, written atomically, resumed only by their run.

A checkpoint is an ``.npz`` archive of plain numeric arrays (weights, optimizer state, the loss
and time history) and a JSON header stored as bytes. It is read with ``allow_pickle=False``, so a
file planted in the results tree can at worst be ignored, never run code. Training consumes no
randomness after the initial weights (full batch, no shuffling, no dropout), so no RNG state is
stored; a test checks that the global RNG state does not change a resumed run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Format 1 pickled the RNG state, format 2 had no held-out losses; such checkpoints are ignored.
FORMAT = 3


class CheckpointRejected(ValueError):
    """A checkpoint that cannot be resumed; the message says why."""


@dataclass
class Checkpoint:
    epoch: int
    weights: list[np.ndarray]
    optimizer_state: list[np.ndarray]
    losses: list[float]
    seconds: list[float]
    heldout_losses: list[float]  # NaN at the epochs the held-out loss was not measured
    heldout_seconds: float = 0.0  # time spent on held-out evaluation up to this epoch


class Checkpointer:
    """Saves and loads one run's checkpoint at ``path``.

    ``fingerprint`` identifies what the run depends on (cell, seed, data, code, every setting but
    the epoch count); a checkpoint with another fingerprint is never resumed. ``every`` is the
    period in epochs (a period at or beyond the run's length means no periodic checkpoint).
    """

    def __init__(self, path, every: int, fingerprint: str, log: Callable[[str], None] = print):
        self.path = Path(path)
        self.every = every
        self.fingerprint = fingerprint
        self.log = log

    def _temporary(self) -> Path:
        return self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete temporary files left by a process killed while writing this checkpoint."""
        stale = sorted(self.path.parent.glob(f".{self.path.name}.*.tmp"))
        for path in stale:
            path.unlink(missing_ok=True)
            self.log(f"removed {path}, left by an interrupted checkpoint write")
        return stale

    def save(
        self,
        weights: list[np.ndarray],
        optimizer_state: list[np.ndarray],
        losses: list[float],
        seconds: list[float],
        heldout_losses: list[float],
        heldout_seconds: float = 0.0,
    ) -> None:
        arrays = {f"weight_{i}": np.asarray(w) for i, w in enumerate(weights)}
        for i, variable in enumerate(optimizer_state):
            arrays[f"optimizer_{i}"] = np.asarray(variable)
        header = {
            "fingerprint": self.fingerprint,
            "epoch": len(losses),
            "format": FORMAT,
            "weights": len(weights),
            "optimizer": len(optimizer_state),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temporary()
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                losses=np.asarray(losses, dtype=np.float64),
                seconds=np.asarray(seconds, dtype=np.float64),
                heldout_losses=np.asarray(heldout_losses, dtype=np.float64),
                heldout_seconds=np.float64(heldout_seconds),
                header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
                **arrays,
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)  # readers see the old checkpoint or the new, never half

    def load(self, expected_shapes: list[tuple[int, ...]] | None = None) -> Checkpoint | None:
        """This run's checkpoint, or None (with a log line naming the file) when there is none
        usable: unreadable, not plain data, another run's, or of the wrong shapes."""
        if not self.path.exists():
            return None
        try:
            return self._read(expected_shapes)
        except CheckpointRejected as reason:
            self.log(f"ignoring checkpoint {self.path}: {reason}")
        except Exception as error:  # a damaged checkpoint only costs the epochs since the last
            self.log(f"ignoring unreadable checkpoint {self.path}: {error}")
        return None

    def _read(self, expected_shapes) -> Checkpoint:
        with np.load(self.path, allow_pickle=False) as archive:
            content = {key: archive[key] for key in archive.files}
        if "header" not in content:
            raise CheckpointRejected("an old or foreign format (no header)")
        for key, array in content.items():
            if array.dtype.kind not in "biuf":
                raise CheckpointRejected(f"{key} is not a numeric array ({array.dtype})")
        header = json.loads(content["header"].tobytes())
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CheckpointRejected("an old or foreign format")
        if header.get("fingerprint") != self.fingerprint:
            raise CheckpointRejected("it belongs to other settings, data or code")
        weights = [content[f"weight_{i}"] for i in range(int(header["weights"]))]
        optimizer_state = [content[f"optimizer_{i}"] for i in range(int(header["optimizer"]))]
        losses, seconds = content["losses"].tolist(), content["seconds"].tolist()
        heldout_losses = content["heldout_losses"].tolist() if "heldout_losses" in content else []
        epoch = int(header["epoch"])
        if not len(losses) == len(seconds) == len(heldout_losses) == epoch:
            raise CheckpointRejected(f"its history does not have {epoch} epochs")
        if expected_shapes is not None:
            shapes = [w.shape for w in weights]
            if shapes != [tuple(s) for s in expected_shapes]:
                raise CheckpointRejected(f"its weights have shapes {shapes}")
        heldout_seconds = float(content["heldout_seconds"]) if "heldout_seconds" in content else 0.0
        return Checkpoint(
            epoch, weights, optimizer_state, losses, seconds, heldout_losses, heldout_seconds
        )

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
