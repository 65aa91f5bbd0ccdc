"""A live view of training: each epoch's loss, and the held-out loss where it was measured, as
TensorBoard scalars.

``train.tensorboard: true`` hands :func:`tensorboard_scalars`'s hook to
:func:`rnn_cell_bench.training.train` as ``on_epoch``. It changes no result, so it is neither a
rule parameter nor among the training modules whose code reruns training.

TensorFlow is imported only when the view is on (the fused engine otherwise runs without it).
The scalars are written with ``tf.summary.write`` and the scalars plugin's metadata: what
``tf.summary.scalar`` writes, without needing the ``tensorboard`` package, which TensorFlow no
longer installs (it is needed only to look at the files: ``tensorboard --logdir ...``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from pathlib import Path

from rnn_cell_bench.runtime import import_tensorflow

TAG = "loss"
HELDOUT_TAG = "heldout_loss"
FLUSH_MILLIS = 5_000  # how stale the live view may get


@contextlib.contextmanager
def tensorboard_scalars(
    directory: str | Path | None,
) -> Iterator[Callable[[int, float, float], None] | None]:
    """Yield ``on_epoch(epoch, loss, heldout_loss)`` writing scalar ``loss`` (and
    ``heldout_loss`` where it is a number) at step ``epoch`` to an event file in
    ``directory``, closed on exit; yield None when ``directory`` is None.

    A resumed run appends a new event file to the same directory, its steps continuing
    after the checkpoint's epoch."""
    if directory is None:
        yield None
        return
    tf = import_tensorflow()
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    Path(directory).mkdir(parents=True, exist_ok=True)
    writer = tf.summary.create_file_writer(str(directory), flush_millis=FLUSH_MILLIS)

    def on_epoch(epoch: int, loss: float, heldout_loss: float = math.nan) -> None:
        with writer.as_default():
            tf.summary.write(TAG, tf.constant(loss, tf.float32), step=epoch, metadata=metadata)
            if not math.isnan(heldout_loss):
                value = tf.constant(heldout_loss, tf.float32)
                tf.summary.write(HELDOUT_TAG, value, step=epoch, metadata=metadata)

    try:
        yield on_epoch
    finally:
        writer.close()


def read_scalars(directory: str | Path, tag: str = TAG) -> list[tuple[int, float]]:
    """Every (step, value) of scalar ``tag`` in the event files under ``directory``, in file
    and write order."""
    tf = import_tensorflow()
    from tensorflow.core.util import event_pb2

    found = []
    for path in sorted(Path(directory).rglob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag == tag:
                    found.append((int(event.step), float(tf.make_ndarray(value.tensor))))
    return found
