"""How the fused engine spreads its blocks over threads and reuses its workspaces: neither may
change a bit of the result."""

from __future__ import annotations

import threading
import time

import numba
import numpy as np
import pytest

from rnn_cell_bench import fused
from rnn_cell_bench.models import initial_weights


def record_passes(blocks: int, threads: int, spaces: int) -> list[tuple]:
    """Run :func:`fused._run_passes` with passes that log (event, block, space, thread)."""
    events, lock = [], threading.Lock()
    in_use: dict[int, int] = {}

    def forward(block, space):
        with lock:
            assert space not in in_use, f"workspace {space} taken by block {in_use.get(space)}"
            in_use[space] = block
            events.append(("forward", block, space))
        time.sleep(0.002)

    def backward(block, space):
        time.sleep(0.001)
        with lock:
            assert in_use.pop(space) == block, "a backward pass in another block's workspace"
            events.append(("backward", block, space))

    fused._run_passes(blocks, threads, list(range(spaces)), forward, backward)
    return events


@pytest.mark.parametrize("blocks", [1, 2, 5, 7])
@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_every_block_runs_forward_then_backward_in_one_workspace(blocks, threads):
    spaces = 1 if threads == 1 else min(threads + 1, blocks)
    events = record_passes(blocks, threads, spaces)
    forwards = [(block, space) for kind, block, space in events if kind == "forward"]
    backwards = [(block, space) for kind, block, space in events if kind == "backward"]
    assert sorted(forwards) == sorted(backwards)  # the same workspace from forward to backward
    assert sorted(block for block, _ in forwards) == list(range(blocks))
    for block in range(blocks):
        assert events.index(("forward", *forwards[block])) < events.index(
            ("backward", *forwards[block])
        )


def test_a_failing_pass_stops_every_thread_and_is_raised():
    def forward(block, space):
        if block == 2:
            raise RuntimeError("pass failed in block 2")
        time.sleep(0.001)

    outcome: list[BaseException] = []

    def run():
        try:
            fused._run_passes(6, 2, [0, 1, 2], forward, lambda block, space: None)
        except RuntimeError as error:
            outcome.append(error)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(timeout=30)
    assert not runner.is_alive(), "the other thread kept waiting for a task"
    assert [str(error) for error in outcome] == ["pass failed in block 2"]


def bits(result) -> list[bytes]:
    loss, grads = result
    return [np.float64(loss).tobytes()] + [g.tobytes() for g in grads]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_reused_workspaces_and_thread_counts_leave_every_bit_unchanged(cell):
    """5 blocks (40 sequences): one thread, then two, with the workspaces of a call on other
    data in between; then a fresh set of workspaces: all give the same bits."""
    rng = np.random.default_rng(7)
    inputs = rng.normal(size=(2, 40, 90, 1)).astype(np.float32)
    targets = rng.normal(size=(2, 40, 90, 1)).astype(np.float32)
    weights = initial_weights(cell, 6, seed=4)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        first = bits(fused.loss_and_gradients(cell, inputs[0], targets[0], weights))
        fused.loss_and_gradients(cell, inputs[1], targets[1], weights)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        fused.loss_and_gradients(cell, inputs[1], targets[1], weights)
        again = bits(fused.loss_and_gradients(cell, inputs[0], targets[0], weights))
        fused._WORKSPACES.clear()
        fresh = bits(fused.loss_and_gradients(cell, inputs[0], targets[0], weights))
    finally:
        numba.set_num_threads(threads)
    assert again == first
    assert fresh == first
    other = bits(fused.loss_and_gradients(cell, inputs[1], targets[1], weights))
    assert other != first  # the comparison can tell data sets apart
