"""What a training run is: its settings, its outcome, and the ways it can end early."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnn_cell_bench.cells import cell_spec, custom_cells

CLIP_MODES = ("global", "per_variable")
ENGINES = ("keras", "fused", "auto")
ON_NAN = ("stop_run", "fail")
STATUS_COMPLETED = "completed"
STATUS_DIVERGED = "diverged"


@dataclass(frozen=True)
class TrainSettings:
    """The settings that determine a run's result (besides cell, seed and data)."""

    units: int = 16
    epochs: int = 1000
    learning_rate: float = 0.001
    clipnorm: float = 1.0
    clip: str = "global"
    engine: str = "auto"
    kernel_initializer: str = "glorot_uniform"
    recurrent_initializer: str = "orthogonal"
    unit_forget_bias: bool | None = True  # None for the GRU, which has no forget gate
    eval_every: int = 10  # held-out loss every N epochs: a column of the history
    cell_class: str | None = None  # a user's cell: its Keras class, "module:Class"

    @classmethod
    def from_config(cls, config: dict, cell: str) -> TrainSettings:
        """The settings of ``cell``'s runs: ``model.units`` may be one number or one per cell."""
        train, model = config["train"], config["model"]
        units = model["units"]
        custom = custom_cells(config.get("cells", ())).get(cell)
        forget_gate = custom is None and cell_spec(cell).forget_bias
        return cls(
            units=int(units[cell] if isinstance(units, dict) else units),
            kernel_initializer=str(model.get("kernel_initializer", "glorot_uniform")),
            recurrent_initializer=str(model.get("recurrent_initializer", "orthogonal")),
            # only a cell with a forget gate has the setting (None: the run's record says so)
            unit_forget_bias=bool(model.get("unit_forget_bias", True)) if forget_gate else None,
            cell_class=custom.class_path if custom else None,
            epochs=int(train["epochs"]),
            learning_rate=float(train["learning_rate"]),
            clipnorm=float(train["clipnorm"]),
            clip=str(train["clip"]),
            engine=str(train["engine"]),
            eval_every=int(train.get("eval_every", 10)),
        )


class TrainingInterrupted(RuntimeError):
    """SIGTERM arrived: a checkpoint was saved and the run should be retried."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf and ``on_nan`` is ``fail``."""


@dataclass
class RunResult:
    """A finished (or diverged) run: the trained weights, the history and how it went."""

    weights: list[np.ndarray]
    losses: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    status: str = STATUS_COMPLETED
    resumed_from: int = 0  # epochs taken from a checkpoint
    engine: str = "keras"
    optimizer_state: list[np.ndarray] = field(default_factory=list)  # Keras' Adam variables
    # The held-out loss after each epoch's update, NaN at the epochs it was not measured.
    heldout_losses: list[float] = field(default_factory=list)
    heldout_seconds: float = 0.0  # time spent on held-out evaluation, resumed epochs included

    @property
    def heldout_measured(self) -> list[tuple[int, float]]:
        """(epoch, held-out loss) at the epochs it was measured."""
        return [(i + 1, v) for i, v in enumerate(self.heldout_losses) if not np.isnan(v)]

    @property
    def sec_per_epoch(self) -> float:
        """Median epoch time, leaving out the first epoch of a process (graph tracing)."""
        timed = self.seconds[self.resumed_from :]
        timed = timed[1:] if len(timed) > 1 else (timed or self.seconds)
        return float(np.median(timed))
